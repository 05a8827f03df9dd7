#include "scheduler/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// Each sequence's echo vector: [length, first id, last id, sequences in its batch].
void EchoVectors(const Batch& batch, std::vector<float>* out) {
  out->clear();
  const size_t n = batch.num_sequences();
  for (size_t i = 0; i < n; ++i) {
    const int32_t begin = batch.cu_seqlens[i], end = batch.cu_seqlens[i + 1];
    out->push_back(static_cast<float>(end - begin));
    out->push_back(static_cast<float>(batch.input_ids[begin]));
    out->push_back(static_cast<float>(batch.input_ids[end - 1]));
    out->push_back(static_cast<float>(n));
  }
}

// A deterministic Backend for the batcher's own logic: each sequence's vector is
// [length, first id, last id, sequences in its batch]. It records every batch it runs and can
// be held shut to let work pile up in the queue.
class EchoBackend : public Backend {
 public:
  std::string name() const override { return "echo"; }
  int embedding_dim() const override { return 4; }
  Status Health() const override { return Status::Ok(); }
  Status Warmup(const BatchLimits&) override { return Status::Ok(); }
  Status Embed(const Batch& batch, std::vector<float>* out) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++running_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      batches_.push_back(batch);
    }
    if (fail_) return Unavailable("device lost");
    EchoVectors(batch, out);
    return Status::Ok();
  }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `n` Embed() calls have started.
  void WaitRunning(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return running_ >= n; });
  }
  std::vector<Batch> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  bool SawId(int32_t id) {
    for (const Batch& b : batches()) {
      for (int32_t x : b.input_ids) {
        if (x == id) return true;
      }
    }
    return false;
  }
  bool fail_ = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int running_ = 0;
  std::vector<Batch> batches_;
};

// A Backend with a two-deep pipeline, like the GPU's: Submit() takes a batch and returns at
// once; Collect() produces EchoBackend's vectors and can be held shut. It records how many
// batches were ever uncollected at once and refuses misuse as the real one does.
class PipelinedBackend : public Backend {
 public:
  std::string name() const override { return "pipelined"; }
  int embedding_dim() const override { return 4; }
  Status Health() const override { return Status::Ok(); }
  Status Warmup(const BatchLimits&) override { return Status::Ok(); }
  Status Embed(const Batch&, std::vector<float>*) override {
    ++embed_calls_;
    return Internal("a pipelined replica must use Submit/Collect");
  }
  int max_in_flight() const override { return 2; }
  StatusOr<uint64_t> Submit(const Batch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= 2) return FailedPrecondition("two batches already in flight");
    if (fail_submit_id_ >= 0 && batch.input_ids[0] == fail_submit_id_) {
      return InvalidArgument("refused at submit");
    }
    pending_.emplace_back(++next_ticket_, batch);
    max_outstanding_ = std::max(max_outstanding_, pending_.size());
    return next_ticket_;
  }
  Status Collect(uint64_t ticket, std::vector<float>* out) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    if (pending_.empty() || pending_.front().first != ticket) {
      return InvalidArgument("tickets must be collected in submission order");
    }
    Batch batch = std::move(pending_.front().second);
    pending_.pop_front();
    EchoVectors(batch, out);
    return Status::Ok();
  }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  size_t max_outstanding() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_outstanding_;
  }
  std::atomic<int> embed_calls_{0};
  int32_t fail_submit_id_ = -1;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::deque<std::pair<uint64_t, Batch>> pending_;
  uint64_t next_ticket_ = 0;
  size_t max_outstanding_ = 0;
};

Encoding Seq(int32_t first, size_t len) {
  Encoding e;
  for (size_t i = 0; i < len; ++i) e.ids.push_back(first + static_cast<int32_t>(i));
  e.type_ids.assign(len, 0);
  return e;
}

// Submits `task` and returns a future of its result.
std::future<StatusOr<std::vector<float>>> Submit(DynamicBatcher& b, EmbedTask task) {
  auto promise = std::make_shared<std::promise<StatusOr<std::vector<float>>>>();
  auto future = promise->get_future();
  task.done = [promise](StatusOr<std::vector<float>> v) { promise->set_value(std::move(v)); };
  b.Submit(std::move(task));
  return future;
}

std::unique_ptr<DynamicBatcher> MakeBatcher(std::vector<Backend*> replicas, size_t tokens,
                                            size_t requests, microseconds delay) {
  DynamicBatcherOptions options;
  options.policy.max_batch_tokens = tokens;
  options.policy.max_batch_requests = requests;
  options.policy.max_queue_delay = delay;
  auto b = DynamicBatcher::Create(std::move(options), std::move(replicas));
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

TEST(DynamicBatcherTest, CreateRejectsBadConfigurations) {
  EchoBackend echo;
  EXPECT_EQ(DynamicBatcher::Create({}, {}).status().code(), StatusCode::kInvalidArgument);
  DynamicBatcherOptions zero;
  zero.policy.max_batch_requests = 0;
  EXPECT_EQ(DynamicBatcher::Create(zero, {&echo}).status().code(), StatusCode::kInvalidArgument);
}

TEST(DynamicBatcherTest, ClientBatchLargerThanABatchIsSplitAndReassembledInOrder) {
  EchoBackend echo;
  auto batcher = MakeBatcher({&echo}, 1000, 3, microseconds(0));
  EmbedTask task;
  for (int i = 0; i < 10; ++i) task.sequences.push_back(Seq(100 * (i + 1), 1 + i % 4));
  auto result = Submit(*batcher, std::move(task)).get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->size(), 40u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ((*result)[4 * i], static_cast<float>(1 + i % 4)) << i;
    EXPECT_EQ((*result)[4 * i + 1], static_cast<float>(100 * (i + 1))) << i;
  }
  size_t total = 0;
  for (const Batch& b : echo.batches()) {
    EXPECT_LE(b.num_sequences(), 3u);
    total += b.num_sequences();
  }
  EXPECT_EQ(total, 10u);
}

TEST(DynamicBatcherTest, ConcurrentRequestsShareBatchesAndEachGetsItsOwnVectors) {
  EchoBackend echo;
  auto batcher = MakeBatcher({&echo}, 4096, 32, microseconds(500));
  echo.Hold();  // let requests pile up so they must be batched together
  std::vector<std::future<StatusOr<std::vector<float>>>> futures;
  for (int i = 0; i < 100; ++i) {
    EmbedTask task;
    task.sequences.push_back(Seq(1000 * (i + 1), 1 + i % 7));
    if (i % 3 == 0) task.sequences.push_back(Seq(1000 * (i + 1) + 500, 2));
    futures.push_back(Submit(*batcher, std::move(task)));
  }
  echo.Release();
  for (int i = 0; i < 100; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), i % 3 == 0 ? 8u : 4u);
    EXPECT_EQ((*r)[0], static_cast<float>(1 + i % 7));
    EXPECT_EQ((*r)[1], static_cast<float>(1000 * (i + 1)));
    if (i % 3 == 0) {
      EXPECT_EQ((*r)[5], static_cast<float>(1000 * (i + 1) + 500));
    }
  }
  size_t largest = 0;
  for (const Batch& b : echo.batches()) largest = std::max(largest, b.num_sequences());
  EXPECT_GT(largest, 1u) << "requests queued together were never batched";
  EXPECT_LE(largest, 32u);
}

TEST(DynamicBatcherTest, BatchingOffRunsOneSequencePerBatch) {
  EchoBackend echo;
  auto batcher = MakeBatcher({&echo}, 4096, 1, microseconds(1000));
  EmbedTask task;
  for (int i = 0; i < 5; ++i) task.sequences.push_back(Seq(10 * i + 1, 3));
  ASSERT_TRUE(Submit(*batcher, std::move(task)).get().ok());
  for (const Batch& b : echo.batches()) EXPECT_EQ(b.num_sequences(), 1u);
  EXPECT_EQ(echo.batches().size(), 5u);
}

TEST(DynamicBatcherTest, BatchWaitsForTheQueueDelayThenCloses) {
  EchoBackend echo;
  auto batcher = MakeBatcher({&echo}, 4096, 64, microseconds(50000));
  SteadyTime start = SteadyClock::now();
  EmbedTask task;
  task.sequences.push_back(Seq(1, 2));
  ASSERT_TRUE(Submit(*batcher, std::move(task)).get().ok());
  EXPECT_GE(SteadyClock::now() - start, milliseconds(50));
}

TEST(DynamicBatcherTest, ExpiredRequestIsAnsweredWithoutCompute) {
  EchoBackend echo;
  // One replica slot, so the second request must wait in the queue.
  DynamicBatcherOptions options;
  options.policy.max_queue_delay = microseconds(0);
  options.max_batches_per_replica = 1;
  auto batcher = std::move(DynamicBatcher::Create(options, {&echo})).value();
  echo.Hold();
  EmbedTask first;
  first.sequences.push_back(Seq(1, 2));
  auto first_result = Submit(*batcher, std::move(first));
  echo.WaitRunning(1);

  EmbedTask late;
  late.sequences.push_back(Seq(777, 2));
  late.deadline = SteadyClock::now() + milliseconds(30);
  SteadyTime submitted = SteadyClock::now();
  auto late_result = Submit(*batcher, std::move(late));
  // Answered at its deadline while the replica is still busy, not when the replica frees up.
  ASSERT_EQ(late_result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_LT(SteadyClock::now() - submitted, milliseconds(1000));
  EXPECT_EQ(late_result.get().status().code(), StatusCode::kDeadlineExceeded);
  echo.Release();
  EXPECT_TRUE(first_result.get().ok());
  EXPECT_FALSE(echo.SawId(777));
}

TEST(DynamicBatcherTest, DueBatchWithEveryReplicaBusyDoesNotSpin) {
  EchoBackend echo;
  DynamicBatcherOptions options;
  options.policy.max_queue_delay = microseconds(0);
  options.max_batches_per_replica = 1;
  auto batcher = std::move(DynamicBatcher::Create(options, {&echo})).value();
  echo.Hold();
  EmbedTask first;
  first.sequences.push_back(Seq(1, 2));
  auto first_result = Submit(*batcher, std::move(first));
  echo.WaitRunning(1);
  EmbedTask waiting;
  waiting.sequences.push_back(Seq(2, 2));
  auto waiting_result = Submit(*batcher, std::move(waiting));
  // The second batch is due but has no replica; the batcher thread must sleep meanwhile.
  timespec cpu0, cpu1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  std::this_thread::sleep_for(milliseconds(200));
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  double cpu_ms = (cpu1.tv_sec - cpu0.tv_sec) * 1e3 + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e6;
  EXPECT_LT(cpu_ms, 50.0);
  echo.Release();
  EXPECT_TRUE(first_result.get().ok());
  EXPECT_TRUE(waiting_result.get().ok());
}

TEST(DynamicBatcherTest, CancelledRequestIsDroppedBeforeCompute) {
  EchoBackend echo;
  DynamicBatcherOptions options;
  options.policy.max_queue_delay = microseconds(0);
  options.max_batches_per_replica = 1;
  auto batcher = std::move(DynamicBatcher::Create(options, {&echo})).value();
  echo.Hold();
  EmbedTask first;
  first.sequences.push_back(Seq(1, 2));
  auto first_result = Submit(*batcher, std::move(first));
  echo.WaitRunning(1);

  auto gone = std::make_shared<std::atomic<bool>>(false);
  EmbedTask task;
  task.sequences.push_back(Seq(555, 2));
  task.cancelled = gone;
  auto result = Submit(*batcher, std::move(task));
  gone->store(true);
  echo.Release();
  EXPECT_EQ(result.get().status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(first_result.get().ok());
  EXPECT_FALSE(echo.SawId(555));
}

TEST(DynamicBatcherTest, BackendFailureFailsEveryRequestOfTheBatch) {
  EchoBackend echo;
  echo.fail_ = true;
  auto batcher = MakeBatcher({&echo}, 4096, 64, microseconds(0));
  EmbedTask task;
  task.sequences.push_back(Seq(1, 2));
  EXPECT_EQ(Submit(*batcher, std::move(task)).get().status().code(), StatusCode::kUnavailable);
}

TEST(DynamicBatcherTest, WorkIsSpreadOverReplicas) {
  EchoBackend a, b;
  auto batcher = MakeBatcher({&a, &b}, 4096, 1, microseconds(0));
  a.Hold();  // replica 0 stays busy, so later batches go to replica 1
  std::vector<std::future<StatusOr<std::vector<float>>>> futures;
  for (int i = 0; i < 6; ++i) {
    EmbedTask task;
    task.sequences.push_back(Seq(i + 1, 1));
    futures.push_back(Submit(*batcher, std::move(task)));
  }
  // Replica 0 holds at most 2 batches; replica 1 runs the rest.
  a.WaitRunning(1);
  b.WaitRunning(4);
  a.Release();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(a.batches().size() + b.batches().size(), 6u);
  EXPECT_GE(b.batches().size(), 4u);
}

TEST(DynamicBatcherTest, StopFinishesQueuedWorkAndRefusesNewWork) {
  EchoBackend echo;
  auto batcher = MakeBatcher({&echo}, 4096, 64, microseconds(10000000));  // 10 s delay
  EmbedTask task;
  task.sequences.push_back(Seq(1, 2));
  auto queued = Submit(*batcher, std::move(task));
  batcher->Stop();  // flushes without waiting out the delay
  EXPECT_TRUE(queued.get().ok());
  EmbedTask after;
  after.sequences.push_back(Seq(1, 2));
  EXPECT_EQ(Submit(*batcher, std::move(after)).get().status().code(), StatusCode::kUnavailable);
}

TEST(DynamicBatcherTest, PipelinedReplicaKeepsTwoBatchesInFlightAndAnswersInOrder) {
  PipelinedBackend gpu;
  auto batcher = MakeBatcher({&gpu}, 4096, 1, microseconds(0));  // one sequence per batch
  gpu.Hold();  // the first Collect waits, so later batches pile up behind it
  std::vector<std::future<StatusOr<std::vector<float>>>> futures;
  for (int i = 0; i < 8; ++i) {
    EmbedTask task;
    task.sequences.push_back(Seq(10 * (i + 1), 1 + i % 3));
    futures.push_back(Submit(*batcher, std::move(task)));
  }
  std::this_thread::sleep_for(milliseconds(50));
  gpu.Release();
  for (int i = 0; i < 8; ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, (std::vector<float>{static_cast<float>(1 + i % 3), 10.0f * (i + 1),
                                      10.0f * (i + 1) + static_cast<float>(i % 3), 1.0f}));
  }
  EXPECT_EQ(gpu.max_outstanding(), 2u);  // the next batch was submitted before collecting
  EXPECT_EQ(gpu.embed_calls_.load(), 0);
}

TEST(DynamicBatcherTest, PipelinedSubmitFailureFailsOnlyItsBatch) {
  PipelinedBackend gpu;
  gpu.fail_submit_id_ = 20;
  auto batcher = MakeBatcher({&gpu}, 4096, 1, microseconds(0));
  std::vector<std::future<StatusOr<std::vector<float>>>> futures;
  for (int i = 0; i < 3; ++i) {
    EmbedTask task;
    task.sequences.push_back(Seq(10 * (i + 1), 2));
    futures.push_back(Submit(*batcher, std::move(task)));
  }
  EXPECT_TRUE(futures[0].get().ok());
  EXPECT_EQ(futures[1].get().status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(futures[2].get().ok());
  batcher->Stop();  // and it stops cleanly with nothing left in flight
}

}  // namespace
}  // namespace sluice
