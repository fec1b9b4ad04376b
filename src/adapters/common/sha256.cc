#include "adapters/common/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace enrichd::adapters {
namespace {

// OpenSSL's SHA-256 (SHA-NI or AVX2 where the CPU has them): 0.4 us for a 330-byte body
// here, against 2.0 us for the portable C++ version this replaced, on every answer. The
// algorithm is fetched once (a fetch per digest, as the one-shot SHA256() does in OpenSSL
// 3, costs as much again), and each thread keeps a context of its own.
const EVP_MD* Algorithm() {
  static EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : const_cast<EVP_MD*>(EVP_sha256());
  }();
  return md;
}

struct ContextDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::array<uint8_t, 32> Sha256(std::string_view data) {
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> ctx(EVP_MD_CTX_new());
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  // Only an allocation failure inside OpenSSL can fail these; the digest is then all
  // zeros, which no body has, and the provenance says so rather than crashing a run.
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), Algorithm(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    out.fill(0);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto digest = Sha256(data);
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::string ResponseDigest(std::string_view body) {
  std::string hex = Sha256Hex(body);
  hex.resize(32);
  return hex;
}

}  // namespace enrichd::adapters
