// PostgreSQL restarted under live connections: everything reconnects by itself. Runs alone
// (RUN_SERIAL) since it restarts the shared test cluster.
#include <gtest/gtest.h>

#include <thread>

#include "pg/pg_cache_store.h"
#include "pg/pg_job_queue.h"
#include "pg/pg_listener.h"
#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

class PgRestartTest : public PgTest {};

TEST_F(PgRestartTest, EverythingReconnectsAfterARestart) {
  MigrateAll();
  std::shared_ptr<PgPool> pool = MakePool(4);
  SLUICE_ASSERT_OK(pool->Warm(3));
  std::unique_ptr<PgJobQueue> queue = PgJobQueue::Create(pool).value();
  PgCacheStoreOptions cache_options;
  cache_options.min_backoff = milliseconds(50);
  std::unique_ptr<PgCacheStore> cache = PgCacheStore::Create(pool, cache_options).value();
  std::unique_ptr<PgListener> listener = PgListener::Create(Options(), "sluice_jobs").value();
  PgConnection conn = Connect();

  CacheKey key;
  key.digest[0] = 42;
  cache->PutAsync({{key, {1.0f, 2.0f}}}, "m");
  SLUICE_ASSERT_OK(cache->Flush());
  std::vector<std::string> inputs = {"before"};
  int64_t before = queue->Enqueue("m", inputs).value();
  ASSERT_TRUE(listener->WaitForNotification(milliseconds(2000)));

  Status restarted = testing::RestartCluster();
  if (restarted.code() == StatusCode::kFailedPrecondition) GTEST_SKIP() << restarted.message();
  SLUICE_ASSERT_OK(restarted);

  // The pool finds its idle connections dead at Acquire and opens new ones.
  inputs = {"after"};
  StatusOr<int64_t> after = queue->Enqueue("m", inputs);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_GT(*after, before);
  EXPECT_EQ(queue->Claim("w", 5, milliseconds(30000))->size(), 2u);
  EXPECT_GE(pool->dropped_count(), 1);

  // A lone connection fails the call that discovers the loss, then reconnects on the next.
  StatusOr<PgResult> first = conn.Execute("SELECT 1");
  if (!first.ok()) {
    EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().ToString();
  }
  EXPECT_TRUE(conn.Execute("SELECT 1").ok());

  // The cache tier answers again (the data survived: UNLOGGED tables survive a clean restart).
  std::vector<CacheKey> keys = {key};
  bool cache_back = false;
  for (int i = 0; i < 100 && !cache_back; ++i) {
    auto got = cache->GetMany(keys, "m");
    cache_back = got.ok() && (*got)[0] == std::vector<float>({1.0f, 2.0f});
    if (!cache_back) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(cache_back);

  // The listener notices, reconnects, LISTENs again and hears new jobs.
  bool listening = false;
  for (int i = 0; i < 50 && !listening; ++i) {
    listener->WaitForNotification(milliseconds(100));
    listening = listener->connected() && listener->reconnects() > 0;
  }
  ASSERT_TRUE(listening);
  inputs = {"wake"};
  ASSERT_TRUE(queue->Enqueue("m", inputs).ok());
  EXPECT_TRUE(listener->WaitForNotification(milliseconds(2000)));
}

}  // namespace
}  // namespace sluice
