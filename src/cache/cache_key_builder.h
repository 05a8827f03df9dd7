// CacheKeyBuilder: turns (model id + revision, request options, exact input) into the CacheKey
// shared by every cache tier. Each field is written as a type tag, a 64-bit little-endian
// length and its bytes, after a versioned domain string, so that no two different field
// tuples hash the same message: ("ab","c") != ("a","bc"), text "x" != token ids of "x",
// normalize=true != normalize=false. The options are hashed once per builder; each input then
// costs one SHA-256 continuation. Changing the encoding requires bumping kCacheKeyVersion.
// Thread-safety: a built CacheKeyBuilder is immutable; ForText/ForTokens may be called from
// many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "cache/cache_store.h"
#include "common/sha256.h"

namespace sluice {

// Everything besides the input that changes the vector a request gets back. Strings are
// canonical names chosen by the server ("mean", "cls"; "right", "left"), not user spellings.
struct CacheKeyOptions {
  std::string_view model_id{};         // e.g. "sentence-transformers/all-MiniLM-L6-v2"
  std::string_view revision{};         // weights revision or content hash
  std::string_view pooling{};          // "mean", "cls", "last", ...
  bool normalize = true;               // L2-normalised output
  bool truncate = false;               // over-long inputs truncated instead of refused
  std::string_view truncation_side{};  // "right" or "left"; only meaningful when truncate
  int64_t max_input_tokens = 0;        // truncation length; 0 = the model's own limit
  int64_t dimensions = 0;              // Matryoshka output size; 0 = the model's full size
};

class CacheKeyBuilder {
 public:
  // Bumped whenever the encoding below changes, so that old shared-cache rows never match.
  static constexpr std::string_view kCacheKeyVersion = "sluice.cache-key.v1";

  explicit CacheKeyBuilder(const CacheKeyOptions& options);

  // Key of a request whose input is text, hashed as its exact bytes (no normalisation here:
  // the tokenizer decides what is equivalent, and the cache must not second-guess it).
  CacheKey ForText(std::string_view text) const;
  // Key of a request whose input is pre-tokenised ids.
  CacheKey ForTokens(std::span<const int32_t> token_ids) const;

 private:
  Sha256 prefix_;  // domain string and options, never finished; cloned per input
};

// Hash functor for unordered containers: the digest is already uniform, so its first 8 bytes
// are the hash.
struct CacheKeyHash {
  size_t operator()(const CacheKey& key) const {
    uint64_t h;
    std::memcpy(&h, key.digest.data(), sizeof(h));
    return static_cast<size_t>(h);
  }
};

// Lower-case hex of the digest (64 characters), for logs and the shared store.
std::string CacheKeyToHex(const CacheKey& key);

}  // namespace sluice
