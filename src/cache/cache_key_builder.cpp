#include "cache/cache_key_builder.h"

#include <array>
#include <bit>
#include <vector>

namespace sluice {
namespace {

// Field type tags: part of the encoding, never renumbered.
enum class Tag : uint8_t {
  kString = 1,
  kBool = 2,
  kInt = 3,
  kText = 4,
  kTokens = 5,
};

std::array<uint8_t, 8> LittleEndian64(uint64_t v) {
  std::array<uint8_t, 8> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

// tag, byte length, bytes.
void AppendField(Sha256& hash, Tag tag, std::span<const uint8_t> bytes) {
  const uint8_t t = static_cast<uint8_t>(tag);
  hash.Update(std::span<const uint8_t>(&t, 1));
  hash.Update(LittleEndian64(bytes.size()));
  hash.Update(bytes);
}

void AppendString(Sha256& hash, Tag tag, std::string_view s) {
  AppendField(hash, tag,
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

void AppendInt(Sha256& hash, int64_t v) {
  AppendField(hash, Tag::kInt, LittleEndian64(static_cast<uint64_t>(v)));
}

void AppendBool(Sha256& hash, bool v) {
  const uint8_t b = v ? 1 : 0;
  AppendField(hash, Tag::kBool, std::span<const uint8_t>(&b, 1));
}

CacheKey ToKey(const Sha256Digest& digest) {
  CacheKey key;
  key.digest = digest;
  return key;
}

}  // namespace

CacheKeyBuilder::CacheKeyBuilder(const CacheKeyOptions& options) {
  AppendString(prefix_, Tag::kString, kCacheKeyVersion);
  AppendString(prefix_, Tag::kString, options.model_id);
  AppendString(prefix_, Tag::kString, options.revision);
  AppendString(prefix_, Tag::kString, options.pooling);
  AppendBool(prefix_, options.normalize);
  AppendBool(prefix_, options.truncate);
  // Truncation parameters cannot change a result when truncation is off, so they are left out
  // to let such requests share entries.
  AppendString(prefix_, Tag::kString, options.truncate ? options.truncation_side : "");
  AppendInt(prefix_, options.truncate ? options.max_input_tokens : 0);
  AppendInt(prefix_, options.dimensions);
}

CacheKey CacheKeyBuilder::ForText(std::string_view text) const {
  Sha256 hash = prefix_.Clone();
  AppendString(hash, Tag::kText, text);
  return ToKey(hash.Finish());
}

CacheKey CacheKeyBuilder::ForTokens(std::span<const int32_t> token_ids) const {
  Sha256 hash = prefix_.Clone();
  const size_t bytes = token_ids.size() * sizeof(int32_t);
  if constexpr (std::endian::native == std::endian::little) {
    AppendField(
        hash, Tag::kTokens,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(token_ids.data()), bytes));
  } else {
    std::vector<uint8_t> le(bytes);
    for (size_t i = 0; i < token_ids.size(); ++i) {
      const auto v = static_cast<uint32_t>(token_ids[i]);
      for (size_t b = 0; b < 4; ++b) le[4 * i + b] = static_cast<uint8_t>(v >> (8 * b));
    }
    AppendField(hash, Tag::kTokens, le);
  }
  return ToKey(hash.Finish());
}

std::string CacheKeyToHex(const CacheKey& key) { return DigestToHex(key.digest); }

}  // namespace sluice
