#include "server/embedding_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <future>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "cache/lru_cache.h"
#include "cache/tiered_cache.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"
#include "model/model_dir.h"
#include "model/weight_store.h"

namespace sluice {
namespace {

using std::chrono::microseconds;

// The real all-MiniLM-L6-v2 on the CPU backend, behind a real batcher.
class EmbeddingServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string path = std::string(SLUICE_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
    auto dir = ModelDir::Open(path);
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    auto tokenizer = Tokenizer::FromFile(dir->tokenizer_path);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    tokenizer_ = std::move(tokenizer).value().release();
    auto store = WeightStore::Open(dir->dir);
    ASSERT_TRUE(store.ok());
    auto config = EncoderConfig::FromHf(dir->config);
    ASSERT_TRUE(config.ok());
    auto weights = EncoderWeights::Bind(**store, *config);
    ASSERT_TRUE(weights.ok());
    auto pooling = ParsePooling(dir->pooling);
    ASSERT_TRUE(pooling.ok());
    auto backend = CpuBackend::Create(*config, *weights, *pooling);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    BatchLimits limits;
    limits.max_sequence_length = 256;
    ASSERT_TRUE((*backend)->Warmup(limits).ok());
    backend_ = std::move(backend).value().release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    delete tokenizer_;
  }

  void Start(EmbeddingServiceOptions options = {}, microseconds delay = microseconds(0)) {
    DynamicBatcherOptions batcher_options;
    batcher_options.policy.max_queue_delay = delay;
    batcher_options.on_batch = [this](const BatchStats& stats) {
      computed_.fetch_add(stats.sequences);
    };
    batcher_ = std::move(DynamicBatcher::Create(batcher_options, {backend_})).value();
    options.max_input_length = 256;
    auto service = EmbeddingService::Create(options, tokenizer_, batcher_.get());
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
  }

  StatusOr<Embeddings> Embed(EmbedInputs inputs, const EmbedOptions& options = {}) {
    std::promise<StatusOr<Embeddings>> promise;
    auto future = promise.get_future();
    service_->Embed(std::move(inputs), options,
                    [&promise](StatusOr<Embeddings> r) { promise.set_value(std::move(r)); });
    return future.get();
  }

  // Starts the service with an in-process cache of `bytes`.
  void StartCached(microseconds delay = microseconds(0), size_t bytes = size_t{1} << 20) {
    LruCacheOptions lru;
    lru.capacity_bytes = bytes;
    cache_ = std::make_unique<TieredCache>(std::move(LruCache::Create(lru)).value(), nullptr);
    EmbeddingServiceOptions options;
    options.cache.cache = cache_.get();
    options.cache.model_id = "all-MiniLM-L6-v2";
    options.cache.revision = "test-revision";
    options.cache.pooling = "mean";
    options.cache.model_version = "all-MiniLM-L6-v2@test";
    Start(options, delay);
  }

  // Starts Embed() without waiting; the future has its result.
  std::future<StatusOr<Embeddings>> EmbedAsync(EmbedInputs inputs,
                                               const EmbedOptions& options = {}) {
    auto promise = std::make_shared<std::promise<StatusOr<Embeddings>>>();
    auto future = promise->get_future();
    service_->Embed(std::move(inputs), options,
                    [promise](StatusOr<Embeddings> r) { promise->set_value(std::move(r)); });
    return future;
  }

  static EmbedInputs Texts(std::vector<std::string> texts) {
    EmbedInputs in;
    in.texts = std::move(texts);
    return in;
  }

  static inline Tokenizer* tokenizer_ = nullptr;
  static inline Backend* backend_ = nullptr;
  // Declared first so that it outlives the service and the batcher that fill it.
  std::unique_ptr<TieredCache> cache_;
  std::atomic<size_t> computed_{0};  // sequences run through the backend
  std::unique_ptr<DynamicBatcher> batcher_;
  std::unique_ptr<EmbeddingService> service_;
};

float Norm(const float* v, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return static_cast<float>(std::sqrt(s));
}

TEST_F(EmbeddingServiceTest, EmbedsTextsInOrderAndCountsTokens) {
  Start();
  auto r = Embed(Texts({"Hello world", "A man is eating food."}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->count, 2u);
  EXPECT_EQ(r->dim, 384);
  EXPECT_EQ(r->data.size(), 2u * 384);
  EXPECT_EQ(r->prompt_tokens, 4u + 8u);  // [CLS] hello world [SEP]; [CLS] a man ... . [SEP]
  EXPECT_NEAR(Norm(r->data.data(), 384), 1.0f, 1e-5);
  auto single = Embed(Texts({"A man is eating food."}));
  ASSERT_TRUE(single.ok());
  for (int i = 0; i < 384; ++i) EXPECT_NEAR(single->data[i], r->data[384 + i], 1e-6);
}

TEST_F(EmbeddingServiceTest, TokenIdsGiveTheSameVectorAsTheirText) {
  Start();
  auto ids = service_->Tokenize({"Hello world"}, true);
  ASSERT_TRUE(ids.ok());
  EmbedInputs in;
  in.is_tokens = true;
  in.token_ids = {(*ids)[0].ids};
  auto by_ids = Embed(in);
  auto by_text = Embed(Texts({"Hello world"}));
  ASSERT_TRUE(by_ids.ok() && by_text.ok());
  EXPECT_EQ(by_ids->data, by_text->data);
}

TEST_F(EmbeddingServiceTest, DimensionsCutAndRenormalise) {
  Start();
  EmbedOptions options;
  options.dimensions = 32;
  auto full = Embed(Texts({"vectors"}));
  auto cut = Embed(Texts({"vectors"}), options);
  ASSERT_TRUE(full.ok() && cut.ok());
  ASSERT_EQ(cut->dim, 32);
  ASSERT_EQ(cut->data.size(), 32u);
  float n = Norm(full->data.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(cut->data[i], full->data[i] / n, 1e-6);
}

TEST_F(EmbeddingServiceTest, NormalizeFalseKeepsTheRawPooledVector) {
  Start();
  EmbedOptions options;
  options.normalize = false;
  auto raw = Embed(Texts({"hello"}), options);
  ASSERT_TRUE(raw.ok());
  EXPECT_GT(std::abs(Norm(raw->data.data(), 384) - 1.0f), 1e-3);
}

TEST_F(EmbeddingServiceTest, LongInputsAreRefusedUnlessTruncationIsAsked) {
  Start();
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  EXPECT_EQ(Embed(Texts({long_text})).status().code(), StatusCode::kTooLarge);
  EmbedOptions truncate;
  truncate.truncate = true;
  auto r = Embed(Texts({long_text}), truncate);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->prompt_tokens, 256u);

  EmbedInputs ids;
  ids.is_tokens = true;
  ids.token_ids = {std::vector<int32_t>(300, 2773)};
  EXPECT_EQ(Embed(ids).status().code(), StatusCode::kTooLarge);
  auto cut = Embed(ids, truncate);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->prompt_tokens, 256u);
}

TEST_F(EmbeddingServiceTest, BadInputsAreRefusedWithTheRightCode) {
  EmbeddingServiceOptions options;
  options.max_client_batch_size = 3;
  Start(options);
  EmbedInputs out_of_vocab;
  out_of_vocab.is_tokens = true;
  out_of_vocab.token_ids = {{101, 1000000}};
  EmbedOptions too_many_dims;
  too_many_dims.dimensions = 385;
  const struct {
    const char* name;
    EmbedInputs inputs;
    EmbedOptions options;
    StatusCode code;
  } cases[] = {
      {"no inputs", Texts({}), {}, StatusCode::kInvalidArgument},
      {"empty string", Texts({"a", ""}), {}, StatusCode::kInvalidArgument},
      {"invalid UTF-8", Texts({"caf\xc3\x28"}), {}, StatusCode::kInvalidArgument},
      {"too many inputs", Texts({"a", "b", "c", "d"}), {}, StatusCode::kTooLarge},
      {"id outside the vocabulary", out_of_vocab, {}, StatusCode::kInvalidArgument},
      {"dimensions over the model's", Texts({"a"}), too_many_dims, StatusCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Embed(c.inputs, c.options).status().code(), c.code) << c.name;
  }
  EXPECT_EQ(service_->in_flight(), 0u);
}

TEST_F(EmbeddingServiceTest, AdmissionRefusesRequestsOverTheLimitAlike) {
  EmbeddingServiceOptions options;
  options.max_concurrent_requests = 1;
  Start(options, microseconds(300000));  // the first request waits 300 ms in the queue
  std::promise<StatusOr<Embeddings>> first;
  service_->Embed(Texts({"first"}), {},
                  [&first](StatusOr<Embeddings> r) { first.set_value(std::move(r)); });
  EXPECT_EQ(Embed(Texts({"second"})).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Embed(Texts({"a", "b", "c"})).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(first.get_future().get().ok());
  EXPECT_TRUE(Embed(Texts({"third"})).ok());
}

TEST_F(EmbeddingServiceTest, CreateRefusesACacheWithoutTheModelsIdentity) {
  LruCacheOptions lru;
  TieredCache cache(std::move(LruCache::Create(lru)).value(), nullptr);
  DynamicBatcherOptions batcher_options;
  auto batcher = std::move(DynamicBatcher::Create(batcher_options, {backend_})).value();
  EmbeddingServiceOptions options;
  options.cache.cache = &cache;
  options.cache.model_id = "m";  // no revision, pooling or version
  EXPECT_EQ(EmbeddingService::Create(options, tokenizer_, batcher.get()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(EmbeddingServiceTest, CacheHitEqualsTheComputedVectorAndSkipsTheModel) {
  StartCached();
  auto miss = Embed(Texts({"PostgreSQL keeps the data."}));
  ASSERT_TRUE(miss.ok()) << miss.status().ToString();
  EXPECT_EQ(computed_.load(), 1u);
  auto hit = Embed(Texts({"PostgreSQL keeps the data."}));
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(computed_.load(), 1u);
  EXPECT_EQ(hit->data, miss->data);
  EXPECT_EQ(hit->prompt_tokens, miss->prompt_tokens);  // counted for hits too
  TieredCacheStats stats = cache_->Stats();
  EXPECT_EQ(stats.l1_hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(service_->in_flight(), 0u);
}

TEST_F(EmbeddingServiceTest, OptionsThatChangeTheVectorGetTheirOwnEntries) {
  StartCached();
  EmbedOptions raw;
  raw.normalize = false;
  EmbedOptions truncated;
  truncated.truncate = true;
  EmbedOptions cut;
  cut.dimensions = 16;
  ASSERT_TRUE(Embed(Texts({"hello"})).ok());
  ASSERT_TRUE(Embed(Texts({"hello"}), raw).ok());
  ASSERT_TRUE(Embed(Texts({"hello"}), truncated).ok());
  EXPECT_EQ(computed_.load(), 3u);
  // A `dimensions` cut is made after the cache: it shares the full vector's entry.
  auto small = Embed(Texts({"hello"}), cut);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(computed_.load(), 3u);
  EXPECT_EQ(small->dim, 16);
  // Token ids are keyed apart from text, even when they are that text's tokens.
  auto ids = service_->Tokenize({"hello"}, true);
  ASSERT_TRUE(ids.ok());
  EmbedInputs by_ids;
  by_ids.is_tokens = true;
  by_ids.token_ids = {(*ids)[0].ids};
  ASSERT_TRUE(Embed(by_ids).ok());
  ASSERT_TRUE(Embed(by_ids).ok());
  EXPECT_EQ(computed_.load(), 4u);
}

TEST_F(EmbeddingServiceTest, BypassNeitherReadsNorFillsTheCache) {
  StartCached();
  EmbedOptions bypass;
  bypass.use_cache = false;
  auto first = Embed(Texts({"bypassed"}), bypass);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(cache_->l1().Stats().entries, 0u);
  auto cached = Embed(Texts({"bypassed"}));  // a miss: the bypass did not fill
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(computed_.load(), 2u);
  EXPECT_EQ(cache_->Stats().misses, 1u);
  auto again = Embed(Texts({"bypassed"}), bypass);  // computed although cached now
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(computed_.load(), 3u);
  EXPECT_EQ(cache_->Stats().l1_hits, 0u);
  EXPECT_EQ(again->data, first->data);
}

TEST_F(EmbeddingServiceTest, IdenticalInputsInFlightAreComputedOnce) {
  StartCached(microseconds(200000));  // the first request waits 200 ms for its batch
  std::vector<std::future<StatusOr<Embeddings>>> futures;
  for (int i = 0; i < 8; ++i) futures.push_back(EmbedAsync(Texts({"in flight", "in flight"})));
  std::vector<std::vector<float>> results;
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->count, 2u);
    results.push_back(r->data);
  }
  EXPECT_EQ(computed_.load(), 1u);
  for (const auto& r : results) EXPECT_EQ(r, results[0]);
  EXPECT_EQ(cache_->single_flight().Stats().followers, 15u);
  EXPECT_EQ(cache_->single_flight().Stats().in_flight, 0u);
  EXPECT_EQ(service_->in_flight(), 0u);
}

TEST_F(EmbeddingServiceTest, FollowerOfALeaderThatTimesOutComputesItself) {
  StartCached(microseconds(300000));
  EmbedOptions impatient;
  impatient.deadline = SteadyClock::now() + std::chrono::milliseconds(50);
  auto leader = EmbedAsync(Texts({"given up"}), impatient);
  auto follower = EmbedAsync(Texts({"given up"}));
  EXPECT_EQ(leader.get().status().code(), StatusCode::kDeadlineExceeded);
  auto r = follower.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(computed_.load(), 1u);
  EXPECT_EQ(cache_->single_flight().Stats().abandoned, 1u);
  auto hit = Embed(Texts({"given up"}));
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->data, r->data);
  EXPECT_EQ(computed_.load(), 1u);
}

// A follower keeps to its own deadline when the leader computing its input has a later one;
// the leader still gets its vector, computed once.
TEST_F(EmbeddingServiceTest, FollowerAnswersAtItsOwnDeadlineNotTheLeaders) {
  StartCached(microseconds(400000));  // the leader's batch waits 400 ms
  auto leader = EmbedAsync(Texts({"patient leader"}));
  EmbedOptions impatient;
  impatient.deadline = SteadyClock::now() + std::chrono::milliseconds(50);
  auto follower = EmbedAsync(Texts({"patient leader"}), impatient);
  auto r = follower.get();
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  // Answered at its deadline, while the leader's batch is still waiting.
  EXPECT_EQ(leader.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  auto l = leader.get();
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(computed_.load(), 1u);
  EXPECT_EQ(cache_->single_flight().Stats().followers, 1u);
  EXPECT_EQ(service_->in_flight(), 0u);
}

TEST_F(EmbeddingServiceTest, BadInputsAreRefusedAlikeWithTheCacheOn) {
  StartCached();
  ASSERT_TRUE(Embed(Texts({"fine"})).ok());
  // A cached input next to a bad one does not let the request through.
  EXPECT_EQ(Embed(Texts({"fine", ""})).status().code(), StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  EmbedOptions truncate;
  truncate.truncate = true;
  ASSERT_TRUE(Embed(Texts({long_text}), truncate).ok());
  EXPECT_EQ(Embed(Texts({long_text})).status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(service_->in_flight(), 0u);
}

}  // namespace
}  // namespace sluice
