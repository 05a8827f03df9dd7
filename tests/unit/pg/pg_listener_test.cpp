#include "pg/pg_listener.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg/pg_job_queue.h"
#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

TEST(PgListenerCreateTest, RejectsBadChannelAndDsn) {
  PgConnectionOptions options;
  options.dsn = "postgresql://nobody@127.0.0.1:1/none";
  for (const char* channel : {"", "Upper", "semi;colon", "1abc"}) {
    EXPECT_EQ(PgListener::Create(options, channel).status().code(), StatusCode::kInvalidArgument)
        << channel;
  }
  options.dsn = "host=a port";
  EXPECT_EQ(PgListener::Create(options, "sluice_jobs").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PgListenerCreateTest, UnreachableServerFallsBackToPolling) {
  PgConnectionOptions options;
  options.dsn = "postgresql://nobody@127.0.0.1:1/none";
  StatusOr<std::unique_ptr<PgListener>> listener = PgListener::Create(options, "sluice_jobs");
  ASSERT_TRUE(listener.ok());
  EXPECT_FALSE((*listener)->connected());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE((*listener)->WaitForNotification(milliseconds(100)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(90));  // sleeps out the timeout: the caller polls at that pace
  EXPECT_LT(took, milliseconds(1000));
}

class PgListenerTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MigrateAll();
  }

  std::unique_ptr<PgListener> Listen(const std::string& channel) {
    StatusOr<std::unique_ptr<PgListener>> listener = PgListener::Create(Options(), channel);
    SLUICE_CHECK(listener.ok()) << listener.status().ToString();
    SLUICE_CHECK((*listener)->connected());
    return std::move(listener).value();
  }
};

TEST_F(PgListenerTest, TimesOutWithoutNotification) {
  std::unique_ptr<PgListener> listener = Listen("sluice_jobs");
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(listener->WaitForNotification(milliseconds(100)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(90));
}

TEST_F(PgListenerTest, EnqueueWakesAWaitingWorker) {
  std::unique_ptr<PgListener> listener = Listen("sluice_jobs");
  std::shared_ptr<PgPool> pool = MakePool(2);
  std::unique_ptr<PgJobQueue> queue = PgJobQueue::Create(pool).value();
  std::thread producer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    std::vector<std::string> inputs = {"wake up"};
    EXPECT_TRUE(queue->Enqueue("m", inputs).ok());
  });
  auto start = std::chrono::steady_clock::now();
  bool woke = listener->WaitForNotification(milliseconds(5000));
  auto took = std::chrono::steady_clock::now() - start;
  producer.join();
  EXPECT_TRUE(woke);
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_EQ(queue->Claim("w", 1, milliseconds(1000))->size(), 1u);
}

TEST_F(PgListenerTest, PlainSqlInsertNotifies) {
  std::unique_ptr<PgListener> listener = Listen("sluice_jobs");
  Query("INSERT INTO sluice.jobs (model, input) VALUES ('m', '[\"x\"]'), ('m', '[\"y\"]')");
  EXPECT_TRUE(listener->WaitForNotification(milliseconds(2000)));
  // One statement, one notification.
  EXPECT_FALSE(listener->WaitForNotification(milliseconds(100)));
}

TEST_F(PgListenerTest, FinishedJobNotifiesWithItsId) {
  std::unique_ptr<PgListener> listener = Listen("sluice_job_finished");
  std::shared_ptr<PgPool> pool = MakePool(2);
  std::unique_ptr<PgJobQueue> queue = PgJobQueue::Create(pool).value();
  std::vector<std::string> inputs = {"x"};
  int64_t id = queue->Enqueue("m", inputs).value();
  ClaimedJob job = queue->Claim("w", 1, milliseconds(30000))->at(0);
  EXPECT_FALSE(listener->WaitForNotification(milliseconds(50)));  // claiming is not finishing
  ASSERT_TRUE(queue->Complete(id, job.attempt, {{1.0f}}).value());
  ASSERT_TRUE(listener->WaitForNotification(milliseconds(2000)));
  EXPECT_EQ(listener->last_payload(), std::to_string(id));
}

TEST_F(PgListenerTest, ListenerReconnectsAfterItsBackendIsKilled) {
  std::unique_ptr<PgListener> listener = Listen("sluice_jobs");
  Query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE query LIKE 'LISTEN%' AND datname = current_database()");
  // The loss is noticed, then the next wait reconnects and reports a (possible) miss.
  bool reconnected = false;
  for (int i = 0; i < 20 && !reconnected; ++i) {
    listener->WaitForNotification(milliseconds(100));
    reconnected = listener->reconnects() > 0 && listener->connected();
  }
  ASSERT_TRUE(reconnected);
  Query("INSERT INTO sluice.jobs (model, input) VALUES ('m', '[\"x\"]')");
  EXPECT_TRUE(listener->WaitForNotification(milliseconds(2000)));
}

}  // namespace
}  // namespace sluice
