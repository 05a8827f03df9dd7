// CacheStore: a shared result-cache tier below the in-process cache (PostgreSQL in pg/).
// Keys are SHA-256 digests of (model id + revision, options, exact input); values are the
// finished vectors. Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

// A 32-byte SHA-256 digest identifying one cached result.
struct CacheKey {
  std::array<uint8_t, 32> digest{};

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

struct CacheEntry {
  CacheKey key;
  std::vector<float> vector;
};

class CacheStore {
 public:
  virtual ~CacheStore() = default;

  // Looks up `keys` written for `model_version`; result[i] is the vector of keys[i] or nullopt.
  // Unavailable when the store cannot answer in time; callers then compute and carry on.
  virtual StatusOr<std::vector<std::optional<std::vector<float>>>> GetMany(
      std::span<const CacheKey> keys, const std::string& model_version) = 0;

  // Queues `entries` to be written in the background, batched; never blocks on the network and
  // may drop entries (counted in metrics) when the store is down or the queue is full.
  virtual void PutAsync(std::vector<CacheEntry> entries, const std::string& model_version) = 0;
};

}  // namespace sluice
