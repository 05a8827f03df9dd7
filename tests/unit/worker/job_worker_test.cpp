#include "worker/job_worker.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "backends/model_loader.h"
#include "common/check.h"
#include "engine/embedder.h"
#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

constexpr const char* kModel = "all-MiniLM-L6-v2";

// The real model, loaded once for the whole binary.
LoadedModel& Model() {
  static LoadedModel* model = [] {
    LoadOptions load;
    load.model_dir = std::string(SLUICE_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
    load.cpu_threads = 2;
    StatusOr<LoadedModel> m = LoadModel(load);
    SLUICE_CHECK(m.ok()) << m.status().ToString();
    return new LoadedModel(std::move(m).value());
  }();
  return *model;
}

// What `sluice embed` computes for `text`: the reference for every job result.
std::vector<float> Reference(const std::string& text) {
  EmbedderOptions options;
  options.max_seq_length = static_cast<size_t>(Model().dir.max_seq_length);
  options.normalize = Model().dir.normalize;
  Embedder embedder(*Model().tokenizer, *Model().backend, options);
  std::vector<float> out;
  Status s = embedder.Embed({text}, &out);
  SLUICE_CHECK(s.ok()) << s.ToString();
  return out;
}

class JobWorkerTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MigrateAll();
    pool_ = MakePool(4);
    PgJobQueueOptions queue_options;
    queue_options.backoff_base = milliseconds(50);
    queue_options.backoff_max = milliseconds(100);
    auto queue = PgJobQueue::Create(pool_, queue_options);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
    DynamicBatcherOptions batcher_options;
    batcher_options.policy.max_queue_delay = std::chrono::microseconds(0);
    auto batcher = DynamicBatcher::Create(batcher_options, {Model().backend.get()});
    ASSERT_TRUE(batcher.ok()) << batcher.status().ToString();
    batcher_ = std::move(batcher).value();
  }
  void TearDown() override {
    if (batcher_) batcher_->Stop();
    queue_.reset();
    pool_.reset();
    PgTest::TearDown();
  }

  JobWorkerOptions Options() const {
    JobWorkerOptions o;
    o.worker_id = "test-worker";
    o.models = {kModel};
    o.batch_jobs = 8;
    o.lease = std::chrono::seconds(5);
    o.poll_interval = milliseconds(100);
    o.max_input_length = static_cast<size_t>(Model().dir.max_seq_length);
    return o;
  }
  std::unique_ptr<JobWorker> MakeWorker(JobWorkerOptions options, PgListener* listener = nullptr) {
    auto w = JobWorker::Create(std::move(options), queue_.get(), listener, Model().tokenizer.get(),
                               batcher_.get());
    SLUICE_CHECK(w.ok()) << w.status().ToString();
    return std::move(w).value();
  }
  int64_t Enqueue(std::vector<std::string> inputs, const std::string& model = kModel) {
    StatusOr<int64_t> id = queue_->Enqueue(model, inputs);
    SLUICE_CHECK(id.ok()) << id.status().ToString();
    return *id;
  }
  JobRecord Get(int64_t id) {
    StatusOr<JobRecord> job = queue_->Get(id);
    SLUICE_CHECK(job.ok()) << job.status().ToString();
    return *job;
  }

  std::shared_ptr<PgPool> pool_;
  std::unique_ptr<PgJobQueue> queue_;
  std::unique_ptr<DynamicBatcher> batcher_;
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << "at " << i;
}

TEST_F(JobWorkerTest, CreateRefusesBadOptions) {
  struct Case {
    const char* what;
    void (*edit)(JobWorkerOptions&);
  };
  const Case cases[] = {
      {"empty worker id", [](JobWorkerOptions& o) { o.worker_id.clear(); }},
      {"no models", [](JobWorkerOptions& o) { o.models.clear(); }},
      {"zero batch", [](JobWorkerOptions& o) { o.batch_jobs = 0; }},
      {"short lease", [](JobWorkerOptions& o) { o.lease = milliseconds(500); }},
      {"heartbeat >= lease", [](JobWorkerOptions& o) { o.heartbeat_interval = o.lease; }},
      {"zero poll", [](JobWorkerOptions& o) { o.poll_interval = milliseconds(0); }},
      {"zero input length", [](JobWorkerOptions& o) { o.max_input_length = 0; }},
  };
  for (const Case& c : cases) {
    JobWorkerOptions o = Options();
    c.edit(o);
    auto w = JobWorker::Create(o, queue_.get(), nullptr, Model().tokenizer.get(), batcher_.get());
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument) << c.what;
  }
  EXPECT_EQ(JobWorker::Create(Options(), nullptr, nullptr, Model().tokenizer.get(), batcher_.get())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(JobWorkerTest, CompletesJobsWithTheVectorsOfSluiceEmbed) {
  std::vector<std::vector<std::string>> inputs = {
      {"the quick brown fox"},
      {"PostgreSQL is a queue", "and a cache", "for embeddings"},
      {"naïve café ☕ résumé"},
  };
  std::vector<int64_t> ids;
  for (const auto& in : inputs) ids.push_back(Enqueue(in));
  auto worker = MakeWorker(Options());
  StatusOr<int> claimed = worker->RunOnce();
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  EXPECT_EQ(*claimed, 3);
  for (size_t j = 0; j < ids.size(); ++j) {
    JobRecord job = Get(ids[j]);
    ASSERT_EQ(job.status, JobStatus::kCompleted) << job.error.value_or("");
    ASSERT_EQ(job.result.size(), inputs[j].size());
    for (size_t i = 0; i < inputs[j].size(); ++i)
      ExpectNear(job.result[i], Reference(inputs[j][i]));
  }
  EXPECT_EQ(worker->stats().completed, 3);
  EXPECT_EQ(worker->stats().batches, 1);
  // Nothing left: the next pass claims nothing.
  EXPECT_EQ(*worker->RunOnce(), 0);
}

TEST_F(JobWorkerTest, ClaimsAtMostBatchJobsPerPass) {
  for (int i = 0; i < 7; ++i) Enqueue({"text " + std::to_string(i)});
  JobWorkerOptions o = Options();
  o.batch_jobs = 3;
  auto worker = MakeWorker(o);
  EXPECT_EQ(*worker->RunOnce(), 3);
  EXPECT_EQ(*worker->RunOnce(), 3);
  EXPECT_EQ(*worker->RunOnce(), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.jobs WHERE status = 'completed'"), "7");
}

TEST_F(JobWorkerTest, LeavesAnotherModelsJobsForItsWorkers) {
  int64_t other = Enqueue({"hello"}, "some-other-model");  // first in claim order
  int64_t ours = Enqueue({"hello"});
  auto worker = MakeWorker(Options());
  EXPECT_EQ(*worker->RunOnce(), 1);
  EXPECT_EQ(*worker->RunOnce(), 0);
  EXPECT_EQ(Get(ours).status, JobStatus::kCompleted);
  JobRecord untouched = Get(other);
  EXPECT_EQ(untouched.status, JobStatus::kPending);
  EXPECT_EQ(untouched.attempt, 0);
  EXPECT_FALSE(untouched.worker_id.has_value());
  EXPECT_FALSE(untouched.error.has_value());
  EXPECT_EQ(worker->stats().failed, 0);

  // A worker serving that model (the same weights under another name) completes it.
  JobWorkerOptions o = Options();
  o.worker_id = "other-worker";
  o.models = {"some-other-model"};
  auto second = MakeWorker(o);
  EXPECT_EQ(*second->RunOnce(), 1);
  JobRecord done = Get(other);
  ASSERT_EQ(done.status, JobStatus::kCompleted);
  EXPECT_EQ(done.attempt, 1);
  EXPECT_EQ(done.worker_id.value_or(""), "other-worker");
  ExpectNear(done.result[0], Reference("hello"));
}

TEST_F(JobWorkerTest, OverLongInputFailsPermanentlyWithoutTruncation) {
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "word ";
  int64_t id = Enqueue({"short", long_text});
  JobWorkerOptions o = Options();
  o.truncate = false;
  auto worker = MakeWorker(o);
  EXPECT_EQ(*worker->RunOnce(), 1);
  JobRecord job = Get(id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_NE(job.error.value_or("").find("input[1]"), std::string::npos) << *job.error;
}

TEST_F(JobWorkerTest, TruncatesOverLongInputsLikeSluiceEmbed) {
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "word ";
  int64_t id = Enqueue({long_text});
  auto worker = MakeWorker(Options());
  EXPECT_EQ(*worker->RunOnce(), 1);
  JobRecord job = Get(id);
  ASSERT_EQ(job.status, JobStatus::kCompleted);
  ExpectNear(job.result[0], Reference(long_text));
}

TEST_F(JobWorkerTest, ReclaimsExpiredLeasesAndCompletesThem) {
  int64_t id = Enqueue({"abandoned by a crashed worker"});
  // A worker that claims and dies: the lease runs out with nobody renewing it.
  auto claimed = queue_->Claim("crashed", 1, milliseconds(200));
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1);
  std::this_thread::sleep_for(milliseconds(400));
  auto worker = MakeWorker(Options());
  EXPECT_EQ(*worker->ReclaimExpired(), 1);
  EXPECT_EQ(*worker->RunOnce(), 1);
  JobRecord job = Get(id);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.attempt, 2);
  EXPECT_EQ(job.worker_id.value_or(""), "test-worker");
  // The crashed worker's late completion loses the guard.
  auto late = queue_->Complete(id, (*claimed)[0].attempt, {std::vector<float>(384, 0.f)});
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late);
}

TEST_F(JobWorkerTest, CleanupDeletesOldCompletedJobsOnly) {
  int64_t old_done = Enqueue({"a"});
  int64_t new_done = Enqueue({"b"});
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "word ";
  int64_t bad = Enqueue({long_text});  // fails permanently without truncation
  JobWorkerOptions o = Options();
  o.truncate = false;
  auto worker = MakeWorker(o);
  EXPECT_EQ(*worker->RunOnce(), 3);
  ASSERT_EQ(Get(bad).status, JobStatus::kFailed);
  Query("UPDATE sluice.jobs SET completed_at = now() - interval '2 days' WHERE id IN (" +
        std::to_string(old_done) + "," + std::to_string(bad) + ")");
  EXPECT_EQ(*worker->CleanupCompleted(), 1);  // retention is one day
  EXPECT_EQ(queue_->Get(old_done).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(queue_->Get(new_done).ok());
  EXPECT_TRUE(queue_->Get(bad).ok());  // failed jobs stay for inspection
}

TEST_F(JobWorkerTest, RunWakesOnNotifyAndStops) {
  auto listener = PgListener::Create(PgTest::Options(), "sluice_jobs");
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  JobWorkerOptions o = Options();
  o.poll_interval = std::chrono::seconds(30);  // only a NOTIFY can wake it in time
  auto worker = MakeWorker(o, listener->get());
  std::thread runner([&] { worker->Run(); });
  std::this_thread::sleep_for(milliseconds(300));  // idle, LISTENing
  // A plain SQL insert, as a user would write it.
  std::string id = Query(
      "INSERT INTO sluice.jobs (model, input) VALUES ('all-MiniLM-L6-v2', "
      "'[\"inserted with plain SQL\"]') RETURNING id");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Get(std::stoll(id)).status != JobStatus::kCompleted &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  worker->Stop();
  runner.join();
  JobRecord job = Get(std::stoll(id));
  ASSERT_EQ(job.status, JobStatus::kCompleted);
  ExpectNear(job.result[0], Reference("inserted with plain SQL"));
}

TEST_F(JobWorkerTest, CancelledJobIsNotOverwritten) {
  int64_t id = Enqueue({"cancel me"});
  ASSERT_TRUE(queue_->Cancel(id).ok());
  auto worker = MakeWorker(Options());
  EXPECT_EQ(*worker->RunOnce(), 0);
  EXPECT_EQ(Get(id).status, JobStatus::kCancelled);
}

}  // namespace
}  // namespace sluice
