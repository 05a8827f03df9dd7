#include "cache/tiered_cache.h"

#include <utility>

#include "common/logging.h"

namespace sluice {

TieredCache::TieredCache(std::unique_ptr<LruCache> l1, CacheStore* store)
    : l1_(std::move(l1)), store_(store) {
  SLUICE_CHECK(l1_ != nullptr) << "TieredCache needs an in-process tier";
}

std::vector<CachedVector> TieredCache::GetMany(std::span<const CacheKey> keys,
                                               const std::string& model_version) {
  std::vector<CachedVector> out(keys.size());
  std::vector<size_t> missing;  // indices into keys
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i] = l1_->Get(keys[i]);
    if (out[i] == nullptr) missing.push_back(i);
  }
  l1_hits_.fetch_add(keys.size() - missing.size(), std::memory_order_relaxed);
  if (missing.empty() || store_ == nullptr) {
    misses_.fetch_add(missing.size(), std::memory_order_relaxed);
    return out;
  }

  std::vector<CacheKey> l2_keys;
  l2_keys.reserve(missing.size());
  for (size_t i : missing) l2_keys.push_back(keys[i]);
  StatusOr<std::vector<std::optional<std::vector<float>>>> found =
      store_->GetMany(l2_keys, model_version);
  if (!found.ok()) {
    if (found.status().code() == StatusCode::kUnavailable) {
      store_unavailable_.fetch_add(1, std::memory_order_relaxed);
    } else {
      store_errors_.fetch_add(1, std::memory_order_relaxed);
      SLUICE_LOG_WARN("shared cache lookup failed: {}", found.status().ToString());
    }
    misses_.fetch_add(missing.size(), std::memory_order_relaxed);
    return out;
  }
  if (found->size() != l2_keys.size()) {
    // A store that answers a different number of keys is broken; trusting any of its answers
    // could return one input's vector for another.
    store_errors_.fetch_add(1, std::memory_order_relaxed);
    SLUICE_LOG_WARN("shared cache answered {} keys for {} asked; ignoring it", found->size(),
                    l2_keys.size());
    misses_.fetch_add(missing.size(), std::memory_order_relaxed);
    return out;
  }
  uint64_t l2_hits = 0;
  for (size_t j = 0; j < missing.size(); ++j) {
    std::optional<std::vector<float>>& value = (*found)[j];
    if (!value.has_value()) continue;
    CachedVector shared = MakeCachedVector(std::move(*value));
    l1_->Put(l2_keys[j], shared);
    out[missing[j]] = std::move(shared);
    ++l2_hits;
  }
  l2_hits_.fetch_add(l2_hits, std::memory_order_relaxed);
  misses_.fetch_add(missing.size() - l2_hits, std::memory_order_relaxed);
  return out;
}

CachedVector TieredCache::Get(const CacheKey& key, const std::string& model_version) {
  return GetMany(std::span<const CacheKey>(&key, 1), model_version)[0];
}

void TieredCache::PutMany(std::span<const CacheKey> keys, std::span<const CachedVector> values,
                          const std::string& model_version) {
  SLUICE_CHECK(keys.size() == values.size())
      << "PutMany with " << keys.size() << " keys and " << values.size() << " values";
  for (size_t i = 0; i < keys.size(); ++i) l1_->Put(keys[i], values[i]);
  if (store_ == nullptr || keys.empty()) return;
  std::vector<CacheEntry> entries;
  entries.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) entries.push_back(CacheEntry{keys[i], *values[i]});
  store_writes_.fetch_add(entries.size(), std::memory_order_relaxed);
  store_->PutAsync(std::move(entries), model_version);
}

void TieredCache::Put(const CacheKey& key, CachedVector value, const std::string& model_version) {
  PutMany(std::span<const CacheKey>(&key, 1), std::span<const CachedVector>(&value, 1),
          model_version);
}

StatusOr<CachedVector> TieredCache::GetOrCompute(
    const CacheKey& key, const std::string& model_version,
    const std::function<StatusOr<CachedVector>()>& compute) {
  if (CachedVector hit = Get(key, model_version)) return hit;
  return flights_.Do(key, [&]() -> StatusOr<CachedVector> {
    // A flight that finished between the lookup above and Join has filled the in-process
    // tier; looking again there (not in the shared store) saves a second computation.
    if (CachedVector hit = l1_->Get(key)) return hit;
    StatusOr<CachedVector> computed = compute();
    if (computed.ok()) {
      SLUICE_CHECK(*computed != nullptr) << "GetOrCompute: compute returned a null vector";
      Put(key, *computed, model_version);
    }
    return computed;
  });
}

TieredCacheStats TieredCache::Stats() const {
  TieredCacheStats s;
  s.l1_hits = l1_hits_.load(std::memory_order_relaxed);
  s.l2_hits = l2_hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.store_unavailable = store_unavailable_.load(std::memory_order_relaxed);
  s.store_errors = store_errors_.load(std::memory_order_relaxed);
  s.store_writes = store_writes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace sluice
