#include "cache/single_flight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_key_builder.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

CacheKey Key(int i) {
  static const CacheKeyBuilder builder(CacheKeyOptions{.model_id = "m"});
  return builder.ForText(std::to_string(i));
}

// Spins until `pred` holds; the tests use it to line threads up without sleeping blindly.
template <typename Pred>
void WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "condition never became true";
    std::this_thread::yield();
  }
}

TEST(SingleFlightTest, ConcurrentCallersShareOneComputation) {
  SingleFlight flights;
  constexpr int kFollowers = 15;
  std::atomic<int> computations{0};
  std::atomic<bool> release{false};
  std::vector<SingleFlight::Result> results(kFollowers + 1, Internal("unset"));
  auto compute = [&]() -> SingleFlight::Result {
    computations.fetch_add(1);
    while (!release.load()) std::this_thread::yield();
    return MakeCachedVector({1.0f, 2.0f});
  };
  std::vector<std::thread> threads;
  threads.emplace_back([&] { results[0] = flights.Do(Key(1), compute); });
  WaitFor([&] { return flights.Stats().leaders == 1; });
  for (int i = 1; i <= kFollowers; ++i) {
    threads.emplace_back([&, i] { results[i] = flights.Do(Key(1), compute); });
  }
  WaitFor([&] { return flights.Stats().followers == kFollowers; });
  release.store(true);
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(computations.load(), 1);
  for (const SingleFlight::Result& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, *results[0]);  // the very same shared vector
  }
  const SingleFlightStats s = flights.Stats();
  EXPECT_EQ(s.leaders, 1u);
  EXPECT_EQ(s.followers, uint64_t{kFollowers});
  EXPECT_EQ(s.in_flight, 0u);
}

TEST(SingleFlightTest, FollowersGetThePublishedError) {
  SingleFlight flights;
  SingleFlight::Flight leader = flights.Join(Key(1));
  ASSERT_TRUE(leader.is_leader());
  SingleFlight::Flight follower = flights.Join(Key(1));
  ASSERT_FALSE(follower.is_leader());
  std::thread publisher([&] { leader.Publish(Unavailable("model failed")); });
  const SingleFlight::Result r = follower.Wait();
  publisher.join();
  EXPECT_EQ(r.status(), Unavailable("model failed"));
  EXPECT_FALSE(follower.abandoned());
}

TEST(SingleFlightTest, DifferentKeysDoNotWaitForEachOther) {
  SingleFlight flights;
  SingleFlight::Flight a = flights.Join(Key(1));
  SingleFlight::Flight b = flights.Join(Key(2));
  EXPECT_TRUE(a.is_leader());
  EXPECT_TRUE(b.is_leader());
  EXPECT_EQ(flights.Stats().in_flight, 2u);
  a.Publish(MakeCachedVector({1.0f}));
  b.Publish(MakeCachedVector({2.0f}));
  EXPECT_EQ(flights.Stats().in_flight, 0u);
}

TEST(SingleFlightTest, KeyIsFreeAgainAfterPublish) {
  SingleFlight flights;
  {
    SingleFlight::Flight first = flights.Join(Key(1));
    first.Publish(MakeCachedVector({1.0f}));
  }
  SingleFlight::Flight second = flights.Join(Key(1));
  EXPECT_TRUE(second.is_leader());
  second.Publish(MakeCachedVector({1.0f}));
}

TEST(SingleFlightTest, AbandonedLeaderWakesFollowersWithRetryableError) {
  SingleFlight flights;
  std::optional<SingleFlight::Flight> leader = flights.Join(Key(1));
  SingleFlight::Flight follower = flights.Join(Key(1));
  std::thread canceller([&] { leader.reset(); });  // e.g. the leader's client disconnected
  const SingleFlight::Result r = follower.Wait();
  canceller.join();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(follower.abandoned());
  EXPECT_EQ(flights.Stats().abandoned, 1u);
  // The key is free: the follower can take over as leader.
  SingleFlight::Flight retry = flights.Join(Key(1));
  EXPECT_TRUE(retry.is_leader());
  retry.Publish(MakeCachedVector({3.0f}));
}

TEST(SingleFlightTest, DoRetriesAsLeaderWhenTheLeaderAbandons) {
  SingleFlight flights;
  std::optional<SingleFlight::Flight> leader = flights.Join(Key(1));
  std::atomic<int> computations{0};
  SingleFlight::Result result = Internal("unset");
  std::thread caller([&] {
    result = flights.Do(Key(1), [&]() -> SingleFlight::Result {
      computations.fetch_add(1);
      return MakeCachedVector({4.0f});
    });
  });
  WaitFor([&] { return flights.Stats().followers == 1; });
  leader.reset();
  caller.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((**result)[0], 4.0f);
  EXPECT_EQ(computations.load(), 1);
  EXPECT_EQ(flights.Stats().leaders, 2u);
}

TEST(SingleFlightTest, WaitUntilTimesOutWithoutDisturbingTheFlight) {
  SingleFlight flights;
  SingleFlight::Flight leader = flights.Join(Key(1));
  SingleFlight::Flight impatient = flights.Join(Key(1));
  SingleFlight::Flight patient = flights.Join(Key(1));
  const SingleFlight::Result timed_out =
      impatient.WaitUntil(std::chrono::steady_clock::now() + 5ms);
  EXPECT_EQ(timed_out.status().code(), StatusCode::kDeadlineExceeded);
  leader.Publish(MakeCachedVector({5.0f}));
  const SingleFlight::Result r = patient.WaitUntil(std::chrono::steady_clock::now() + 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((**r)[0], 5.0f);
}

TEST(SingleFlightTest, OnDoneRunsOnceEitherLaterOrAtOnce) {
  SingleFlight flights;
  SingleFlight::Flight leader = flights.Join(Key(1));
  SingleFlight::Flight early = flights.Join(Key(1));
  int early_calls = 0;
  float early_value = 0;
  early.OnDone([&](const SingleFlight::Result& r, bool abandoned) {
    ++early_calls;
    EXPECT_FALSE(abandoned);
    early_value = (**r)[0];
  });
  EXPECT_EQ(early_calls, 0);
  leader.Publish(MakeCachedVector({6.0f}));
  EXPECT_EQ(early_calls, 1);
  EXPECT_EQ(early_value, 6.0f);

  int late_calls = 0;
  early.OnDone([&](const SingleFlight::Result& r, bool abandoned) {
    ++late_calls;
    EXPECT_FALSE(abandoned);
    EXPECT_TRUE(r.ok());
  });
  EXPECT_EQ(late_calls, 1);
}

TEST(SingleFlightTest, OnDoneReportsAbandonAndMayRejoin) {
  SingleFlight flights;
  std::optional<SingleFlight::Flight> leader = flights.Join(Key(1));
  SingleFlight::Flight follower = flights.Join(Key(1));
  bool became_leader = false;
  follower.OnDone([&](const SingleFlight::Result& r, bool abandoned) {
    EXPECT_TRUE(abandoned);
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    // Callbacks run with no lock held, so retrying from one is allowed.
    SingleFlight::Flight retry = flights.Join(Key(1));
    became_leader = retry.is_leader();
    retry.Publish(MakeCachedVector({7.0f}));
  });
  leader.reset();
  EXPECT_TRUE(became_leader);
  EXPECT_EQ(flights.Stats().in_flight, 0u);
}

TEST(SingleFlightTest, MovedLeaderStillOwnsTheFlight) {
  SingleFlight flights;
  SingleFlight::Flight leader = flights.Join(Key(1));
  SingleFlight::Flight moved = std::move(leader);
  SingleFlight::Flight follower = flights.Join(Key(1));
  moved.Publish(MakeCachedVector({8.0f}));
  EXPECT_FALSE(follower.abandoned());
  EXPECT_EQ((**follower.Wait())[0], 8.0f);
  EXPECT_EQ(flights.Stats().abandoned, 0u);
}

// Many threads, few keys, computations that sometimes fail or are abandoned: nobody deadlocks,
// every caller gets the right value or a published error, and each success came from a
// computation of its own key.
TEST(SingleFlightTest, ConcurrentStress) {
  SingleFlight flights;
  constexpr int kThreads = 16;
  constexpr int kCalls = 2000;
  constexpr int kKeys = 8;
  std::atomic<int> computations{0};
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int k = (t + i) % kKeys;
        const int n = computations.load();
        if (i % 7 == 3) {
          // Leader that gives up half the time; a follower waits with a deadline.
          SingleFlight::Flight f = flights.Join(Key(k));
          if (f.is_leader()) {
            if (n % 2 == 0) f.Publish(MakeCachedVector({static_cast<float>(k)}));
          } else {
            (void)f.WaitUntil(std::chrono::steady_clock::now() + 1ms);
          }
          continue;
        }
        SingleFlight::Result r = flights.Do(Key(k), [&]() -> SingleFlight::Result {
          const int c = computations.fetch_add(1);
          if (c % 11 == 0) return Internal("injected failure");
          return MakeCachedVector({static_cast<float>(k)});
        });
        if (!r.ok()) {
          if (r.status() != Internal("injected failure")) wrong.fetch_add(1);
          errors.fetch_add(1);
        } else if ((**r)[0] != static_cast<float>(k)) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(errors.load(), 0);
  EXPECT_EQ(flights.Stats().in_flight, 0u);
}

}  // namespace
}  // namespace sluice
