#include "pg/pg_job_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

TEST(JobStatusTest, NamesRoundTrip) {
  for (JobStatus s : {JobStatus::kPending, JobStatus::kProcessing, JobStatus::kCompleted,
                      JobStatus::kFailed, JobStatus::kDead, JobStatus::kCancelled}) {
    EXPECT_EQ(*ParseJobStatus(JobStatusName(s)), s);
  }
  EXPECT_EQ(ParseJobStatus("done").status().code(), StatusCode::kInvalidArgument);
}

class PgJobQueueTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MigrateAll();
    pool_ = MakePool(8);
    PgJobQueueOptions options;
    options.backoff_base = milliseconds(200);
    options.backoff_max = milliseconds(1000);
    StatusOr<std::unique_ptr<PgJobQueue>> queue = PgJobQueue::Create(pool_, options);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
  }
  void TearDown() override {
    queue_.reset();
    pool_.reset();
    PgTest::TearDown();
  }

  int64_t MustEnqueue(std::vector<std::string> inputs, int32_t priority = 0,
                      int32_t max_attempts = 3, std::string_view model = "m") {
    StatusOr<int64_t> id = queue_->Enqueue(model, inputs, priority, max_attempts);
    SLUICE_CHECK(id.ok()) << id.status().ToString();
    return *id;
  }

  // One thread per entry of `serves` claims batches of up to `batch` jobs of those models (all
  // models when empty) and completes them until none is left; every one of the `jobs` pending
  // jobs must be claimed exactly once, by a claimer serving its model.
  void ClaimAllConcurrently(const std::vector<std::vector<std::string>>& serves, int batch,
                            int jobs) {
    std::vector<std::vector<int64_t>> claimed(serves.size());
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (size_t t = 0; t < serves.size(); ++t) {
      threads.emplace_back([&, t] {
        while (true) {
          StatusOr<std::vector<ClaimedJob>> got =
              queue_->Claim("w" + std::to_string(t), batch, milliseconds(30000), serves[t]);
          if (!got.ok() || got->size() > static_cast<size_t>(batch)) {
            errors++;
            return;
          }
          if (got->empty()) return;
          for (const ClaimedJob& j : *got) {
            if (!serves[t].empty() &&
                std::find(serves[t].begin(), serves[t].end(), j.model) == serves[t].end()) {
              errors++;
            }
            claimed[t].push_back(j.id);
            if (!queue_->Complete(j.id, j.attempt, {{1.0f}}).value()) errors++;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(errors.load(), 0);
    std::set<int64_t> all;
    size_t total = 0;
    for (const auto& ids : claimed) {
      total += ids.size();
      all.insert(ids.begin(), ids.end());
    }
    EXPECT_EQ(total, static_cast<size_t>(jobs));
    EXPECT_EQ(all.size(), static_cast<size_t>(jobs));
    EXPECT_EQ(Query("SELECT count(*) FROM sluice.jobs WHERE status = 'completed'"),
              std::to_string(jobs));
  }

  std::shared_ptr<PgPool> pool_;
  std::unique_ptr<PgJobQueue> queue_;
};

TEST_F(PgJobQueueTest, CreateRefusesUnmigratedDatabase) {
  Query(
      "DELETE FROM sluice.schema_migrations "
      "WHERE version = (SELECT max(version) FROM sluice.schema_migrations)");
  StatusOr<std::unique_ptr<PgJobQueue>> queue = PgJobQueue::Create(pool_);
  ASSERT_FALSE(queue.ok());
  EXPECT_NE(queue.status().message().find("run `sluice migrate`"), std::string::npos);
}

TEST_F(PgJobQueueTest, EnqueueGetRoundTrip) {
  std::vector<std::string> inputs = {"hello", "wörld \"quoted\"", "", "[not json]"};
  int64_t id = MustEnqueue(inputs, 5, 4);
  StatusOr<JobRecord> job = queue_->Get(id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->id, id);
  EXPECT_EQ(job->model, "m");
  EXPECT_EQ(job->inputs, inputs);
  EXPECT_EQ(job->status, JobStatus::kPending);
  EXPECT_EQ(job->priority, 5);
  EXPECT_EQ(job->attempt, 0);
  EXPECT_EQ(job->max_attempts, 4);
  EXPECT_FALSE(job->lease_expires_at.has_value());
  EXPECT_FALSE(job->completed_at.has_value());
  auto age = std::chrono::system_clock::now() - job->created_at;
  EXPECT_LT(std::chrono::abs(age), std::chrono::seconds(30));
  // Stored as a JSON array of strings, readable from plain SQL.
  EXPECT_EQ(Query("SELECT input->>1 FROM sluice.jobs WHERE id = " + std::to_string(id)),
            "wörld \"quoted\"");
  EXPECT_EQ(queue_->Get(id + 1000).status().code(), StatusCode::kNotFound);
}

TEST_F(PgJobQueueTest, EnqueueRejectsBadInput) {
  std::vector<std::string> none;
  std::vector<std::string> one = {"x"};
  EXPECT_EQ(queue_->Enqueue("m", none).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Enqueue("", one).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Enqueue("m", one, 0, 0).status().code(), StatusCode::kInvalidArgument);
  std::vector<std::string> nul = {std::string("a\0b", 3)};
  EXPECT_EQ(queue_->Enqueue("m", nul).status().code(), StatusCode::kInvalidArgument);
  std::vector<std::string> huge = {std::string(2 << 20, 'a')};
  EXPECT_EQ(queue_->Enqueue("m", huge).status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.jobs"), "0");
}

TEST_F(PgJobQueueTest, ClaimNeverReturnsMoreThanNAndHonorsPriority) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustEnqueue({"low" + std::to_string(i)}, 0));
  int64_t urgent = MustEnqueue({"urgent"}, 10);
  StatusOr<std::vector<ClaimedJob>> first = queue_->Claim("w1", 3, milliseconds(30000));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].id, urgent);
  EXPECT_EQ((*first)[1].id, ids[0]);
  EXPECT_EQ((*first)[2].id, ids[1]);
  EXPECT_EQ((*first)[0].inputs, std::vector<std::string>{"urgent"});
  EXPECT_EQ((*first)[0].attempt, 1);
  EXPECT_GT((*first)[0].lease_expires_at, std::chrono::system_clock::now());
  StatusOr<std::vector<ClaimedJob>> rest = queue_->Claim("w2", 10, milliseconds(30000));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 3u);
  EXPECT_TRUE(queue_->Claim("w3", 10, milliseconds(30000))->empty());
  StatusOr<JobRecord> job = queue_->Get(urgent);
  EXPECT_EQ(job->status, JobStatus::kProcessing);
  EXPECT_EQ(job->worker_id, "w1");
  EXPECT_EQ(queue_->Claim("w", 0, milliseconds(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Claim("", 1, milliseconds(1)).status().code(), StatusCode::kInvalidArgument);
}

std::vector<int64_t> Ids(const std::vector<ClaimedJob>& jobs) {
  std::vector<int64_t> ids;
  for (const ClaimedJob& j : jobs) ids.push_back(j.id);
  return ids;
}

TEST_F(PgJobQueueTest, ClaimWithModelsTakesOnlyThoseModels) {
  int64_t a_low = MustEnqueue({"a low"}, 0, 3, "a");
  int64_t b_high = MustEnqueue({"b high"}, 9, 3, "b");
  int64_t a_high = MustEnqueue({"a high"}, 5, 3, "a");
  int64_t c_low = MustEnqueue({"c low"}, 0, 3, "c");
  int64_t a_low2 = MustEnqueue({"a low 2"}, 0, 3, "a");
  int64_t b_low = MustEnqueue({"b low"}, 0, 3, "b");
  int64_t c_high = MustEnqueue({"c high"}, 7, 3, "c");

  // One model: its jobs only, priority first, then FIFO, never more than n.
  std::vector<std::string> a = {"a"};
  StatusOr<std::vector<ClaimedJob>> first = queue_->Claim("wa", 2, milliseconds(30000), a);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Ids(*first), (std::vector<int64_t>{a_high, a_low}));
  for (const ClaimedJob& j : *first) EXPECT_EQ(j.model, "a");
  EXPECT_EQ(Ids(*queue_->Claim("wa", 10, milliseconds(30000), a)), std::vector<int64_t>{a_low2});
  EXPECT_TRUE(queue_->Claim("wa", 10, milliseconds(30000), a)->empty());

  // The other models' jobs are untouched: pending, never attempted, held by no one.
  for (int64_t id : {b_high, c_low, b_low, c_high}) {
    StatusOr<JobRecord> job = queue_->Get(id);
    EXPECT_EQ(job->status, JobStatus::kPending) << id;
    EXPECT_EQ(job->attempt, 0) << id;
    EXPECT_FALSE(job->worker_id.has_value()) << id;
  }

  // Several models: merged in claim order.
  std::vector<std::string> b_and_c = {"c", "b"};
  StatusOr<std::vector<ClaimedJob>> both = queue_->Claim("wbc", 3, milliseconds(30000), b_and_c);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(Ids(*both), (std::vector<int64_t>{b_high, c_high, c_low}));
  EXPECT_EQ(queue_->Get(c_high)->worker_id, "wbc");

  // A model nobody enqueued finds nothing; no models at all means any model.
  std::vector<std::string> none = {"z"};
  EXPECT_TRUE(queue_->Claim("wz", 10, milliseconds(30000), none)->empty());
  EXPECT_EQ(Ids(*queue_->Claim("any", 10, milliseconds(30000), {})), std::vector<int64_t>{b_low});
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.jobs WHERE status = 'pending'"), "0");
}

TEST_F(PgJobQueueTest, ClaimRejectsAnEmptyModelName) {
  MustEnqueue({"x"});
  std::vector<std::string> models = {"m", ""};
  EXPECT_EQ(queue_->Claim("w", 1, milliseconds(30000), models).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Query("SELECT status FROM sluice.jobs"), "pending");
}

// A row another claimer holds (its claim statement still running) is skipped, not waited for,
// and a claimer for another model does not touch it at all.
TEST_F(PgJobQueueTest, ModelClaimSkipsRowsLockedByAnotherClaimer) {
  int64_t a1 = MustEnqueue({"a1"}, 0, 3, "a");
  int64_t a2 = MustEnqueue({"a2"}, 0, 3, "a");
  int64_t b1 = MustEnqueue({"b1"}, 0, 3, "b");
  PgConnection holder = Connect();
  SLUICE_ASSERT_OK(holder.ExecuteScript(
      "BEGIN; SELECT id FROM sluice.jobs WHERE id = " + std::to_string(a1) + " FOR UPDATE"));
  std::vector<std::string> a = {"a"};
  std::vector<std::string> b = {"b"};
  EXPECT_EQ(Ids(*queue_->Claim("wb", 10, milliseconds(30000), b)), std::vector<int64_t>{b1});
  EXPECT_EQ(Ids(*queue_->Claim("wa", 10, milliseconds(30000), a)), std::vector<int64_t>{a2});
  SLUICE_ASSERT_OK(holder.ExecuteScript("ROLLBACK"));
  EXPECT_EQ(Ids(*queue_->Claim("wa", 10, milliseconds(30000), a)), std::vector<int64_t>{a1});
}

// A worker usually serves one model: that claim must walk jobs_claim_model_idx in claim order
// and stop after n rows, whatever the pending jobs of other models.
TEST_F(PgJobQueueTest, OneModelClaimWalksTheModelIndex) {
  Query(
      "INSERT INTO sluice.jobs (model, input, priority) "
      "SELECT 'm' || (i % 4), '[\"x\"]', i % 3 FROM generate_series(1, 2000) AS i");
  Query("ANALYZE sluice.jobs");
  // One connection: Claim prepares its statement there, and EXPLAIN EXECUTE plans that one.
  std::shared_ptr<PgPool> pool = MakePool(1);
  StatusOr<std::unique_ptr<PgJobQueue>> queue = PgJobQueue::Create(pool);
  ASSERT_TRUE(queue.ok()) << queue.status().ToString();
  std::vector<std::string> models = {"m1"};
  ASSERT_EQ((*queue)->Claim("w", 1, milliseconds(30000), models)->size(), 1u);
  StatusOr<PgPool::Handle> conn = pool->Acquire();
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  for (const char* mode : {"force_custom_plan", "force_generic_plan"}) {
    SLUICE_ASSERT_OK((**conn).ExecuteScript(std::string("SET plan_cache_mode = ") + mode));
    StatusOr<PgResult> plan =
        (**conn).Execute("EXPLAIN (COSTS OFF) EXECUTE sluice_job_claim_model('w', 8, 30000, 'm1')");
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::string text;
    for (int row = 0; row < plan->rows(); ++row) text += std::string(plan->Raw(row, 0)) + "\n";
    EXPECT_NE(text.find("Index Scan using jobs_claim_model_idx"), std::string::npos) << mode << "\n"
                                                                                     << text;
    EXPECT_EQ(text.find("Sort"), std::string::npos) << mode << "\n" << text;
  }
}

TEST_F(PgJobQueueTest, ConcurrentClaimersNeverShareAJob) {
  constexpr int kJobs = 300;
  for (int i = 0; i < kJobs; ++i) MustEnqueue({std::to_string(i)});
  ClaimAllConcurrently(std::vector<std::vector<std::string>>(6), 7, kJobs);
}

TEST_F(PgJobQueueTest, ConcurrentClaimersForDifferentModelsNeverShareAJob) {
  constexpr int kJobs = 240;
  for (int i = 0; i < kJobs; ++i) MustEnqueue({std::to_string(i)}, i % 3, 3, i % 2 ? "a" : "b");
  // Two claimers for a, one for b, one for both.
  ClaimAllConcurrently({{"a"}, {"a"}, {"b"}, {"a", "b"}}, 5, kJobs);
}

TEST_F(PgJobQueueTest, CompleteStoresVectorsAndGuardsTheAttempt) {
  int64_t id = MustEnqueue({"a", "b"});
  ClaimedJob job = queue_->Claim("w", 1, milliseconds(30000))->at(0);
  std::vector<std::vector<float>> result = {{1.5f, -2.0f, 0.25f}, {3.0f, 4.0f, 5.0f}};
  EXPECT_EQ(queue_->Complete(id, job.attempt + 1, result).value(), false);  // stale guess
  EXPECT_EQ(queue_->Complete(id, job.attempt, result).value(), true);
  EXPECT_EQ(queue_->Complete(id, job.attempt, {{9.0f, 9.0f, 9.0f}, {9.0f, 9.0f, 9.0f}}).value(),
            false);  // already completed
  StatusOr<JobRecord> done = queue_->Get(id);
  EXPECT_EQ(done->status, JobStatus::kCompleted);
  EXPECT_EQ(done->result, result);
  EXPECT_TRUE(done->completed_at.has_value());
  EXPECT_FALSE(done->lease_expires_at.has_value());
  EXPECT_EQ(Query("SELECT length(result) || '/' || result_dim FROM sluice.jobs"), "24/3");
}

TEST_F(PgJobQueueTest, CompleteManyGuardsEachJob) {
  int64_t a = MustEnqueue({"a"});
  int64_t b = MustEnqueue({"b"});
  int64_t c = MustEnqueue({"c"});
  std::vector<ClaimedJob> jobs = queue_->Claim("w", 3, milliseconds(30000)).value();
  ASSERT_EQ(jobs.size(), 3u);
  SLUICE_ASSERT_OK(queue_->Cancel(b));
  std::vector<PgJobQueue::Completion> batch = {
      {a, jobs[0].attempt, {{1.0f, 2.0f}}},
      {b, jobs[1].attempt, {{3.0f, 4.0f}}},      // cancelled meanwhile: loses
      {c, jobs[2].attempt + 5, {{5.0f, 6.0f}}},  // wrong attempt: loses
  };
  StatusOr<std::vector<bool>> won = queue_->CompleteMany(batch);
  ASSERT_TRUE(won.ok()) << won.status().ToString();
  EXPECT_EQ(*won, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(queue_->Get(a)->result, (std::vector<std::vector<float>>{{1.0f, 2.0f}}));
  EXPECT_EQ(queue_->Get(b)->status, JobStatus::kCancelled);
  EXPECT_EQ(queue_->Get(c)->status, JobStatus::kProcessing);

  // A bad result anywhere is refused before anything is written.
  std::vector<PgJobQueue::Completion> bad = {{c, jobs[2].attempt, {{1.0f}}},
                                             {a, jobs[0].attempt, {}}};
  EXPECT_EQ(queue_->CompleteMany(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Get(c)->status, JobStatus::kProcessing);
  EXPECT_TRUE(queue_->CompleteMany({})->empty());
}

TEST_F(PgJobQueueTest, CompleteRejectsRaggedResult) {
  int64_t id = MustEnqueue({"a", "b"});
  ClaimedJob job = queue_->Claim("w", 1, milliseconds(30000))->at(0);
  EXPECT_EQ(queue_->Complete(id, job.attempt, {{1.0f}, {1.0f, 2.0f}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Complete(id, job.attempt, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Complete(id, job.attempt, {{}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Get(id)->status, JobStatus::kProcessing);
}

TEST_F(PgJobQueueTest, ZombieWorkerLosesAfterLeaseExpiry) {
  int64_t id = MustEnqueue({"a"});
  ClaimedJob zombie = queue_->Claim("zombie", 1, milliseconds(50))->at(0);
  std::this_thread::sleep_for(milliseconds(120));
  EXPECT_EQ(queue_->ReclaimExpired().value(), 1);
  StatusOr<JobRecord> back = queue_->Get(id);
  EXPECT_EQ(back->status, JobStatus::kPending);
  EXPECT_NE(back->error->find("lease expired"), std::string::npos);
  ClaimedJob fresh = queue_->Claim("fresh", 1, milliseconds(30000))->at(0);
  EXPECT_EQ(fresh.attempt, 2);
  EXPECT_FALSE(queue_->Complete(id, zombie.attempt, {{0.0f}}).value());
  EXPECT_EQ(queue_->Fail(id, zombie.attempt, "late failure").value(), FailOutcome::kLost);
  // The zombie's heartbeat tells it the job is no longer its own.
  std::vector<int64_t> ids = {id};
  EXPECT_TRUE(queue_->Heartbeat("zombie", ids, milliseconds(1000))->empty());
  EXPECT_TRUE(queue_->Complete(id, fresh.attempt, {{7.0f}}).value());
  EXPECT_EQ(queue_->Get(id)->result, std::vector<std::vector<float>>{{7.0f}});
}

TEST_F(PgJobQueueTest, HeartbeatExtendsTheLease) {
  int64_t a = MustEnqueue({"a"});
  int64_t b = MustEnqueue({"b"});
  std::vector<ClaimedJob> jobs = *queue_->Claim("w", 2, milliseconds(150));
  std::vector<int64_t> ids = {a, b, 999999};
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(milliseconds(60));
    StatusOr<std::vector<int64_t>> held = queue_->Heartbeat("w", ids, milliseconds(150));
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    EXPECT_EQ(*held, (std::vector<int64_t>{a, b}));
    EXPECT_EQ(queue_->ReclaimExpired().value(), 0);
  }
  EXPECT_TRUE(queue_->Heartbeat("other", ids, milliseconds(150))->empty());
}

TEST_F(PgJobQueueTest, FailBacksOffThenDiesWithErrorKept) {
  int64_t id = MustEnqueue({"a"}, 0, 3);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    // A failed job is not runnable before its backoff (>= half of 200 ms * 2^(k-1)) passes.
    std::vector<ClaimedJob> jobs;
    auto start = std::chrono::steady_clock::now();
    while (jobs.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      jobs = *queue_->Claim("w", 1, milliseconds(30000));
      if (jobs.empty()) std::this_thread::sleep_for(milliseconds(20));
    }
    ASSERT_EQ(jobs.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(jobs[0].attempt, attempt);
    if (attempt > 1) {
      auto waited = std::chrono::steady_clock::now() - start;
      EXPECT_GE(waited, milliseconds(100 * (1 << (attempt - 2))) - milliseconds(30));
    }
    std::string error = "boom " + std::to_string(attempt);
    FailOutcome outcome = queue_->Fail(id, attempt, error).value();
    StatusOr<JobRecord> job = queue_->Get(id);
    EXPECT_EQ(job->error, error);
    if (attempt < 3) {
      EXPECT_EQ(outcome, FailOutcome::kRetry);
      EXPECT_EQ(job->status, JobStatus::kPending);
      auto delay = job->run_after - job->updated_at;
      EXPECT_GE(delay, milliseconds(100 * (1 << (attempt - 1))) - milliseconds(5));
      EXPECT_LE(delay, milliseconds(200 * (1 << (attempt - 1))) + milliseconds(5));
    } else {
      EXPECT_EQ(outcome, FailOutcome::kDead);
      EXPECT_EQ(job->status, JobStatus::kDead);
      EXPECT_TRUE(job->completed_at.has_value());
    }
  }
  EXPECT_TRUE(queue_->Claim("w", 1, milliseconds(30000))->empty());
}

TEST_F(PgJobQueueTest, PermanentFailureSkipsRetries) {
  int64_t id = MustEnqueue({"a"}, 0, 5);
  ClaimedJob job = queue_->Claim("w", 1, milliseconds(30000))->at(0);
  EXPECT_EQ(queue_->Fail(id, job.attempt, "input too long", true).value(), FailOutcome::kFailed);
  EXPECT_EQ(queue_->Get(id)->status, JobStatus::kFailed);
  EXPECT_EQ(queue_->Get(id)->error, "input too long");
}

TEST_F(PgJobQueueTest, ExpiredLastAttemptGoesDead) {
  int64_t id = MustEnqueue({"a"}, 0, 1);
  ASSERT_EQ(queue_->Claim("w", 1, milliseconds(20))->size(), 1u);
  std::this_thread::sleep_for(milliseconds(60));
  EXPECT_EQ(queue_->ReclaimExpired().value(), 1);
  EXPECT_EQ(queue_->Get(id)->status, JobStatus::kDead);
}

TEST_F(PgJobQueueTest, CancelPendingAndProcessing) {
  int64_t pending = MustEnqueue({"a"});
  SLUICE_ASSERT_OK(queue_->Cancel(pending));
  EXPECT_EQ(queue_->Get(pending)->status, JobStatus::kCancelled);
  EXPECT_TRUE(queue_->Claim("w", 5, milliseconds(30000))->empty());

  int64_t running = MustEnqueue({"b"});
  ClaimedJob job = queue_->Claim("w", 1, milliseconds(30000))->at(0);
  SLUICE_ASSERT_OK(queue_->Cancel(running));
  EXPECT_FALSE(queue_->Complete(running, job.attempt, {{1.0f}}).value());
  EXPECT_EQ(queue_->Get(running)->status, JobStatus::kCancelled);

  Status again = queue_->Cancel(running);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already cancelled"), std::string::npos);
  EXPECT_EQ(queue_->Cancel(424242).code(), StatusCode::kNotFound);
}

TEST_F(PgJobQueueTest, CleanupDeletesOnlyOldFinishedJobs) {
  int64_t done = MustEnqueue({"a"});
  int64_t cancelled = MustEnqueue({"b"});
  int64_t dead = MustEnqueue({"c"}, 0, 1);
  int64_t pending = MustEnqueue({"d"});
  std::vector<ClaimedJob> first = queue_->Claim("w", 1, milliseconds(30000)).value();
  for (const ClaimedJob& j : first) {
    ASSERT_TRUE(queue_->Complete(j.id, j.attempt, {{1.0f}}).value());
  }
  SLUICE_ASSERT_OK(queue_->Cancel(cancelled));
  ClaimedJob d = queue_->Claim("w", 1, milliseconds(30000))->at(0);
  ASSERT_EQ(d.id, dead);
  ASSERT_EQ(queue_->Fail(dead, d.attempt, "x").value(), FailOutcome::kDead);
  EXPECT_EQ(queue_->CleanupCompleted(std::chrono::hours(1)).value(), 0);
  Query("UPDATE sluice.jobs SET completed_at = now() - interval '2 hours'");
  EXPECT_EQ(queue_->CleanupCompleted(std::chrono::hours(1)).value(), 2);
  EXPECT_EQ(queue_->Get(done).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(queue_->Get(cancelled).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(queue_->Get(dead)->status, JobStatus::kDead);
  EXPECT_EQ(queue_->Get(pending)->status, JobStatus::kPending);
}

TEST_F(PgJobQueueTest, PlainSqlInsertIsClaimable) {
  Query(
      "INSERT INTO sluice.jobs (model, input, priority) "
      "VALUES ('m', '[\"from\", \"psql\"]', 3) RETURNING id");
  std::vector<ClaimedJob> jobs = *queue_->Claim("w", 5, milliseconds(30000));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].inputs, (std::vector<std::string>{"from", "psql"}));
  EXPECT_EQ(jobs[0].priority, 3);
  EXPECT_EQ(jobs[0].max_attempts, 3);
}

TEST_F(PgJobQueueTest, DelayedJobWaitsForRunAfter) {
  Query(
      "INSERT INTO sluice.jobs (model, input, run_after) "
      "VALUES ('m', '[\"later\"]', now() + interval '300 milliseconds')");
  EXPECT_TRUE(queue_->Claim("w", 1, milliseconds(30000))->empty());
  std::this_thread::sleep_for(milliseconds(350));
  EXPECT_EQ(queue_->Claim("w", 1, milliseconds(30000))->size(), 1u);
}

}  // namespace
}  // namespace sluice
