#include "enrichd/random.h"

#include <cmath>

namespace enrichd {

double Random::UniformDouble() {
  // 53 random bits -> [0, 1).
  return static_cast<double>(Next64() >> 11) * 0x1.0p-53;
}

Duration Random::UniformDuration(Duration lo, Duration hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi.count() - lo.count());
  // Multiply-shift keeps this unbiased enough for jitter and free of modulo cost.
  __extension__ using U128 = unsigned __int128;
  const U128 product = static_cast<U128>(Next64()) * span;
  return lo + Duration(static_cast<int64_t>(product >> 64));
}

namespace {
uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

SeededRandom::SeededRandom(uint64_t seed) {
  for (auto& word : s_) word = SplitMix64(seed);
}

uint64_t SeededRandom::Next64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

FixedRandom::FixedRandom(double fraction) {
  if (!(fraction >= 0.0)) fraction = 0.0;
  if (fraction >= 1.0) fraction = std::nextafter(1.0, 0.0);
  value_ = static_cast<uint64_t>(std::ldexp(fraction, 64));
}

uint64_t FixedRandom::Next64() { return value_; }

}  // namespace enrichd
