#include "common/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

TEST(ClockTest, RealClockIsMonotonicAndTracksWallTime) {
  const Clock* clock = Clock::Real();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(clock, Clock::Real());
  const Clock::TimePoint a = clock->Now();
  std::this_thread::sleep_for(2ms);
  const Clock::TimePoint b = clock->Now();
  EXPECT_GE(b - a, 2ms);
  const auto wall_gap = clock->SystemNow() - std::chrono::system_clock::now();
  EXPECT_LT(std::chrono::abs(wall_gap), 1s);
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock;
  const Clock::TimePoint start = clock.Now();
  const Clock::SystemTimePoint wall_start = clock.SystemNow();
  std::this_thread::sleep_for(1ms);
  EXPECT_EQ(clock.Now(), start);

  struct Step {
    Clock::Duration advance;
    Clock::Duration total;
  };
  const Step steps[] = {{0ms, 0ms}, {1ns, 1ns}, {5s, 5s + 1ns}, {1h, 1h + 5s + 1ns}};
  for (const Step& step : steps) {
    clock.Advance(step.advance);
    EXPECT_EQ(clock.Now() - start, step.total);
    EXPECT_EQ(clock.SystemNow() - wall_start, step.total);
  }
}

TEST(ClockTest, ManualClockSetters) {
  ManualClock clock(Clock::TimePoint(10s), Clock::SystemTimePoint(100s));
  EXPECT_EQ(clock.Now().time_since_epoch(), 10s);
  EXPECT_EQ(clock.SystemNow().time_since_epoch(), 100s);
  clock.SetNow(Clock::TimePoint(20s));
  EXPECT_EQ(clock.Now().time_since_epoch(), 20s);
  clock.SetSystemNow(Clock::SystemTimePoint(50s));  // wall time may jump backwards
  EXPECT_EQ(clock.SystemNow().time_since_epoch(), 50s);
}

TEST(ClockTest, ManualClockAdvancesAtomicallyAcrossThreads) {
  ManualClock clock;
  const Clock::TimePoint start = clock.Now();
  constexpr int kThreads = 8;
  constexpr int kSteps = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      Clock::TimePoint last = clock.Now();
      for (int i = 0; i < kSteps; ++i) {
        clock.Advance(1us);
        const Clock::TimePoint now = clock.Now();
        ASSERT_GE(now, last);
        last = now;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(clock.Now() - start, std::chrono::microseconds(kThreads * kSteps));
}

TEST(ClockDeathTest, ManualClockRefusesToGoBackwards) {
  ManualClock clock(Clock::TimePoint(10s), Clock::SystemTimePoint(10s));
  EXPECT_DEATH(clock.Advance(-1ns), "negative duration");
  EXPECT_DEATH(clock.SetNow(Clock::TimePoint(9s)), "backwards");
}

}  // namespace
}  // namespace sluice
