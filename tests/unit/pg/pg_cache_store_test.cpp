#include "pg/pg_cache_store.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

CacheKey Key(int i) {
  CacheKey k;
  // The first byte is i itself, so SQL can tell the rows apart (get_byte(key, 0)).
  for (size_t b = 0; b < k.digest.size(); ++b) k.digest[b] = static_cast<uint8_t>(i + 7 * b);
  return k;
}

std::vector<float> Vec(int i, int dim = 4) {
  std::vector<float> v(static_cast<size_t>(dim));
  for (int d = 0; d < dim; ++d) v[static_cast<size_t>(d)] = static_cast<float>(i) + 0.125f * d;
  return v;
}

class PgCacheStoreTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MigrateAll();
    pool_ = MakePool(4);
  }
  void TearDown() override {
    store_.reset();
    pool_.reset();
    PgTest::TearDown();
  }

  // A store whose writer never flushes by itself unless `flush_interval` says so.
  PgCacheStore& MakeStore(PgCacheStoreOptions options = {}) {
    if (options.flush_interval == PgCacheStoreOptions().flush_interval) {
      options.flush_interval = std::chrono::hours(1);
    }
    StatusOr<std::unique_ptr<PgCacheStore>> store = PgCacheStore::Create(pool_, options);
    SLUICE_CHECK(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    return *store_;
  }

  std::shared_ptr<PgPool> pool_;
  std::unique_ptr<PgCacheStore> store_;
};

TEST_F(PgCacheStoreTest, RejectsBadOptions) {
  PgCacheStoreOptions options;
  options.write_batch_entries = 0;
  EXPECT_EQ(PgCacheStore::Create(pool_, options).status().code(), StatusCode::kInvalidArgument);
  options = PgCacheStoreOptions();
  options.get_timeout = milliseconds(0);
  EXPECT_EQ(PgCacheStore::Create(pool_, options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PgCacheStoreTest, PutThenGetManyInOneRoundTrip) {
  PgCacheStore& store = MakeStore();
  store.PutAsync({{Key(1), Vec(1)}, {Key(2), Vec(2, 384)}, {Key(3), Vec(3)}}, "m@1");
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.embedding_cache"), "0");  // only queued
  SLUICE_ASSERT_OK(store.Flush());
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.embedding_cache"), "3");
  EXPECT_EQ(Query("SELECT length(vector) FROM sluice.embedding_cache WHERE hits = 0 "
                  "ORDER BY length(vector) DESC LIMIT 1"),
            "1536");  // 384 float32s, no header

  std::vector<CacheKey> keys = {Key(2), Key(9), Key(1), Key(2)};
  auto got = store.GetMany(keys, "m@1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ((*got)[0], Vec(2, 384));
  EXPECT_FALSE((*got)[1].has_value());
  EXPECT_EQ((*got)[2], Vec(1));
  EXPECT_EQ((*got)[3], Vec(2, 384));
  EXPECT_EQ(store.stats().hits, 3);
  EXPECT_EQ(store.stats().misses, 1);

  // Another model version never sees these rows.
  auto other = store.GetMany(keys, "m@2");
  ASSERT_TRUE(other.ok());
  for (const auto& v : *other) EXPECT_FALSE(v.has_value());
  EXPECT_TRUE(store.GetMany({}, "m@1")->empty());
}

TEST_F(PgCacheStoreTest, ExistingKeysAreKeptAndDuplicatesCollapse) {
  PgCacheStore& store = MakeStore();
  store.PutAsync({{Key(1), Vec(1)}, {Key(1), Vec(5)}}, "m");
  SLUICE_ASSERT_OK(store.Flush());
  store.PutAsync({{Key(1), Vec(7)}}, "m");
  SLUICE_ASSERT_OK(store.Flush());
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.embedding_cache"), "1");
  std::vector<CacheKey> keys = {Key(1)};
  auto got = store.GetMany(keys, "m");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE((*got)[0] == Vec(1) || (*got)[0] == Vec(5));
}

TEST_F(PgCacheStoreTest, HitsAreAggregatedAndFlushedInBatches) {
  PgCacheStore& store = MakeStore();
  store.PutAsync({{Key(1), Vec(1)}, {Key(2), Vec(2)}}, "m");
  SLUICE_ASSERT_OK(store.Flush());
  Query("UPDATE sluice.embedding_cache SET last_access = now() - interval '1 hour'");
  std::vector<CacheKey> k1 = {Key(1)};
  std::vector<CacheKey> both = {Key(1), Key(2), Key(1)};
  ASSERT_TRUE(store.GetMany(k1, "m").ok());
  ASSERT_TRUE(store.GetMany(both, "m").ok());
  // No write per hit: nothing reached the table yet.
  EXPECT_EQ(Query("SELECT sum(hits) FROM sluice.embedding_cache"), "0");
  SLUICE_ASSERT_OK(store.Flush());
  EXPECT_EQ(Query("SELECT string_agg(hits::text, ',' ORDER BY hits) FROM sluice.embedding_cache"),
            "1,3");
  EXPECT_EQ(Query("SELECT bool_and(last_access > now() - interval '1 minute') "
                  "FROM sluice.embedding_cache"),
            "t");
  EXPECT_EQ(store.stats().hit_updates, 2);
}

TEST_F(PgCacheStoreTest, BackgroundWriterFlushesOnItsOwn) {
  PgCacheStoreOptions options;
  options.flush_interval = milliseconds(50);
  PgCacheStore& store = MakeStore(options);
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({Key(i), Vec(i)});
  store.PutAsync(std::move(entries), "m");
  std::string count;
  for (int i = 0; i < 100 && count != "50"; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    count = Query("SELECT count(*) FROM sluice.embedding_cache");
  }
  EXPECT_EQ(count, "50");
  EXPECT_EQ(store.stats().written, 50);
}

TEST_F(PgCacheStoreTest, FullQueueDropsAndCounts) {
  PgCacheStoreOptions options;
  options.max_queued_entries = 5;
  PgCacheStore& store = MakeStore(options);
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 8; ++i) entries.push_back({Key(i), Vec(i)});
  entries.push_back({Key(99), {}});  // an empty vector is never stored
  store.PutAsync(std::move(entries), "m");
  EXPECT_EQ(store.stats().queued, 5);
  EXPECT_EQ(store.stats().dropped, 4);
  SLUICE_ASSERT_OK(store.Flush());
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.embedding_cache"), "5");
}

TEST_F(PgCacheStoreTest, EvictsExpiredRowsAndRowsOverTheCap) {
  PgCacheStoreOptions options;
  options.ttl = std::chrono::hours(1);
  options.max_rows = 4;
  PgCacheStore& store = MakeStore(options);
  std::vector<CacheEntry> entries;
  for (int i = 0; i < 10; ++i) entries.push_back({Key(i), Vec(i)});
  store.PutAsync(std::move(entries), "m");
  SLUICE_ASSERT_OK(store.Flush());
  // Row i was last read i minutes ago, and rows 8 and 9 more than the TTL ago.
  Query(
      "UPDATE sluice.embedding_cache SET last_access = now() - "
      "get_byte(key, 0) * interval '1 minute' - "
      "CASE WHEN get_byte(key, 0) >= 8 THEN interval '2 hours' ELSE interval '0' END");
  StatusOr<int64_t> evicted = store.EvictNow();
  ASSERT_TRUE(evicted.ok()) << evicted.status().ToString();
  EXPECT_EQ(*evicted, 6);  // 2 expired, then 8 left over a cap of 4
  EXPECT_EQ(store.stats().evicted, 6);
  std::vector<CacheKey> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(Key(i));
  auto got = store.GetMany(keys, "m");
  ASSERT_TRUE(got.ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ((*got)[static_cast<size_t>(i)].has_value(), i < 4) << i;
  }
}

TEST_F(PgCacheStoreTest, SlowDatabaseIsBypassedFastAndRecovers) {
  PgCacheStoreOptions options;
  options.get_timeout = milliseconds(100);
  options.min_backoff = milliseconds(200);
  PgCacheStore& store = MakeStore(options);
  store.PutAsync({{Key(1), Vec(1)}}, "m");
  SLUICE_ASSERT_OK(store.Flush());
  std::vector<CacheKey> keys = {Key(1)};

  PgConnection locker = Connect();
  SLUICE_ASSERT_OK(
      locker.ExecuteScript("BEGIN; LOCK TABLE sluice.embedding_cache IN ACCESS EXCLUSIVE MODE"));
  auto start = std::chrono::steady_clock::now();
  auto blocked = store.GetMany(keys, "m");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(took, milliseconds(500));
  // Within the backoff window the tier is skipped without touching PostgreSQL.
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(store.GetMany(keys, "m").status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5));
  EXPECT_EQ(store.stats().bypassed, 2);
  SLUICE_ASSERT_OK(locker.ExecuteScript("ROLLBACK"));

  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    auto got = store.GetMany(keys, "m");
    back = got.ok() && (*got)[0] == Vec(1);
  }
  EXPECT_TRUE(back);
}

TEST_F(PgCacheStoreTest, ConcurrentReadersAndWriters) {
  PgCacheStoreOptions options;
  options.flush_interval = milliseconds(20);
  options.write_batch_entries = 16;
  PgCacheStore& store = MakeStore(options);
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  // Keys (t * 3 + round + i) % 40 for t < 4, round < 20, i < 8: 0 to 35.
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        std::vector<CacheEntry> entries;
        std::vector<CacheKey> keys;
        for (int i = 0; i < 8; ++i) {
          int k = (t * 3 + round + i) % 40;  // overlapping keys across threads
          entries.push_back({Key(k), Vec(k)});
          keys.push_back(Key(k));
        }
        store.PutAsync(std::move(entries), "m");
        auto got = store.GetMany(keys, "m");
        if (!got.ok()) {
          errors++;
          continue;
        }
        for (size_t i = 0; i < keys.size(); ++i) {
          int k = (t * 3 + round + static_cast<int>(i)) % 40;
          if ((*got)[i].has_value() && *(*got)[i] != Vec(k)) errors++;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  SLUICE_ASSERT_OK(store.Flush());
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(store.stats().write_errors, 0);
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.embedding_cache"), "36");
}

}  // namespace
}  // namespace sluice
