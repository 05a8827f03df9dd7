// Cost per operation of the in-process result cache (and the key hash in front of it), with
// one and two threads: sluice_cache_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "cache/cache_key_builder.h"
#include "cache/lru_cache.h"
#include "cache/single_flight.h"

namespace sluice {
namespace {

constexpr int kKeys = 100000;
constexpr size_t kDim = 384;  // all-MiniLM-L6-v2

const CacheKeyBuilder& Builder() {
  static const CacheKeyBuilder builder(CacheKeyOptions{
      .model_id = "all-MiniLM-L6-v2", .revision = "main", .pooling = "mean", .normalize = true});
  return builder;
}

const std::vector<CacheKey>& Keys() {
  static const std::vector<CacheKey> keys = [] {
    std::vector<CacheKey> k;
    for (int i = 0; i < 2 * kKeys; ++i)
      k.push_back(Builder().ForText("input " + std::to_string(i)));
    return k;
  }();
  return keys;
}

// A cache holding the first kKeys keys (384 floats each), never evicting them.
LruCache& FullCache() {
  static const std::unique_ptr<LruCache> cache = [] {
    auto c = std::move(LruCache::Create({.capacity_bytes = size_t{1} << 30})).value();
    CachedVector value = MakeCachedVector(std::vector<float>(kDim, 0.5f));
    for (int i = 0; i < kKeys; ++i) c->Put(Keys()[i], value);
    return c;
  }();
  return *cache;
}

void BM_CacheKeyForText(benchmark::State& state) {
  const std::string text = "The quick brown fox jumps over the lazy dog, again and again.";
  for (auto _ : state) benchmark::DoNotOptimize(Builder().ForText(text));
}
BENCHMARK(BM_CacheKeyForText)->Threads(1)->Threads(2)->UseRealTime();

void BM_LruGetHit(benchmark::State& state) {
  LruCache& cache = FullCache();
  const std::vector<CacheKey>& keys = Keys();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Get(keys[i % kKeys]));
    i += 13;
  }
}
BENCHMARK(BM_LruGetHit)->Threads(1)->Threads(2)->UseRealTime();

void BM_LruGetMiss(benchmark::State& state) {
  LruCache& cache = FullCache();
  const std::vector<CacheKey>& keys = Keys();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Get(keys[kKeys + i % kKeys]));
    i += 13;
  }
}
BENCHMARK(BM_LruGetMiss)->Threads(1)->Threads(2)->UseRealTime();

// Steady-state insert: the cache is full, so every Put also evicts.
void BM_LruPutEvicting(benchmark::State& state) {
  // Built once (before any thread runs the loop) and shared by the 1- and 2-thread runs;
  // ~9,800 entries fit, and the key cycle is 200,000 long.
  static const std::unique_ptr<LruCache> cache =
      std::move(LruCache::Create({.capacity_bytes = size_t{16} << 20})).value();
  const std::vector<CacheKey>& keys = Keys();
  CachedVector value = MakeCachedVector(std::vector<float>(kDim, 0.5f));
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    cache->Put(keys[i % keys.size()], value);
    i += 13;
  }
  state.counters["evictions"] = static_cast<double>(cache->Stats().evictions);
}
BENCHMARK(BM_LruPutEvicting)->Threads(1)->Threads(2)->UseRealTime();

// Uncontended single-flight round trip (join as leader, publish), per key.
void BM_SingleFlightLeader(benchmark::State& state) {
  static SingleFlight flights;
  const std::vector<CacheKey>& keys = Keys();
  CachedVector value = MakeCachedVector({1.0f});
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    SingleFlight::Flight f = flights.Join(keys[i % keys.size()]);
    if (f.is_leader()) f.Publish(value);
    i += 13;
  }
}
BENCHMARK(BM_SingleFlightLeader)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
