#include "cache/lru_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_key_builder.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

CacheKey Key(int i) {
  static const CacheKeyBuilder builder(CacheKeyOptions{.model_id = "m", .revision = "r"});
  return builder.ForText("input " + std::to_string(i));
}

// A vector whose contents identify the key it was stored under.
CachedVector Value(int i, size_t floats = 4) {
  return MakeCachedVector(std::vector<float>(floats, static_cast<float>(i)));
}

std::unique_ptr<LruCache> MakeCache(const LruCacheOptions& options, const Clock* clock) {
  StatusOr<std::unique_ptr<LruCache>> cache = LruCache::Create(options, clock);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  return std::move(cache).value();
}

struct BadOptions {
  std::string name;
  LruCacheOptions options;
  std::string message;
};

class LruCacheBadOptionsTest : public ::testing::TestWithParam<BadOptions> {};

TEST_P(LruCacheBadOptionsTest, CreateRejects) {
  StatusOr<std::unique_ptr<LruCache>> cache = LruCache::Create(GetParam().options);
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cache.status().message().find(GetParam().message), std::string::npos)
      << cache.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Options, LruCacheBadOptionsTest,
    ::testing::Values(BadOptions{"zero_shards", {.num_shards = 0}, "num_shards must be in"},
                      BadOptions{"too_many_shards", {.num_shards = 1025}, "num_shards must be in"},
                      BadOptions{"zero_capacity", {.capacity_bytes = 0}, "capacity_bytes (0)"},
                      BadOptions{"capacity_below_shards",
                                 {.capacity_bytes = 3, .num_shards = 4},
                                 "at least num_shards"},
                      BadOptions{"negative_ttl", {.ttl = -1s}, "ttl must not be negative"}),
    [](const auto& p) { return p.param.name; });

TEST(LruCacheTest, HitsMissesAndCharges) {
  ManualClock clock;
  auto cache = MakeCache({.capacity_bytes = 1 << 20, .num_shards = 4}, &clock);
  EXPECT_EQ(cache->Get(Key(1)), nullptr);
  cache->Put(Key(1), Value(1, 384));
  CachedVector hit = cache->Get(Key(1));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->size(), 384u);
  EXPECT_EQ((*hit)[0], 1.0f);
  EXPECT_EQ(cache->Get(Key(2)), nullptr);

  LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.inserts, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 384 * sizeof(float) + cache->options().entry_overhead_bytes);
  EXPECT_EQ(s.bytes, cache->ChargeFor(384));

  // Replacing a value re-charges it.
  cache->Put(Key(1), Value(7, 10));
  s = cache->Stats();
  EXPECT_EQ(s.updates, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, cache->ChargeFor(10));
  EXPECT_EQ((*cache->Get(Key(1)))[0], 7.0f);
}

TEST(LruCacheTest, EvictsLeastRecentlyUsedWithinTheByteBudget) {
  ManualClock clock;
  LruCacheOptions options{.num_shards = 1, .entry_overhead_bytes = 16};
  options.capacity_bytes = 3 * (16 + 4 * sizeof(float));  // room for exactly three entries
  auto cache = MakeCache(options, &clock);
  for (int i = 0; i < 3; ++i) cache->Put(Key(i), Value(i));
  ASSERT_NE(cache->Get(Key(0)), nullptr);  // 0 is now the most recent; 1 the least
  cache->Put(Key(3), Value(3));
  EXPECT_EQ(cache->Get(Key(1)), nullptr);
  for (int i : {0, 2, 3}) EXPECT_NE(cache->Get(Key(i)), nullptr) << i;
  LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.bytes, options.capacity_bytes);

  // A bigger value pushes out as many old ones as needed, oldest first (order now 3, 2, 0).
  cache->Put(Key(9), Value(9, 4 + 2 * (4 + 4)));  // charge of three small entries
  EXPECT_EQ(cache->Stats().entries, 1u);
  EXPECT_EQ(cache->Stats().evictions, 4u);
  EXPECT_NE(cache->Get(Key(9)), nullptr);
}

TEST(LruCacheTest, RejectsValuesLargerThanAShard) {
  ManualClock clock;
  auto cache =
      MakeCache({.capacity_bytes = 4096, .num_shards = 4, .entry_overhead_bytes = 0}, &clock);
  cache->Put(Key(1), Value(1, 256));  // exactly one shard's 1024 bytes
  cache->Put(Key(2), Value(2, 257));
  EXPECT_NE(cache->Get(Key(1)), nullptr);
  EXPECT_EQ(cache->Get(Key(2)), nullptr);
  EXPECT_EQ(cache->Stats().rejections, 1u);
}

struct TtlCase {
  Clock::Duration ttl;
  Clock::Duration age;
  bool hit;
};

class LruCacheTtlTest : public ::testing::TestWithParam<TtlCase> {};

TEST_P(LruCacheTtlTest, ExpiresAfterTtl) {
  ManualClock clock;
  auto cache = MakeCache({.ttl = GetParam().ttl}, &clock);
  cache->Put(Key(1), Value(1));
  clock.Advance(GetParam().age);
  EXPECT_EQ(cache->Get(Key(1)) != nullptr, GetParam().hit);
  const LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.expirations, GetParam().hit ? 0u : 1u);
  EXPECT_EQ(s.entries, GetParam().hit ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(Ttl, LruCacheTtlTest,
                         ::testing::Values(TtlCase{0s, 1000h, true}, TtlCase{10s, 0s, true},
                                           TtlCase{10s, 10s - 1ns, true}, TtlCase{10s, 10s, false},
                                           TtlCase{10s, 1h, false}));

TEST(LruCacheTest, PutRestartsTheTtl) {
  ManualClock clock;
  auto cache = MakeCache({.ttl = 10s}, &clock);
  cache->Put(Key(1), Value(1));
  clock.Advance(8s);
  cache->Put(Key(1), Value(1));
  clock.Advance(8s);
  EXPECT_NE(cache->Get(Key(1)), nullptr);
  clock.Advance(2s);
  EXPECT_EQ(cache->Get(Key(1)), nullptr);
}

TEST(LruCacheTest, ExpiredEntriesAreReclaimedBeforeCountingAsEvictions) {
  ManualClock clock;
  LruCacheOptions options{.ttl = 5s, .num_shards = 1, .entry_overhead_bytes = 0};
  options.capacity_bytes = 2 * 4 * sizeof(float);
  auto cache = MakeCache(options, &clock);
  cache->Put(Key(1), Value(1));
  clock.Advance(6s);
  cache->Put(Key(2), Value(2));
  cache->Put(Key(3), Value(3));  // pushes out the expired 1
  const LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.expirations, 1u);
  EXPECT_EQ(s.evictions, 0u);
}

TEST(LruCacheTest, EraseAndClear) {
  ManualClock clock;
  auto cache = MakeCache({}, &clock);
  for (int i = 0; i < 100; ++i) cache->Put(Key(i), Value(i));
  EXPECT_TRUE(cache->Erase(Key(5)));
  EXPECT_FALSE(cache->Erase(Key(5)));
  EXPECT_EQ(cache->Get(Key(5)), nullptr);
  EXPECT_EQ(cache->Stats().entries, 99u);
  cache->Clear();
  const LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.inserts, 100u);
  EXPECT_EQ(cache->Get(Key(0)), nullptr);
}

TEST(LruCacheTest, EvictedValueStaysAliveForItsReaders) {
  ManualClock clock;
  auto cache =
      MakeCache({.capacity_bytes = 64, .num_shards = 1, .entry_overhead_bytes = 0}, &clock);
  cache->Put(Key(1), Value(1));
  CachedVector held = cache->Get(Key(1));
  cache->Put(Key(2), Value(2, 16));  // evicts 1
  EXPECT_EQ(cache->Get(Key(1)), nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ((*held)[3], 1.0f);
}

// Many threads on a small cache: every hit must return the value stored for that key, the
// budget must hold, and the counters must add up.
TEST(LruCacheTest, ConcurrentStress) {
  ManualClock clock;
  LruCacheOptions options{.ttl = 50ms, .num_shards = 8, .entry_overhead_bytes = 64};
  options.capacity_bytes = 8 * 40 * (64 + 8 * sizeof(float));  // ~40 entries per shard
  auto cache = MakeCache(options, &clock);
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr int kKeys = 1000;
  std::vector<CacheKey> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(Key(i));
  std::atomic<uint64_t> gets{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      std::uniform_int_distribution<int> pick(0, kKeys - 1);
      for (int op = 0; op < kOps; ++op) {
        const int k = pick(rng);
        switch (op % 5) {
          case 0:
          case 1:
            cache->Put(keys[k], Value(k, 8));
            break;
          case 2:
            if (t == 0) clock.Advance(1ms);
            [[fallthrough]];
          default: {
            gets.fetch_add(1);
            CachedVector v = cache->Get(keys[k]);
            if (v != nullptr && ((*v)[0] != static_cast<float>(k) || v->size() != 8)) {
              wrong.fetch_add(1);
            }
          }
        }
        if (op % 4096 == 0) {
          EXPECT_LE(cache->Stats().bytes, options.capacity_bytes);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  const LruCacheStats s = cache->Stats();
  EXPECT_EQ(s.hits + s.misses, gets.load());
  EXPECT_GT(s.hits, 0u);
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.expirations, 0u);
  EXPECT_LE(s.bytes, options.capacity_bytes);
  EXPECT_EQ(s.bytes, s.entries * cache->ChargeFor(8));
  EXPECT_EQ(s.inserts + s.updates, uint64_t{kThreads} * kOps * 2 / 5);
  EXPECT_EQ(s.inserts - s.entries, s.evictions + s.expirations);
}

TEST(LruCacheDeathTest, NullValueIsABug) {
  ManualClock clock;
  auto cache = MakeCache({}, &clock);
  EXPECT_DEATH(cache->Put(Key(1), nullptr), "null value");
}

}  // namespace
}  // namespace sluice
