#include "metrics/metrics_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace sluice::metrics {
namespace {

template <typename T>
T Must(StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

TEST(MetricsRegistryTest, ExactExposition) {
  MetricsRegistry registry;
  CounterFamily* requests = Must(registry.AddCounterFamily(
      "sluice_requests_total", "Requests served, by route and status.", {"route", "status"}));
  Gauge* in_flight = Must(registry.AddGauge("sluice_in_flight", "Requests being served."));
  Histogram* latency = Must(registry.AddHistogram(
      "sluice_request_duration_seconds", "End-to-end request latency.", {0.005, 0.01, 0.1, 1}));
  Counter* tokens = Must(registry.AddCounter("sluice_tokens_total", "Tokens embedded."));

  requests->WithLabels({"/v1/embeddings", "200"}).Increment();
  requests->WithLabels({"/v1/embeddings", "200"}).Increment(2);
  requests->WithLabels({"/embed", "400"}).Increment();
  in_flight->Set(3);
  in_flight->Decrement();
  latency->Observe(0.003);
  latency->Observe(0.01);  // on a bound: counts in that bucket (le is inclusive)
  latency->Observe(0.05);
  latency->Observe(7);
  tokens->Increment(1234);

  EXPECT_EQ(registry.Exposition(),
            "# HELP sluice_in_flight Requests being served.\n"
            "# TYPE sluice_in_flight gauge\n"
            "sluice_in_flight 2\n"
            "# HELP sluice_request_duration_seconds End-to-end request latency.\n"
            "# TYPE sluice_request_duration_seconds histogram\n"
            "sluice_request_duration_seconds_bucket{le=\"0.005\"} 1\n"
            "sluice_request_duration_seconds_bucket{le=\"0.01\"} 2\n"
            "sluice_request_duration_seconds_bucket{le=\"0.1\"} 3\n"
            "sluice_request_duration_seconds_bucket{le=\"1\"} 3\n"
            "sluice_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"
            "sluice_request_duration_seconds_sum 7.063\n"
            "sluice_request_duration_seconds_count 4\n"
            "# HELP sluice_requests_total Requests served, by route and status.\n"
            "# TYPE sluice_requests_total counter\n"
            "sluice_requests_total{route=\"/embed\",status=\"400\"} 1\n"
            "sluice_requests_total{route=\"/v1/embeddings\",status=\"200\"} 3\n"
            "# HELP sluice_tokens_total Tokens embedded.\n"
            "# TYPE sluice_tokens_total counter\n"
            "sluice_tokens_total 1234\n");
}

TEST(MetricsRegistryTest, LabelledHistogramAndEscaping) {
  MetricsRegistry registry;
  HistogramFamily* stage = Must(registry.AddHistogramFamily(
      "sluice_stage_seconds", "Per-stage time.\nSee docs\\metrics.", {"stage"}, {0.5}));
  stage->WithLabels({"queue \"wait\"\n"}).Observe(0.25);
  stage->WithLabels({"a\\b"}).Observe(2);
  EXPECT_EQ(registry.Exposition(),
            "# HELP sluice_stage_seconds Per-stage time.\\nSee docs\\\\metrics.\n"
            "# TYPE sluice_stage_seconds histogram\n"
            "sluice_stage_seconds_bucket{stage=\"a\\\\b\",le=\"0.5\"} 0\n"
            "sluice_stage_seconds_bucket{stage=\"a\\\\b\",le=\"+Inf\"} 1\n"
            "sluice_stage_seconds_sum{stage=\"a\\\\b\"} 2\n"
            "sluice_stage_seconds_count{stage=\"a\\\\b\"} 1\n"
            "sluice_stage_seconds_bucket{stage=\"queue \\\"wait\\\"\\n\",le=\"0.5\"} 1\n"
            "sluice_stage_seconds_bucket{stage=\"queue \\\"wait\\\"\\n\",le=\"+Inf\"} 1\n"
            "sluice_stage_seconds_sum{stage=\"queue \\\"wait\\\"\\n\"} 0.25\n"
            "sluice_stage_seconds_count{stage=\"queue \\\"wait\\\"\\n\"} 1\n");
}

TEST(MetricsRegistryTest, EmptyFamilyAndCallbacks) {
  MetricsRegistry registry;
  Must(registry.AddCounterFamily("sluice_errors_total", "Errors.", {"code"}));
  double hits = 5;
  ASSERT_TRUE(
      registry.AddCallbackCounter("sluice_cache_hits_total", "Cache hits.", [&] { return hits; })
          .ok());
  ASSERT_TRUE(
      registry.AddCallbackGauge("sluice_cache_bytes", "Cache bytes.", [] { return 1.5e9; }).ok());
  hits = 6;
  EXPECT_EQ(registry.Exposition(),
            "# HELP sluice_cache_bytes Cache bytes.\n"
            "# TYPE sluice_cache_bytes gauge\n"
            "sluice_cache_bytes 1500000000\n"
            "# HELP sluice_cache_hits_total Cache hits.\n"
            "# TYPE sluice_cache_hits_total counter\n"
            "sluice_cache_hits_total 6\n"
            "# HELP sluice_errors_total Errors.\n"
            "# TYPE sluice_errors_total counter\n");
}

struct BadRegistration {
  std::string name;
  std::string metric;
  std::vector<std::string> labels;
  std::vector<double> bounds;  // empty: register a counter family; else a histogram family
  StatusCode code;
  std::string message;
};

class MetricsRegistryBadTest : public ::testing::TestWithParam<BadRegistration> {};

TEST_P(MetricsRegistryBadTest, Rejects) {
  const BadRegistration& c = GetParam();
  MetricsRegistry registry;
  Must(registry.AddCounter("sluice_taken_total", "Already here."));
  Status status;
  if (c.bounds.empty()) {
    status = registry.AddCounterFamily(c.metric, "help", c.labels).status();
  } else {
    status = registry.AddHistogramFamily(c.metric, "help", c.labels, c.bounds).status();
  }
  EXPECT_EQ(status.code(), c.code) << status.ToString();
  EXPECT_NE(status.message().find(c.message), std::string::npos) << status.message();
}

const double kInf = std::numeric_limits<double>::infinity();

INSTANTIATE_TEST_SUITE_P(Cases, MetricsRegistryBadTest,
                         ::testing::Values(BadRegistration{"bad_name",
                                                           "sluice-requests",
                                                           {},
                                                           {},
                                                           StatusCode::kInvalidArgument,
                                                           "invalid metric name"},
                                           BadRegistration{"empty_name",
                                                           "",
                                                           {},
                                                           {},
                                                           StatusCode::kInvalidArgument,
                                                           "invalid metric name"},
                                           BadRegistration{"duplicate",
                                                           "sluice_taken_total",
                                                           {},
                                                           {},
                                                           StatusCode::kAlreadyExists,
                                                           "already registered"},
                                           BadRegistration{"bad_label",
                                                           "sluice_x",
                                                           {"ro-ute"},
                                                           {},
                                                           StatusCode::kInvalidArgument,
                                                           "invalid label name"},
                                           BadRegistration{"reserved_label",
                                                           "sluice_x",
                                                           {"__name"},
                                                           {},
                                                           StatusCode::kInvalidArgument,
                                                           "invalid label name"},
                                           BadRegistration{"repeated_label",
                                                           "sluice_x",
                                                           {"a", "a"},
                                                           {},
                                                           StatusCode::kInvalidArgument,
                                                           "given twice"},
                                           BadRegistration{"le_label",
                                                           "sluice_h",
                                                           {"le"},
                                                           {1.0},
                                                           StatusCode::kInvalidArgument,
                                                           "may not use the label \"le\""},
                                           BadRegistration{"unsorted_bounds",
                                                           "sluice_h",
                                                           {},
                                                           {1.0, 0.5},
                                                           StatusCode::kInvalidArgument,
                                                           "increase strictly"},
                                           BadRegistration{"equal_bounds",
                                                           "sluice_h",
                                                           {},
                                                           {1.0, 1.0},
                                                           StatusCode::kInvalidArgument,
                                                           "increase strictly"},
                                           BadRegistration{"infinite_bound",
                                                           "sluice_h",
                                                           {},
                                                           {1.0, kInf},
                                                           StatusCode::kInvalidArgument,
                                                           "not finite"}),
                         [](const auto& p) { return p.param.name; });

TEST(MetricsRegistryTest, CallbackNeedsAFunction) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.AddCallbackGauge("sluice_g", "help", nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddCallbackGauge("bad name", "help", [] { return 0.0; }).code(),
            StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, ChildHandlesAreStable) {
  MetricsRegistry registry;
  CounterFamily* f = Must(registry.AddCounterFamily("sluice_c_total", "c", {"k"}));
  Counter* first = &f->WithLabels({"a"});
  for (int i = 0; i < 1000; ++i) f->WithLabels({std::to_string(i)});
  EXPECT_EQ(first, &f->WithLabels({"a"}));
}

struct BucketCase {
  std::string name;
  StatusOr<std::vector<double>> got;
  std::vector<double> want;  // empty: expect InvalidArgument
};

TEST(HistogramTest, BucketHelpers) {
  const BucketCase cases[] = {
      {"exp", ExponentialBuckets(0.001, 10, 4), {0.001, 0.01, 0.1, 1}},
      {"exp_one", ExponentialBuckets(2, 2, 1), {2}},
      {"lin", LinearBuckets(0, 0.5, 3), {0, 0.5, 1}},
      {"exp_zero_start", ExponentialBuckets(0, 2, 3), {}},
      {"exp_factor_one", ExponentialBuckets(1, 1, 3), {}},
      {"exp_no_count", ExponentialBuckets(1, 2, 0), {}},
      {"lin_zero_width", LinearBuckets(0, 0, 3), {}},
      {"lin_inf_start", LinearBuckets(kInf, 1, 3), {}},
  };
  for (const BucketCase& c : cases) {
    if (c.want.empty()) {
      EXPECT_EQ(c.got.status().code(), StatusCode::kInvalidArgument) << c.name;
      continue;
    }
    ASSERT_TRUE(c.got.ok()) << c.name;
    ASSERT_EQ(c.got->size(), c.want.size()) << c.name;
    for (size_t i = 0; i < c.want.size(); ++i) EXPECT_DOUBLE_EQ((*c.got)[i], c.want[i]) << c.name;
  }
  EXPECT_TRUE(ValidateBucketBounds(DefaultLatencyBuckets()).ok());
}

TEST(HistogramTest, NoBoundsMeansOnlyInf) {
  Histogram h({});
  h.Observe(-1);
  h.Observe(1e300);
  const Histogram::Snapshot s = h.Snap();
  ASSERT_EQ(s.cumulative.size(), 1u);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.count, 2u);
}

// Hot-path updates from many threads while another thread scrapes: nothing is lost, and every
// scrape is internally consistent (cumulative buckets never decrease, _count == +Inf bucket).
TEST(MetricsRegistryTest, ConcurrentUpdatesAndScrapes) {
  MetricsRegistry registry;
  CounterFamily* requests =
      Must(registry.AddCounterFamily("sluice_requests_total", "r", {"route", "status"}));
  Histogram* latency = Must(registry.AddHistogram("sluice_latency_seconds", "l", {1, 2, 3}));
  Gauge* level = Must(registry.AddGauge("sluice_level", "g"));
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  std::atomic<bool> stop{false};
  std::atomic<int> bad_scrapes{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      const Histogram::Snapshot s = latency->Snap();
      for (size_t i = 1; i < s.cumulative.size(); ++i) {
        if (s.cumulative[i] < s.cumulative[i - 1]) bad_scrapes.fetch_add(1);
      }
      if (s.count != s.cumulative.back()) bad_scrapes.fetch_add(1);
      (void)registry.Exposition();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string status = t % 2 == 0 ? "200" : "503";
      for (int i = 0; i < kOps; ++i) {
        requests->WithLabels({"/v1/embeddings", status}).Increment();
        latency->Observe(i % 4 + 0.5);
        level->Increment();
        level->Decrement();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  stop.store(true);
  scraper.join();
  EXPECT_EQ(bad_scrapes.load(), 0);
  EXPECT_EQ(requests->WithLabels({"/v1/embeddings", "200"}).value(), kThreads / 2 * kOps);
  EXPECT_EQ(requests->WithLabels({"/v1/embeddings", "503"}).value(), kThreads / 2 * kOps);
  const Histogram::Snapshot s = latency->Snap();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kOps);
  EXPECT_EQ(s.cumulative[0], s.count / 4);
  EXPECT_DOUBLE_EQ(s.sum, kThreads * (kOps / 4) * (0.5 + 1.5 + 2.5 + 3.5));
  EXPECT_EQ(level->value(), 0);
}

TEST(MetricsDeathTest, MisuseIsABug) {
  MetricsRegistry registry;
  CounterFamily* f = Must(registry.AddCounterFamily("sluice_c_total", "c", {"a", "b"}));
  EXPECT_DEATH(f->WithLabels({"only one"}), "has 2 labels, got 1");
  Counter* c = Must(registry.AddCounter("sluice_d_total", "d"));
  EXPECT_DEATH(c->Increment(-1), "negative");
}

}  // namespace
}  // namespace sluice::metrics
