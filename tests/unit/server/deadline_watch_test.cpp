#include "server/deadline_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <vector>

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(DeadlineWatchTest, RunsCallbacksInDeadlineOrderWhateverTheOrderAdded) {
  DeadlineWatch watch;
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> last;
  const SteadyTime now = SteadyClock::now();
  auto record = [&](int id) {
    return [&, id] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(id);
      if (order.size() == 4) last.set_value();
    };
  };
  watch.Add(now + milliseconds(120), record(3));
  watch.Add(now + milliseconds(80), record(2));
  watch.Add(now - milliseconds(5), record(0));  // already passed: at once
  watch.Add(now + milliseconds(40), record(1));
  ASSERT_EQ(last.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_GE(SteadyClock::now() - now, milliseconds(120));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(watch.pending(), 0u);
}

TEST(DeadlineWatchTest, ASoonerDeadlineAddedLaterIsNotHeldUpByALaterOne) {
  DeadlineWatch watch;
  std::atomic<bool> late_ran{false};
  watch.Add(SteadyClock::now() + std::chrono::hours(1), [&] { late_ran = true; });
  std::promise<void> soon;
  const SteadyTime start = SteadyClock::now();
  watch.Add(start + milliseconds(30), [&] { soon.set_value(); });
  ASSERT_EQ(soon.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(late_ran.load());
  EXPECT_EQ(watch.pending(), 1u);
}

TEST(DeadlineWatchTest, DestructionDropsPendingCallbacksWithoutRunningThem) {
  std::atomic<int> ran{0};
  {
    DeadlineWatch watch;
    for (int i = 0; i < 3; ++i) {
      watch.Add(SteadyClock::now() + std::chrono::hours(1), [&] { ran.fetch_add(1); });
    }
    EXPECT_EQ(watch.pending(), 3u);
  }
  EXPECT_EQ(ran.load(), 0);
  DeadlineWatch unused;  // never started: nothing to join
  EXPECT_EQ(unused.pending(), 0u);
}

}  // namespace
}  // namespace sluice
