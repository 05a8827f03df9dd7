#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace sluice {
namespace {

struct ParallelForCase {
  int threads;
  size_t n;
  size_t grain;
};

class ThreadPoolParallelForTest : public ::testing::TestWithParam<ParallelForCase> {};

TEST_P(ThreadPoolParallelForTest, VisitsEveryIndexExactlyOnce) {
  const ParallelForCase c = GetParam();
  ThreadPool pool(c.threads);
  EXPECT_EQ(pool.num_threads(), c.threads);
  std::vector<std::atomic<int>> hits(c.n);
  for (int round = 0; round < 3; ++round) {
    pool.ParallelFor(c.n, c.grain, [&](size_t begin, size_t end) {
      ASSERT_LT(begin, end);
      ASSERT_LE(end, c.n);
      ASSERT_LE(end - begin, std::max<size_t>(c.grain, 1));
      for (size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
    });
  }
  for (size_t i = 0; i < c.n; ++i) EXPECT_EQ(hits[i].load(), 3) << "index " << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ThreadPoolParallelForTest,
                         ::testing::Values(ParallelForCase{1, 100, 7}, ParallelForCase{2, 0, 1},
                                           ParallelForCase{2, 1, 1}, ParallelForCase{2, 1000, 1},
                                           ParallelForCase{2, 1000, 64},
                                           ParallelForCase{4, 1001, 3}, ParallelForCase{3, 10, 0}));

TEST(ThreadPoolTest, ManySmallLoopsAllComplete) {
  ThreadPool pool(2);
  std::atomic<long> total{0};
  for (int loop = 0; loop < 2000; ++loop) {
    pool.ParallelFor(8, 1, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) total.fetch_add(static_cast<long>(i));
    });
  }
  EXPECT_EQ(total.load(), 2000L * 28);
}

TEST(ThreadPoolTest, WorkersReallyRunInParallel) {
  ThreadPool pool(2);
  std::atomic<int> arrived{0};
  // Each block waits until both blocks have started: finishes only if two threads run them.
  pool.ParallelFor(2, 1, [&](size_t, size_t) {
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
  });
  EXPECT_EQ(arrived.load(), 2);
}

TEST(ThreadPoolTest, ThreadIndicesAreInRangeAndNotShared) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> inside(3);
  std::atomic<bool> overlap{false};
  pool.ParallelForWithThread(300, 1, [&](int thread, size_t, size_t) {
    ASSERT_GE(thread, 0);
    ASSERT_LT(thread, 3);
    // Two blocks never run at once under the same index: per-thread scratch is safe.
    if (inside[thread].fetch_add(1) != 0) overlap = true;
    std::this_thread::yield();
    inside[thread].fetch_sub(1);
  });
  EXPECT_FALSE(overlap.load());
}

TEST(ThreadPoolTest, ZeroMeansHardwareThreads) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.num_threads(), ThreadPool::HardwareThreads());
}

TEST(ThreadPoolTest, DestroysCleanlyWithoutLoops) {
  for (int i = 0; i < 20; ++i) ThreadPool pool(3);
}

}  // namespace
}  // namespace sluice
