#include "cache/tiered_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/cache_key_builder.h"

namespace sluice {
namespace {

CacheKey Key(int i) {
  static const CacheKeyBuilder builder(CacheKeyOptions{.model_id = "m", .revision = "r"});
  return builder.ForText("input " + std::to_string(i));
}

// A complete CacheStore held in memory: what the PostgreSQL store does, minus the network, with
// a switch that makes it fail the way a store that is down fails.
class MemoryCacheStore final : public CacheStore {
 public:
  StatusOr<std::vector<std::optional<std::vector<float>>>> GetMany(
      std::span<const CacheKey> keys, const std::string& model_version) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups_;
    keys_asked_ += keys.size();
    if (!fail_with_.ok()) return fail_with_;
    std::vector<std::optional<std::vector<float>>> out;
    for (const CacheKey& key : keys) {
      auto it = rows_.find({model_version, CacheKeyToHex(key)});
      out.push_back(it == rows_.end() ? std::nullopt : std::optional(it->second));
    }
    if (short_answer_ && !out.empty()) out.pop_back();
    return out;
  }

  void PutAsync(std::vector<CacheEntry> entries, const std::string& model_version) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_with_.ok()) {
      dropped_ += entries.size();
      return;
    }
    for (CacheEntry& e : entries) {
      rows_[{model_version, CacheKeyToHex(e.key)}] = std::move(e.vector);
    }
  }

  void FailWith(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_with_ = std::move(s);
  }
  void AnswerShort() {
    std::lock_guard<std::mutex> lock(mu_);
    short_answer_ = true;
  }
  int lookups() {
    std::lock_guard<std::mutex> lock(mu_);
    return lookups_;
  }
  size_t keys_asked() {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_asked_;
  }
  size_t rows() {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_.size();
  }
  size_t dropped() {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::vector<float>> rows_;
  Status fail_with_;
  bool short_answer_ = false;
  int lookups_ = 0;
  size_t keys_asked_ = 0;
  size_t dropped_ = 0;
};

std::unique_ptr<LruCache> MakeL1(const Clock* clock) {
  return std::move(LruCache::Create({.capacity_bytes = 1 << 20}, clock)).value();
}

class TieredCacheTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  MemoryCacheStore store_;
  TieredCache cache_{MakeL1(&clock_), &store_};
};

TEST_F(TieredCacheTest, MissThenPutThenHitInProcess) {
  EXPECT_EQ(cache_.Get(Key(1), "v1"), nullptr);
  cache_.Put(Key(1), MakeCachedVector({1.0f, 2.0f}), "v1");
  CachedVector hit = cache_.Get(Key(1), "v1");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(*hit, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(store_.lookups(), 1);  // the hit never reached the store
  EXPECT_EQ(store_.rows(), 1u);    // written through
  const TieredCacheStats s = cache_.Stats();
  EXPECT_EQ(s.l1_hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.store_writes, 1u);
}

TEST_F(TieredCacheTest, SharedHitsFillTheInProcessTier) {
  // Another replica wrote these.
  store_.PutAsync({CacheEntry{Key(1), {1.0f}}, CacheEntry{Key(2), {2.0f}}}, "v1");
  const std::vector<CacheKey> keys = {Key(1), Key(2), Key(3)};
  std::vector<CachedVector> got = cache_.GetMany(keys, "v1");
  ASSERT_EQ(got.size(), 3u);
  ASSERT_NE(got[0], nullptr);
  ASSERT_NE(got[1], nullptr);
  EXPECT_EQ(got[2], nullptr);
  EXPECT_EQ((*got[0])[0], 1.0f);
  EXPECT_EQ((*got[1])[0], 2.0f);
  EXPECT_EQ(cache_.l1().Stats().entries, 2u);

  // Second lookup: 1 and 2 come from process memory; only 3 goes to the store.
  got = cache_.GetMany(keys, "v1");
  EXPECT_EQ(store_.lookups(), 2);
  EXPECT_EQ(store_.keys_asked(), 3u + 1u);
  const TieredCacheStats s = cache_.Stats();
  EXPECT_EQ(s.l2_hits, 2u);
  EXPECT_EQ(s.l1_hits, 2u);
  EXPECT_EQ(s.misses, 2u);
}

TEST_F(TieredCacheTest, ModelVersionSeparatesSharedRows) {
  store_.PutAsync({CacheEntry{Key(1), {1.0f}}}, "v1");
  EXPECT_EQ(cache_.Get(Key(1), "v2"), nullptr);
  EXPECT_NE(cache_.Get(Key(1), "v1"), nullptr);
}

struct StoreFailure {
  std::string name;
  Status status;
  uint64_t unavailable;
  uint64_t errors;
};

class TieredCacheStoreFailureTest : public TieredCacheTest,
                                    public ::testing::WithParamInterface<StoreFailure> {};

TEST_P(TieredCacheStoreFailureTest, RequestsProceedWhenTheStoreFails) {
  cache_.Put(Key(1), MakeCachedVector({1.0f}), "v1");
  store_.FailWith(GetParam().status);
  const std::vector<CacheKey> keys = {Key(1), Key(2)};
  std::vector<CachedVector> got = cache_.GetMany(keys, "v1");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0], nullptr);  // the in-process tier still answers
  EXPECT_EQ(got[1], nullptr);  // a miss, not an error
  const TieredCacheStats s = cache_.Stats();
  EXPECT_EQ(s.store_unavailable, GetParam().unavailable);
  EXPECT_EQ(s.store_errors, GetParam().errors);
  EXPECT_EQ(s.misses, 1u);
  // Writes still go out; the store decides to drop them.
  cache_.Put(Key(2), MakeCachedVector({2.0f}), "v1");
  EXPECT_EQ(store_.dropped(), 1u);
  EXPECT_NE(cache_.Get(Key(2), "v1"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Failures, TieredCacheStoreFailureTest,
                         ::testing::Values(StoreFailure{"unavailable",
                                                        Unavailable("pool exhausted"), 1, 0},
                                           StoreFailure{"deadline", DeadlineExceeded("slow"), 0, 1},
                                           StoreFailure{"internal", Internal("bad row"), 0, 1}),
                         [](const auto& p) { return p.param.name; });

TEST_F(TieredCacheTest, StoreAnsweringTheWrongNumberOfKeysIsIgnored) {
  store_.PutAsync({CacheEntry{Key(1), {1.0f}}, CacheEntry{Key(2), {2.0f}}}, "v1");
  store_.AnswerShort();
  const std::vector<CacheKey> keys = {Key(1), Key(2)};
  std::vector<CachedVector> got = cache_.GetMany(keys, "v1");
  EXPECT_EQ(got[0], nullptr);
  EXPECT_EQ(got[1], nullptr);
  EXPECT_EQ(cache_.Stats().store_errors, 1u);
}

TEST(TieredCacheNoStoreTest, WorksInProcessOnly) {
  ManualClock clock;
  TieredCache cache(MakeL1(&clock), nullptr);
  EXPECT_FALSE(cache.has_store());
  const std::vector<CacheKey> keys = {Key(1), Key(2)};
  const std::vector<CachedVector> values = {MakeCachedVector({1.0f}), MakeCachedVector({2.0f})};
  cache.PutMany(keys, values, "v1");
  std::vector<CachedVector> got = cache.GetMany(keys, "v1");
  EXPECT_EQ(got[0], values[0]);
  EXPECT_EQ(got[1], values[1]);
  EXPECT_EQ(cache.Stats().store_writes, 0u);
}

TEST_F(TieredCacheTest, GetOrComputeComputesOncePerKeyAcrossThreads) {
  constexpr int kThreads = 16;
  std::atomic<int> computations{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 50; ++k) {
        StatusOr<CachedVector> r = cache_.GetOrCompute(Key(k), "v1", [&, k] {
          computations.fetch_add(1);
          std::this_thread::yield();
          return StatusOr<CachedVector>(MakeCachedVector({static_cast<float>(k)}));
        });
        if (!r.ok() || (**r)[0] != static_cast<float>(k)) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // Each key is computed once: later callers hit a tier or join the flight.
  EXPECT_EQ(computations.load(), 50);
  EXPECT_EQ(store_.rows(), 50u);
}

TEST_F(TieredCacheTest, GetOrComputeDoesNotCacheErrors) {
  int calls = 0;
  auto failing = [&]() -> StatusOr<CachedVector> {
    ++calls;
    return Unavailable("engine down");
  };
  EXPECT_EQ(cache_.GetOrCompute(Key(1), "v1", failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache_.GetOrCompute(Key(1), "v1", failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(store_.rows(), 0u);
}

}  // namespace
}  // namespace sluice
