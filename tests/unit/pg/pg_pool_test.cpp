#include "pg/pg_pool.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

TEST(PgPoolCreateTest, RejectsBadDsnAndSize) {
  PgPoolOptions options;
  options.connection.dsn = "host=a port";
  EXPECT_EQ(PgPool::Create(options).status().code(), StatusCode::kInvalidArgument);
  options.connection.dsn = "postgresql://localhost/db";
  options.max_size = 0;
  EXPECT_EQ(PgPool::Create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(PgPoolCreateTest, UnreachableServerFailsAcquire) {
  PgPoolOptions options;
  options.connection.dsn = "postgresql://nobody@127.0.0.1:1/none";
  StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(options);
  ASSERT_TRUE(pool.ok());
  StatusOr<PgPool::Handle> conn = (*pool)->Acquire();
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*pool)->open_count(), 0);
  // Without permission to connect it answers at once.
  EXPECT_EQ((*pool)->Acquire(milliseconds(10), false).status().code(), StatusCode::kUnavailable);
}

class PgPoolTest : public PgTest {};

TEST_F(PgPoolTest, BoundedAcquireTimesOut) {
  std::shared_ptr<PgPool> pool = MakePool(2);
  StatusOr<PgPool::Handle> a = pool->Acquire();
  StatusOr<PgPool::Handle> b = pool->Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(pool->open_count(), 2);
  auto start = std::chrono::steady_clock::now();
  StatusOr<PgPool::Handle> c = pool->Acquire(milliseconds(100));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("pool of 2"), std::string::npos);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
}

TEST_F(PgPoolTest, WaiterGetsReturnedConnection) {
  std::shared_ptr<PgPool> pool = MakePool(1);
  std::optional<PgPool::Handle> held(*pool->Acquire());
  std::thread releaser([&] {
    std::this_thread::sleep_for(milliseconds(50));
    held.reset();
  });
  StatusOr<PgPool::Handle> got = pool->Acquire(milliseconds(2000));
  releaser.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE((*got)->Execute("SELECT 1").ok());
  EXPECT_EQ(pool->open_count(), 1);
}

TEST_F(PgPoolTest, DeadConnectionIsReplacedAtAcquire) {
  std::shared_ptr<PgPool> pool = MakePool(2);
  SLUICE_ASSERT_OK(pool->Warm(2));
  EXPECT_EQ(pool->idle_count(), 2);
  Query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  std::this_thread::sleep_for(milliseconds(100));
  for (int i = 0; i < 3; ++i) {
    StatusOr<PgPool::Handle> conn = pool->Acquire();
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    StatusOr<PgResult> r = (*conn)->Execute("SELECT 1");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(pool->dropped_count(), 2);
}

TEST_F(PgPoolTest, ConcurrentUseStaysWithinBound) {
  std::shared_ptr<PgPool> pool = MakePool(3);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        StatusOr<PgPool::Handle> conn = pool->Acquire();
        if (!conn.ok() || !(*conn)->Execute("SELECT 1").ok()) failures++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(pool->open_count(), 3);
}

}  // namespace
}  // namespace sluice
