// Sha256: SHA-256 over OpenSSL's EVP interface, incremental or one-shot. Used for cache keys
// and content hashes; not a password hash.
// Thread-safety: a Sha256 object is not shared between threads; the free functions are safe
// to call from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

// Keeps <openssl/evp.h> out of every includer.
struct evp_md_ctx_st;

namespace sluice {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  // Starts a new digest. Aborts only if OpenSSL cannot allocate a context or lacks SHA-256,
  // which would be a broken installation rather than bad input.
  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Appends bytes to the message. REQUIRES: Finish() has not been called since the last Reset().
  Sha256& Update(std::span<const uint8_t> bytes);
  Sha256& Update(std::string_view bytes);

  // Returns the digest of everything appended; afterwards only Reset() may be called.
  Sha256Digest Finish();

  // Starts over with an empty message, reusing the context.
  void Reset();

  // Returns an independent copy of the running state, so that a shared prefix is hashed once
  // and many messages continue from it. REQUIRES: Finish() has not been called.
  Sha256 Clone() const;

 private:
  struct Uninitialized {};
  explicit Sha256(Uninitialized);

  evp_md_ctx_st* ctx_ = nullptr;  // owned; null only in a moved-from object
  bool finished_ = false;
};

// One-shot digest of `bytes`.
Sha256Digest Sha256Of(std::string_view bytes);

// Lower-case hexadecimal, 64 characters.
std::string DigestToHex(const Sha256Digest& digest);

}  // namespace sluice
