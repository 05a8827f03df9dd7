// LruCache: the in-process result cache. Least-recently-used eviction within a byte budget,
// optional time-to-live, sharded by key so that threads touching different keys rarely share a
// lock. Each shard owns capacity_bytes / num_shards and evicts on its own; an entry is charged
// its float bytes plus a fixed per-entry overhead (key, list and index nodes, control block).
// Expiry reads the injected Clock, so tests move time instead of sleeping.
// Thread-safety: every method is safe to call concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "cache/cache_key_builder.h"
#include "cache/cache_store.h"
#include "cache/cached_vector.h"
#include "common/clock.h"
#include "common/status.h"

namespace sluice {

struct LruCacheOptions {
  // Total budget over all shards, values plus overhead. Must be at least num_shards bytes.
  size_t capacity_bytes = size_t{256} << 20;
  // Entries older than this are misses and are dropped when seen. Zero: never expire.
  Clock::Duration ttl = Clock::Duration::zero();
  // Independent LRU lists; 1..1024. More shards cut contention but make eviction less exact.
  size_t num_shards = 16;
  // Charged per entry on top of value bytes; approximates the bookkeeping (measured on
  // libstdc++ x86-64: list node ~72 B, hash node ~56 B, bucket ~8 B, shared control block
  // + vector header ~40 B).
  size_t entry_overhead_bytes = 176;
};

// Counters since creation (entries and bytes are current). A snapshot, not atomic across shards.
struct LruCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;       // includes expired entries found by Get
  uint64_t inserts = 0;      // Put of a new key
  uint64_t updates = 0;      // Put of a key already present (value replaced, TTL restarted)
  uint64_t evictions = 0;    // dropped to make room
  uint64_t expirations = 0;  // dropped because their TTL passed
  uint64_t rejections = 0;   // Put of a value larger than one shard's budget (not stored)
  uint64_t entries = 0;
  uint64_t bytes = 0;  // charged bytes now held
};

class LruCache {
 public:
  // InvalidArgument for num_shards outside 1..1024, capacity_bytes < num_shards, or a negative
  // ttl. `clock` must outlive the cache; null means Clock::Real().
  static StatusOr<std::unique_ptr<LruCache>> Create(const LruCacheOptions& options,
                                                    const Clock* clock = nullptr);

  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;
  ~LruCache();

  // The value stored for `key`, or null on a miss or an expired entry. A hit becomes the most
  // recently used entry of its shard.
  CachedVector Get(const CacheKey& key);

  // Stores `value` under `key` (replacing any value there and restarting its TTL), then evicts
  // least-recently-used entries of the shard until it fits. A value that alone exceeds a
  // shard's budget is not stored. REQUIRES: value != nullptr.
  void Put(const CacheKey& key, CachedVector value);

  // Removes `key`; returns whether it was present (expired or not).
  bool Erase(const CacheKey& key);

  // Removes every entry; counters other than entries and bytes are kept.
  void Clear();

  LruCacheStats Stats() const;

  // What Put charges for a value of `num_floats` floats.
  size_t ChargeFor(size_t num_floats) const {
    return num_floats * sizeof(float) + options_.entry_overhead_bytes;
  }
  const LruCacheOptions& options() const { return options_; }

 private:
  struct Entry {
    CacheKey key;
    CachedVector value;
    Clock::TimePoint expires_at;
    size_t charge = 0;
  };

  // Aligned to a cache line so that neighbouring shards' locks do not share one.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    // Most recently used at the front. GUARDED_BY(mu)
    std::list<Entry> lru;
    // Points into lru. GUARDED_BY(mu)
    std::unordered_map<CacheKey, std::list<Entry>::iterator, CacheKeyHash> index;
    // Counters of this shard; plain integers because they only change under mu. GUARDED_BY(mu)
    size_t bytes = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t inserts = 0;
    uint64_t updates = 0;
    uint64_t evictions = 0;
    uint64_t expirations = 0;
    uint64_t rejections = 0;
  };

  LruCache(const LruCacheOptions& options, const Clock* clock);

  Shard& ShardFor(const CacheKey& key);
  // Drops `it` from `shard`. REQUIRES: shard.mu held.
  static void RemoveLocked(Shard& shard, std::list<Entry>::iterator it);

  const LruCacheOptions options_;
  const Clock* const clock_;
  const size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace sluice
