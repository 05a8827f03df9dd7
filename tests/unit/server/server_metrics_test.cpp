#include "server/server_metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cache/lru_cache.h"

namespace sluice {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

class ServerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Handle("POST", "/v1/embeddings", [](const HttpRequest&, Responder) {});
    auto m = ServerMetrics::Create(&registry_, &router_, &context_, cache_.get());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    metrics_ = std::move(m).value();
  }

  static std::unique_ptr<TieredCache> MakeCache() {
    LruCacheOptions options;
    options.capacity_bytes = 4096;
    options.num_shards = 1;
    return std::make_unique<TieredCache>(std::move(LruCache::Create(options)).value(), nullptr);
  }

  std::unique_ptr<TieredCache> cache_ = MakeCache();
  metrics::MetricsRegistry registry_;
  Router router_;
  ApiContext context_;
  std::unique_ptr<ServerMetrics> metrics_;
};

TEST_F(ServerMetricsTest, RequestsAreCountedByRouteAndStatusWithUnknownPathsAsOther) {
  HttpRequest request;
  request.path = "/v1/embeddings";
  request.received = std::chrono::steady_clock::now() - milliseconds(3);
  metrics_->OnResponse(request, 200);
  metrics_->OnResponse(request, 200);
  metrics_->OnResponse(request, 429);
  request.path = "/a/path/chosen/by/a/client";
  metrics_->OnResponse(request, 404);

  std::string text = registry_.Exposition();
  EXPECT_TRUE(Has(text, "# TYPE sluice_requests_total counter"));
  EXPECT_TRUE(Has(text, "sluice_requests_total{route=\"/v1/embeddings\",status=\"200\"} 2"));
  EXPECT_TRUE(Has(text, "sluice_requests_total{route=\"/v1/embeddings\",status=\"429\"} 1"));
  EXPECT_TRUE(Has(text, "sluice_requests_total{route=\"other\",status=\"404\"} 1"));
  EXPECT_EQ(text.find("/a/path"), std::string::npos);
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_count{route=\"/v1/embeddings\"} 3"));
  // 3 ms lands above the 2.5 ms bound and within 5 ms.
  EXPECT_TRUE(Has(
      text, "sluice_request_duration_seconds_bucket{route=\"/v1/embeddings\",le=\"0.0025\"} 0"));
  EXPECT_TRUE(
      Has(text, "sluice_request_duration_seconds_bucket{route=\"/v1/embeddings\",le=\"0.005\"} 3"));
}

TEST_F(ServerMetricsTest, TokenizationAndBatchesFeedTheirHistograms) {
  std::vector<Encoding> encodings(2);
  encodings[0].ids.assign(5, 1);
  encodings[1].ids.assign(300, 1);
  metrics_->OnTokenized(microseconds(40), encodings);
  BatchStats batch;
  batch.sequences = 3;
  batch.tokens = 70;
  batch.inference = milliseconds(12);
  batch.queue_waits = {microseconds(100), microseconds(2000), microseconds(30)};
  metrics_->OnBatch(batch);

  std::string text = registry_.Exposition();
  EXPECT_TRUE(Has(text, "sluice_tokenization_duration_seconds_count 1"));
  EXPECT_TRUE(Has(text, "sluice_input_length_tokens_count 2"));
  EXPECT_TRUE(Has(text, "sluice_input_length_tokens_sum 305"));
  EXPECT_TRUE(Has(text, "sluice_input_length_tokens_bucket{le=\"8\"} 1"));
  EXPECT_TRUE(Has(text, "sluice_batch_size_sum 3"));
  EXPECT_TRUE(Has(text, "sluice_batch_tokens_sum 70"));
  EXPECT_TRUE(Has(text, "sluice_inference_duration_seconds_count 1"));
  EXPECT_TRUE(Has(text, "sluice_queue_duration_seconds_count 3"));  // one per sequence
  EXPECT_TRUE(Has(text, "sluice_queue_duration_seconds_bucket{le=\"0.0001\"} 2"));
}

TEST_F(ServerMetricsTest, GaugesReadZeroBeforeTheModelIsLoaded) {
  std::string text = registry_.Exposition();
  EXPECT_TRUE(Has(text, "sluice_queue_depth 0"));
  EXPECT_TRUE(Has(text, "sluice_requests_in_flight 0"));
}

TEST_F(ServerMetricsTest, CacheCountersFollowTheCache) {
  CacheKey a;
  a.digest[0] = 1;
  CacheKey b;
  b.digest[0] = 2;
  CacheKey c;
  c.digest[0] = 3;
  EXPECT_EQ(cache_->Get(a, "v"), nullptr);
  // 4096 bytes hold two entries of 400 floats (1600 + 176 bytes each), not three.
  cache_->Put(a, MakeCachedVector(std::vector<float>(400)), "v");
  cache_->Put(b, MakeCachedVector(std::vector<float>(400)), "v");
  EXPECT_NE(cache_->Get(b, "v"), nullptr);
  cache_->Put(c, MakeCachedVector(std::vector<float>(400)), "v");

  std::string text = registry_.Exposition();
  EXPECT_TRUE(Has(text, "# TYPE sluice_cache_hits_total counter"));
  EXPECT_TRUE(Has(text, "sluice_cache_hits_total 1"));
  EXPECT_TRUE(Has(text, "sluice_cache_misses_total 1"));
  EXPECT_TRUE(Has(text, "sluice_cache_evictions_total 1"));
  EXPECT_TRUE(Has(text, "sluice_cache_entries 2"));
  EXPECT_TRUE(Has(text, "sluice_cache_bytes 3552"));
  EXPECT_TRUE(Has(text, "sluice_cache_coalesced_total 0"));
}

TEST(ServerMetricsCreateTest, WithoutACacheTheCacheFamiliesReadZero) {
  metrics::MetricsRegistry registry;
  Router router;
  ApiContext context;
  auto m = ServerMetrics::Create(&registry, &router, &context, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(Has(registry.Exposition(), "sluice_cache_hits_total 0"));
}

TEST(ServerMetricsCreateTest, MissingPiecesAndASecondRegistrationAreErrors) {
  metrics::MetricsRegistry registry;
  Router router;
  ApiContext context;
  EXPECT_EQ(ServerMetrics::Create(nullptr, &router, &context, nullptr).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ServerMetrics::Create(&registry, nullptr, &context, nullptr).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(ServerMetrics::Create(&registry, &router, &context, nullptr).ok());
  EXPECT_EQ(ServerMetrics::Create(&registry, &router, &context, nullptr).status().code(),
            StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace sluice
