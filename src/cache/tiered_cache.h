// TieredCache: the result cache a request consults. Lookup goes to the in-process LruCache,
// then (optionally) to a shared CacheStore for the keys still missing, then reports a miss;
// shared-tier hits are copied into the in-process tier. Writes go to the in-process tier at
// once and to the shared tier through CacheStore::PutAsync, which never blocks.
//
// The shared tier is best effort: when it fails (kUnavailable or any other error) the lookup
// reports misses for the keys it could not answer, counts the failure and the request goes on
// to compute. Skipping the cache for one request (a bypass flag) is the caller's choice: it
// simply does not call this class.
// Thread-safety: every method is safe to call concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/cache_store.h"
#include "cache/cached_vector.h"
#include "cache/lru_cache.h"
#include "cache/single_flight.h"
#include "common/status.h"

namespace sluice {

struct TieredCacheStats {
  uint64_t l1_hits = 0;            // keys found in process
  uint64_t l2_hits = 0;            // keys found in the shared store
  uint64_t misses = 0;             // keys found in neither
  uint64_t store_unavailable = 0;  // shared-store lookups that returned kUnavailable
  uint64_t store_errors = 0;       // shared-store lookups that failed otherwise
  uint64_t store_writes = 0;       // entries handed to PutAsync
};

class TieredCache {
 public:
  // `store` may be null (in-process only); when set it must outlive this object.
  // REQUIRES: l1 != nullptr.
  TieredCache(std::unique_ptr<LruCache> l1, CacheStore* store);
  TieredCache(const TieredCache&) = delete;
  TieredCache& operator=(const TieredCache&) = delete;

  // result[i] is the vector of keys[i], or null on a miss. At most one shared-store round trip
  // for all keys. `model_version` names the model revision in the shared store.
  std::vector<CachedVector> GetMany(std::span<const CacheKey> keys,
                                    const std::string& model_version);
  CachedVector Get(const CacheKey& key, const std::string& model_version);

  // Stores results in both tiers. REQUIRES: keys.size() == values.size(), no null value.
  void PutMany(std::span<const CacheKey> keys, std::span<const CachedVector> values,
               const std::string& model_version);
  void Put(const CacheKey& key, CachedVector value, const std::string& model_version);

  // Get, and on a miss `compute` under single-flight: concurrent callers of one key compute it
  // once. A successful result is stored in both tiers before the followers are released;
  // errors are handed to the followers and not cached.
  StatusOr<CachedVector> GetOrCompute(const CacheKey& key, const std::string& model_version,
                                      const std::function<StatusOr<CachedVector>()>& compute);

  TieredCacheStats Stats() const;
  LruCache& l1() { return *l1_; }
  bool has_store() const { return store_ != nullptr; }
  // For callers that batch misses themselves (join per key, compute the batch, publish).
  SingleFlight& single_flight() { return flights_; }

 private:
  const std::unique_ptr<LruCache> l1_;
  CacheStore* const store_;  // not owned; may be null
  SingleFlight flights_;

  // Relaxed counters: each is only ever summed for reporting.
  std::atomic<uint64_t> l1_hits_{0};
  std::atomic<uint64_t> l2_hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> store_unavailable_{0};
  std::atomic<uint64_t> store_errors_{0};
  std::atomic<uint64_t> store_writes_{0};
};

}  // namespace sluice
