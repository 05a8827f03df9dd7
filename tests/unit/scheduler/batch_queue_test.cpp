#include "scheduler/batch_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

namespace sluice {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

const SteadyTime kT0 = SteadyTime() + std::chrono::hours(1);

// A task of sequences with the given lengths (ids 1..n); records how it finished.
struct TestTask {
  std::shared_ptr<TaskState> state;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<Status> result = std::make_shared<Status>(Internal("not finished"));
};

TestTask MakeTask(std::vector<size_t> lengths, SteadyTime deadline = SteadyTime::max()) {
  TestTask t;
  EmbedTask task;
  for (size_t len : lengths) {
    Encoding e;
    for (size_t i = 0; i < len; ++i) e.ids.push_back(static_cast<int32_t>(i + 1));
    e.type_ids.assign(len, 0);
    task.sequences.push_back(std::move(e));
  }
  task.deadline = deadline;
  task.cancelled = t.cancelled;
  task.done = [r = t.result](StatusOr<std::vector<float>> v) { *r = v.status(); };
  t.state = std::make_shared<TaskState>(std::move(task), 2);
  return t;
}

BatchPolicy Policy(size_t tokens, size_t requests, microseconds delay) {
  BatchPolicy p;
  p.max_batch_tokens = tokens;
  p.max_batch_requests = requests;
  p.max_queue_delay = delay;
  return p;
}

std::vector<size_t> Lengths(const std::vector<QueuedSequence>& batch) {
  std::vector<size_t> out;
  for (const auto& s : batch) out.push_back(s.tokens);
  return out;
}

TEST(BatchQueueTest, EmptyQueueNeverCloses) {
  BatchQueue q(Policy(100, 4, microseconds(0)));
  EXPECT_FALSE(q.ShouldClose(kT0));
  EXPECT_EQ(q.NextWake(), SteadyTime::max());
  EXPECT_TRUE(q.TakeBatch().empty());
}

struct CloseCase {
  const char* name;
  std::vector<size_t> lengths;
  microseconds waited;
  bool closes;
};

TEST(BatchQueueTest, ClosesOnWhicheverLimitComesFirst) {
  // Budget: 100 tokens, 4 sequences, 2 ms.
  const CloseCase cases[] = {
      {"under every limit", {10, 10}, microseconds(1999), false},
      {"delay reached", {10, 10}, microseconds(2000), true},
      {"token budget reached", {60, 40}, microseconds(0), true},
      {"token budget just missed", {60, 39}, microseconds(0), false},
      {"sequence count reached", {1, 1, 1, 1}, microseconds(0), true},
      {"one sequence over the token budget", {500}, microseconds(0), true},
  };
  for (const CloseCase& c : cases) {
    BatchQueue q(Policy(100, 4, microseconds(2000)));
    TestTask t = MakeTask(c.lengths);
    q.Push(t.state, kT0);
    EXPECT_EQ(q.ShouldClose(kT0 + c.waited), c.closes) << c.name;
  }
}

TEST(BatchQueueTest, DelayCountsFromTheOldestSequence) {
  BatchQueue q(Policy(100, 8, microseconds(500)));
  TestTask a = MakeTask({5});
  TestTask b = MakeTask({5});
  q.Push(a.state, kT0);
  q.Push(b.state, kT0 + microseconds(400));
  EXPECT_EQ(q.NextWake(), kT0 + microseconds(500));
  EXPECT_FALSE(q.ShouldClose(kT0 + microseconds(499)));
  EXPECT_TRUE(q.ShouldClose(kT0 + microseconds(500)));
}

TEST(BatchQueueTest, ZeroDelayClosesAsSoonAsWorkIsQueued) {
  BatchQueue q(Policy(100, 8, microseconds(0)));
  TestTask a = MakeTask({5});
  q.Push(a.state, kT0);
  EXPECT_TRUE(q.ShouldClose(kT0));
}

TEST(BatchQueueTest, TakeBatchFillsBudgetsInArrivalOrder) {
  BatchQueue q(Policy(100, 3, microseconds(0)));
  TestTask a = MakeTask({10, 20, 30, 40, 50});
  q.Push(a.state, kT0);
  EXPECT_EQ(Lengths(q.TakeBatch()), (std::vector<size_t>{10, 20, 30}));  // 3 sequences
  EXPECT_EQ(q.tokens(), 90u);
  EXPECT_EQ(Lengths(q.TakeBatch()), (std::vector<size_t>{40, 50}));  // 90 tokens, fits
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.tokens(), 0u);
}

TEST(BatchQueueTest, LongSequenceThatDoesNotFitIsSkippedNotWaitedFor) {
  BatchQueue q(Policy(100, 8, microseconds(0)));
  TestTask a = MakeTask({50, 80, 30, 20, 10});
  q.Push(a.state, kT0);
  // 50 + 80 overflows: 80 waits for the next batch, 30 and 20 still fit (100 tokens).
  std::vector<QueuedSequence> first = q.TakeBatch();
  EXPECT_EQ(Lengths(first), (std::vector<size_t>{50, 30, 20}));
  EXPECT_EQ(first[1].index, 2u);
  // The skipped sequence is now the oldest and leads the next batch.
  EXPECT_EQ(Lengths(q.TakeBatch()), (std::vector<size_t>{80, 10}));
}

TEST(BatchQueueTest, OldestSequenceIsTakenEvenOverTheTokenBudget) {
  BatchQueue q(Policy(100, 8, microseconds(0)));
  TestTask a = MakeTask({300, 5});
  q.Push(a.state, kT0);
  EXPECT_EQ(Lengths(q.TakeBatch()), (std::vector<size_t>{300}));
  EXPECT_EQ(Lengths(q.TakeBatch()), (std::vector<size_t>{5}));
}

TEST(BatchQueueTest, DropDeadRemovesExpiredCancelledAndFinishedTasks) {
  BatchQueue q(Policy(1000, 64, microseconds(100000)));
  TestTask live = MakeTask({3, 3});
  TestTask expired = MakeTask({4, 4, 4}, kT0 + milliseconds(5));
  TestTask cancelled = MakeTask({5});
  TestTask finished = MakeTask({6});
  q.Push(live.state, kT0);
  q.Push(expired.state, kT0);
  q.Push(cancelled.state, kT0);
  q.Push(finished.state, kT0);
  EXPECT_EQ(q.NextWake(), kT0 + milliseconds(5));  // the deadline comes before the delay

  EXPECT_TRUE(q.DropDead(kT0 + milliseconds(4)).empty());
  EXPECT_EQ(q.size(), 7u);

  cancelled.cancelled->store(true);
  finished.state->Fail(Internal("done elsewhere"));
  std::vector<std::shared_ptr<TaskState>> dead = q.DropDead(kT0 + milliseconds(5));
  ASSERT_EQ(dead.size(), 2u);  // each task once, the finished one not at all
  EXPECT_EQ(dead[0], expired.state);
  EXPECT_EQ(dead[1], cancelled.state);
  EXPECT_EQ(dead[0]->CheckAlive(kT0 + milliseconds(5)).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(dead[1]->CheckAlive(kT0).code(), StatusCode::kCancelled);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.tokens(), 6u);
}

TEST(TaskStateTest, RowsArriveInAnyOrderAndComeBackInInputOrder) {
  std::vector<float> got;
  EmbedTask task;
  task.sequences.resize(3, Encoding{{1}, {0}});
  task.done = [&](StatusOr<std::vector<float>> v) { got = *v; };
  TaskState state(std::move(task), 2);
  const float r0[] = {0, 0}, r1[] = {1, 1}, r2[] = {2, 2};
  state.Complete(2, r2);
  state.Complete(0, r0);
  EXPECT_FALSE(state.finished());
  state.Complete(1, r1);
  EXPECT_TRUE(state.finished());
  EXPECT_EQ(got, (std::vector<float>{0, 0, 1, 1, 2, 2}));
}

TEST(TaskStateTest, FirstFailureWinsAndLaterRowsAreIgnored) {
  int calls = 0;
  Status result;
  EmbedTask task;
  task.sequences.resize(2, Encoding{{1}, {0}});
  task.done = [&](StatusOr<std::vector<float>> v) {
    ++calls;
    result = v.status();
  };
  TaskState state(std::move(task), 1);
  const float row[] = {1};
  state.Complete(0, row);
  state.Fail(Unavailable("replica down"));
  state.Fail(Internal("second"));
  state.Complete(1, row);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sluice
