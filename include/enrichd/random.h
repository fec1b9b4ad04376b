// Random: an injectable source of randomness (jitter), so tests can fix it.
//
// Implementations need not be thread-safe unless they say so; each owner (a provider
// runtime, a test) holds its own.
#pragma once

#include <cstdint>

#include "enrichd/clock.h"

namespace enrichd {

class Random {
 public:
  virtual ~Random() = default;
  // Uniform over all 64-bit values.
  virtual uint64_t Next64() = 0;

  // Uniform in [0, 1).
  double UniformDouble();
  // Uniform in [lo, hi); returns lo when hi <= lo.
  Duration UniformDuration(Duration lo, Duration hi);
};

// xoshiro256** seeded through splitmix64: fast, good enough for jitter, reproducible
// from its seed. Not thread-safe.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed);
  uint64_t Next64() override;

 private:
  uint64_t s_[4];
};

// A Random that always returns the same fraction (e.g. 0.5 of every range): for tests
// that want exact numbers. Not thread-safe.
class FixedRandom final : public Random {
 public:
  // fraction in [0, 1).
  explicit FixedRandom(double fraction);
  uint64_t Next64() override;

 private:
  uint64_t value_;
};

}  // namespace enrichd
