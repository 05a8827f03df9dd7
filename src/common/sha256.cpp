#include "common/sha256.h"

#include <openssl/evp.h>

#include <utility>

#include "common/check.h"

namespace sluice {
namespace {

// Fetched once: with OpenSSL 3 an implicit fetch through EVP_sha256() on every init costs a
// provider lookup under a lock, which would serialize hashing across threads.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    SLUICE_CHECK(fetched != nullptr) << "OpenSSL has no SHA-256 implementation";
    return fetched;
  }();
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  SLUICE_CHECK(ctx_ != nullptr) << "EVP_MD_CTX_new failed";
  Reset();
}

Sha256::Sha256(Uninitialized) : ctx_(EVP_MD_CTX_new()) {
  SLUICE_CHECK(ctx_ != nullptr) << "EVP_MD_CTX_new failed";
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256::Sha256(Sha256&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), finished_(other.finished_) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    finished_ = other.finished_;
  }
  return *this;
}

Sha256& Sha256::Update(std::span<const uint8_t> bytes) {
  SLUICE_CHECK(ctx_ != nullptr && !finished_) << "Sha256::Update after Finish or move";
  if (!bytes.empty()) {
    SLUICE_CHECK(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) == 1)
        << "EVP_DigestUpdate failed";
  }
  return *this;
}

Sha256& Sha256::Update(std::string_view bytes) {
  return Update(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Sha256Digest Sha256::Finish() {
  SLUICE_CHECK(ctx_ != nullptr && !finished_) << "Sha256::Finish called twice or after move";
  Sha256Digest digest{};
  unsigned int length = 0;
  SLUICE_CHECK(EVP_DigestFinal_ex(ctx_, digest.data(), &length) == 1 && length == digest.size())
      << "EVP_DigestFinal_ex failed";
  finished_ = true;
  return digest;
}

void Sha256::Reset() {
  SLUICE_CHECK(ctx_ != nullptr) << "Sha256::Reset after move";
  SLUICE_CHECK(EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) == 1) << "EVP_DigestInit_ex failed";
  finished_ = false;
}

Sha256 Sha256::Clone() const {
  SLUICE_CHECK(ctx_ != nullptr && !finished_) << "Sha256::Clone after Finish or move";
  Sha256 copy{Uninitialized{}};
  SLUICE_CHECK(EVP_MD_CTX_copy_ex(copy.ctx_, ctx_) == 1) << "EVP_MD_CTX_copy_ex failed";
  return copy;
}

Sha256Digest Sha256Of(std::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes);
  return hash.Finish();
}

std::string DigestToHex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(digest.size() * 2, '\0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace sluice
