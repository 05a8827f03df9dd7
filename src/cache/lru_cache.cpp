#include "cache/lru_cache.h"

#include <fmt/format.h>

#include <cstring>
#include <utility>

namespace sluice {

namespace {
constexpr size_t kMaxShards = 1024;
}  // namespace

StatusOr<std::unique_ptr<LruCache>> LruCache::Create(const LruCacheOptions& options,
                                                     const Clock* clock) {
  if (options.num_shards == 0 || options.num_shards > kMaxShards) {
    return InvalidArgument(
        fmt::format("cache num_shards must be in 1..{}, got {}", kMaxShards, options.num_shards));
  }
  if (options.capacity_bytes < options.num_shards) {
    return InvalidArgument(
        fmt::format("cache capacity_bytes ({}) must be at least num_shards ({}); to disable the "
                    "cache, do not create one",
                    options.capacity_bytes, options.num_shards));
  }
  if (options.ttl < Clock::Duration::zero()) {
    return InvalidArgument("cache ttl must not be negative");
  }
  return std::unique_ptr<LruCache>(new LruCache(options, clock != nullptr ? clock : Clock::Real()));
}

LruCache::LruCache(const LruCacheOptions& options, const Clock* clock)
    : options_(options),
      clock_(clock),
      shard_capacity_(options.capacity_bytes / options.num_shards),
      shards_(new Shard[options.num_shards]) {}

LruCache::~LruCache() = default;

LruCache::Shard& LruCache::ShardFor(const CacheKey& key) {
  // Bytes 8..15 pick the shard; CacheKeyHash uses bytes 0..7 inside it, so the two stay
  // independent and every shard's hash table sees well-spread hashes.
  uint64_t h;
  std::memcpy(&h, key.digest.data() + 8, sizeof(h));
  return shards_[h % options_.num_shards];
}

void LruCache::RemoveLocked(Shard& shard, std::list<Entry>::iterator it) {
  shard.bytes -= it->charge;
  shard.index.erase(it->key);
  shard.lru.erase(it);
}

CachedVector LruCache::Get(const CacheKey& key) {
  Shard& shard = ShardFor(key);
  const Clock::TimePoint now = clock_->Now();
  std::lock_guard<std::mutex> lock(shard.mu);
  auto found = shard.index.find(key);
  if (found == shard.index.end()) {
    ++shard.misses;
    return nullptr;
  }
  auto it = found->second;
  if (now >= it->expires_at) {
    RemoveLocked(shard, it);
    ++shard.expirations;
    ++shard.misses;
    return nullptr;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it);
  ++shard.hits;
  return it->value;
}

void LruCache::Put(const CacheKey& key, CachedVector value) {
  SLUICE_CHECK(value != nullptr) << "LruCache::Put with a null value";
  const size_t charge = ChargeFor(value->size());
  Shard& shard = ShardFor(key);
  const Clock::TimePoint now = clock_->Now();
  const Clock::TimePoint expires_at =
      options_.ttl == Clock::Duration::zero() ? Clock::TimePoint::max() : now + options_.ttl;
  // Whatever the old value held is released after the lock, not under it.
  CachedVector old;
  std::lock_guard<std::mutex> lock(shard.mu);
  if (charge > shard_capacity_) {
    ++shard.rejections;
    return;
  }
  auto found = shard.index.find(key);
  if (found != shard.index.end()) {
    auto it = found->second;
    shard.bytes = shard.bytes - it->charge + charge;
    old = std::exchange(it->value, std::move(value));
    it->expires_at = expires_at;
    it->charge = charge;
    shard.lru.splice(shard.lru.begin(), shard.lru, it);
    ++shard.updates;
  } else {
    shard.lru.push_front(Entry{key, std::move(value), expires_at, charge});
    shard.index.emplace(key, shard.lru.begin());
    shard.bytes += charge;
    ++shard.inserts;
  }
  // The new entry is at the front and fits alone, so the loop stops before reaching it.
  while (shard.bytes > shard_capacity_) {
    auto victim = std::prev(shard.lru.end());
    if (now >= victim->expires_at) {
      ++shard.expirations;
    } else {
      ++shard.evictions;
    }
    RemoveLocked(shard, victim);
  }
}

bool LruCache::Erase(const CacheKey& key) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto found = shard.index.find(key);
  if (found == shard.index.end()) return false;
  RemoveLocked(shard, found->second);
  return true;
}

void LruCache::Clear() {
  for (size_t i = 0; i < options_.num_shards; ++i) {
    Shard& shard = shards_[i];
    std::list<Entry> dropped;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.index.clear();
      dropped.swap(shard.lru);
      shard.bytes = 0;
    }
  }
}

LruCacheStats LruCache::Stats() const {
  LruCacheStats total;
  for (size_t i = 0; i < options_.num_shards; ++i) {
    const Shard& shard = shards_[i];
    std::lock_guard<std::mutex> lock(shard.mu);
    total.hits += shard.hits;
    total.misses += shard.misses;
    total.inserts += shard.inserts;
    total.updates += shard.updates;
    total.evictions += shard.evictions;
    total.expirations += shard.expirations;
    total.rejections += shard.rejections;
    total.entries += shard.index.size();
    total.bytes += shard.bytes;
  }
  return total;
}

}  // namespace sluice
