#include "backends/cpu/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/packed_gemm.h"
#include "reference_encoder.h"

namespace sluice {
namespace {

using testing::RandomEncoder;

struct Sequence {
  std::vector<int32_t> ids;
  std::vector<int32_t> types;
  bool normalize;
};

EncoderConfig MakeConfig(int hidden, int heads, int layers, int inter, Activation act) {
  EncoderConfig c;
  c.model_type = "bert";
  c.vocab_size = 50;
  c.hidden_size = hidden;
  c.num_heads = heads;
  c.num_layers = layers;
  c.intermediate_size = inter;
  c.max_position_embeddings = 64;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12f;
  c.activation = act;
  return c;
}

// Mixed lengths 1..40, every token type, normalize on and off.
std::vector<Sequence> MakeSequences(const EncoderConfig& config, std::vector<int> lengths) {
  std::vector<Sequence> seqs;
  uint32_t state = 12345;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Sequence s;
    for (int t = 0; t < lengths[i]; ++t) {
      state = state * 1103515245u + 12345u;
      s.ids.push_back(
          static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(config.vocab_size)));
      s.types.push_back(config.type_vocab_size > 1 && t >= lengths[i] / 2 ? 1 : 0);
    }
    s.normalize = i % 2 == 0;
    seqs.push_back(std::move(s));
  }
  return seqs;
}

Batch MakeBatch(const std::vector<Sequence>& seqs) {
  Batch b;
  for (const Sequence& s : seqs) b.Add(s.ids, s.types, s.normalize);
  return b;
}

std::unique_ptr<CpuBackend> MakeBackend(const RandomEncoder& model, Pooling pooling, int threads) {
  auto backend = CpuBackend::Create(model.config(), model.weights(), pooling, {threads});
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  if (!backend.ok()) return nullptr;
  BatchLimits limits;
  limits.max_batch_tokens = 1024;
  limits.max_batch_requests = 64;
  limits.max_sequence_length = 48;
  const Status s = (*backend)->Warmup(limits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(backend).value();
}

struct ReferenceCase {
  std::string name;
  int hidden, heads, layers, inter;
  Activation act;
  Pooling pooling;
  DType dtype;
  int type_vocab = 2;
  int position_offset = 0;
};

class CpuBackendReferenceTest
    : public ::testing::TestWithParam<std::tuple<ReferenceCase, int /*threads*/>> {};

TEST_P(CpuBackendReferenceTest, MatchesDoublePrecisionReference) {
  const auto& [c, threads] = GetParam();
  EncoderConfig config = MakeConfig(c.hidden, c.heads, c.layers, c.inter, c.act);
  config.type_vocab_size = c.type_vocab;
  config.position_offset = c.position_offset;
  const RandomEncoder model(config, c.dtype, 7);
  auto backend = MakeBackend(model, c.pooling, threads);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->num_threads(), threads);
  EXPECT_EQ(backend->embedding_dim(), c.hidden);

  const auto seqs = MakeSequences(config, {1, 7, 40, 16, 3, 33, 2, 24});
  const Batch batch = MakeBatch(seqs);
  std::vector<float> out;
  ASSERT_TRUE(backend->Embed(batch, &out).ok());
  ASSERT_EQ(out.size(), seqs.size() * static_cast<size_t>(c.hidden));
  double worst = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto ref =
        model.ReferenceEmbedding(seqs[s].ids, seqs[s].types, c.pooling, seqs[s].normalize);
    for (size_t i = 0; i < ref.size(); ++i) {
      worst = std::max(worst, std::abs(out[s * ref.size() + i] - ref[i]));
    }
  }
  EXPECT_LT(worst, 5e-5) << "largest deviation from the double-precision reference";

  // Hidden states too: pooling must not hide a wrong token.
  std::vector<float> hidden;
  ASSERT_TRUE(backend->Forward(batch, &hidden).ok());
  worst = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto ref = model.ReferenceHidden(seqs[s].ids, seqs[s].types);
    const size_t offset = static_cast<size_t>(batch.cu_seqlens[s]) * static_cast<size_t>(c.hidden);
    for (size_t i = 0; i < ref.size(); ++i) {
      worst = std::max(worst, std::abs(hidden[offset + i] - ref[i]));
    }
  }
  EXPECT_LT(worst, 2e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuBackendReferenceTest,
    ::testing::Combine(
        ::testing::Values(ReferenceCase{"h32_gelu_mean_f32", 32, 2, 1, 64, Activation::kGelu,
                                        Pooling::kMean, DType::kF32},
                          ReferenceCase{"h64_tanh_cls_f16", 64, 4, 2, 128, Activation::kGeluTanh,
                                        Pooling::kCls, DType::kF16},
                          ReferenceCase{"h64_relu_max_bf16", 64, 4, 2, 96, Activation::kRelu,
                                        Pooling::kMax, DType::kBF16},
                          ReferenceCase{"h32_silu_sqrt_f32", 32, 4, 2, 64, Activation::kSilu,
                                        Pooling::kMeanSqrtLen, DType::kF32},
                          ReferenceCase{"h64_gelu_last_notypes", 64, 2, 1, 128, Activation::kGelu,
                                        Pooling::kLastToken, DType::kF32, /*type_vocab=*/0},
                          ReferenceCase{"h36_roberta_positions", 36, 2, 2, 72, Activation::kGelu,
                                        Pooling::kMean, DType::kF16, 1, /*position_offset=*/2}),
        ::testing::Values(1, 2)),
    [](const auto& test_info) {
      return std::get<0>(test_info.param).name + "_t" +
             std::to_string(std::get<1>(test_info.param));
    });

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  }
  return worst;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(CpuBackendTest, BatchedEqualsEachSequenceAlone) {
  const EncoderConfig config = MakeConfig(64, 4, 2, 128, Activation::kGelu);
  const RandomEncoder model(config, DType::kF32, 3);
  for (int threads : {1, 2}) {
    auto backend = MakeBackend(model, Pooling::kMean, threads);
    ASSERT_NE(backend, nullptr);
    const auto seqs = MakeSequences(config, {5, 40, 1, 17, 32, 9, 40, 12, 3});
    std::vector<float> batched;
    ASSERT_TRUE(backend->Embed(MakeBatch(seqs), &batched).ok());
    for (size_t s = 0; s < seqs.size(); ++s) {
      std::vector<float> alone;
      ASSERT_TRUE(backend->Embed(MakeBatch({seqs[s]}), &alone).ok());
      const std::vector<float> row(batched.begin() + static_cast<long>(s * 64),
                                   batched.begin() + static_cast<long>((s + 1) * 64));
      // Exactly: a cached vector and a fresh one of the same input are compared for equality.
      // OpenBLAS (the path without AVX-512) switches to other kernels for tiny GEMMs like this
      // model's, so there only closeness holds.
      if (cpu::UsePackedGemm()) {
        EXPECT_TRUE(SameBits(row, alone)) << "sequence " << s << ", " << threads << " threads";
      } else {
        EXPECT_LE(MaxAbsDiff(row, alone), 1e-6)
            << "sequence " << s << ", " << threads << " threads";
      }
    }
  }
}

TEST(CpuBackendTest, OneAndTwoThreadsAgree) {
  const EncoderConfig config = MakeConfig(64, 4, 2, 128, Activation::kGelu);
  const RandomEncoder model(config, DType::kF32, 5);
  const Batch batch = MakeBatch(MakeSequences(config, {40, 40, 33, 1, 20, 38, 40, 2, 11}));
  std::vector<float> one, two;
  ASSERT_TRUE(MakeBackend(model, Pooling::kMean, 1)->Embed(batch, &one).ok());
  ASSERT_TRUE(MakeBackend(model, Pooling::kMean, 2)->Embed(batch, &two).ok());
  if (cpu::UsePackedGemm()) {
    EXPECT_TRUE(SameBits(one, two));
  } else {
    EXPECT_LE(MaxAbsDiff(one, two), 1e-6);
  }
}

TEST(CpuBackendTest, NormalizedVectorsHaveUnitLength) {
  const EncoderConfig config = MakeConfig(32, 2, 1, 64, Activation::kGelu);
  const RandomEncoder model(config, DType::kF32, 9);
  auto backend = MakeBackend(model, Pooling::kMean, 2);
  const auto seqs = MakeSequences(config, {4, 9, 13, 2});
  std::vector<float> out;
  ASSERT_TRUE(backend->Embed(MakeBatch(seqs), &out).ok());
  for (size_t s = 0; s < seqs.size(); ++s) {
    double sq = 0;
    for (size_t c = 0; c < 32; ++c) sq += out[s * 32 + c] * out[s * 32 + c];
    if (seqs[s].normalize) {
      EXPECT_NEAR(std::sqrt(sq), 1.0, 1e-6);
    } else {
      EXPECT_GT(std::abs(std::sqrt(sq) - 1.0), 1e-3);  // mean of LayerNormed states: not unit
    }
  }
}

struct BadBatchCase {
  std::string name;
  std::function<void(Batch&)> mutate;
  StatusCode code;
};

class CpuBackendBadBatchTest : public ::testing::TestWithParam<BadBatchCase> {};

TEST_P(CpuBackendBadBatchTest, ReturnsAnErrorAndStaysUsable) {
  const EncoderConfig config = MakeConfig(32, 2, 1, 64, Activation::kGelu);
  const RandomEncoder model(config, DType::kF32, 11);
  auto backend = MakeBackend(model, Pooling::kCls, 2);  // limits: 1024 tokens, 64 seqs, len 48
  const auto seqs = MakeSequences(config, {4, 9, 13});
  Batch batch = MakeBatch(seqs);
  GetParam().mutate(batch);
  std::vector<float> out;
  const Status s = backend->Embed(batch, &out);
  EXPECT_EQ(s.code(), GetParam().code) << s.ToString();
  EXPECT_FALSE(s.message().empty());
  // The failure left nothing behind.
  ASSERT_TRUE(backend->Embed(MakeBatch(seqs), &out).ok());
  EXPECT_EQ(out.size(), 3u * 32u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CpuBackendBadBatchTest,
    ::testing::Values(
        BadBatchCase{"Empty", [](Batch& b) { b = Batch(); }, StatusCode::kInvalidArgument},
        BadBatchCase{"NoTokens",
                     [](Batch& b) {
                       b = Batch();
                       b.cu_seqlens = {0, 0};
                       b.normalize = {0};
                     },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"TokenIdAboveVocab", [](Batch& b) { b.input_ids[5] = 50; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"NegativeTokenId", [](Batch& b) { b.input_ids[0] = -1; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"TokenTypeAboveTypes", [](Batch& b) { b.token_type_ids[2] = 2; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"PositionBeyondTable", [](Batch& b) { b.position_ids[3] = 64; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"NegativePosition", [](Batch& b) { b.position_ids[3] = -2; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"CuSeqlensNotFromZero", [](Batch& b) { b.cu_seqlens[0] = 1; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"CuSeqlensShort", [](Batch& b) { b.cu_seqlens.back() -= 1; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"CuSeqlensPastEnd", [](Batch& b) { b.cu_seqlens.back() += 5; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"CuSeqlensDecreasing", [](Batch& b) { b.cu_seqlens[1] = 20; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"EmptySequence", [](Batch& b) { b.cu_seqlens[2] = b.cu_seqlens[1]; },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"MissingTokenTypes", [](Batch& b) { b.token_type_ids.pop_back(); },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"MissingPositions", [](Batch& b) { b.position_ids.clear(); },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"MissingNormalizeFlag", [](Batch& b) { b.normalize.pop_back(); },
                     StatusCode::kInvalidArgument},
        BadBatchCase{"SequenceAboveLimit",
                     [](Batch& b) {
                       b = Batch();
                       b.Add(std::vector<int32_t>(49, 1), {}, false);
                     },
                     StatusCode::kTooLarge},
        BadBatchCase{"TooManySequences",
                     [](Batch& b) {
                       b = Batch();
                       for (int i = 0; i < 65; ++i) b.Add({1, 2}, {}, false);
                     },
                     StatusCode::kTooLarge},
        BadBatchCase{"TooManyTokens",
                     [](Batch& b) {
                       b = Batch();
                       for (int i = 0; i < 30; ++i) b.Add(std::vector<int32_t>(40, 3), {}, true);
                     },
                     StatusCode::kTooLarge}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(CpuBackendTest, EmbedBeforeWarmupIsAFailedPrecondition) {
  const EncoderConfig config = MakeConfig(32, 2, 1, 64, Activation::kGelu);
  const RandomEncoder model(config, DType::kF32, 1);
  auto backend = CpuBackend::Create(config, model.weights(), Pooling::kMean, {1});
  ASSERT_TRUE(backend.ok());
  std::vector<float> out;
  const Status s = (*backend)->Embed(MakeBatch(MakeSequences(config, {3})), &out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*backend)->Warmup(BatchLimits{0, 1, 1}).code(), StatusCode::kInvalidArgument);
}

TEST(CpuBackendTest, CreateRejectsWeightsThatDoNotFitTheConfig) {
  const EncoderConfig config = MakeConfig(32, 2, 2, 64, Activation::kGelu);
  RandomEncoder model(config, DType::kF32, 1);
  {
    EncoderWeights w = model.weights();
    w.layers.pop_back();
    EXPECT_EQ(CpuBackend::Create(config, w, Pooling::kMean).status().code(),
              StatusCode::kInvalidArgument);
  }
  {
    EncoderWeights w = model.weights();
    w.layers[1].ffn_in_weight.shape = {32, 32};
    const Status s = CpuBackend::Create(config, w, Pooling::kMean).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("ffn_in_weight"), std::string::npos) << s.message();
  }
  {
    EncoderWeights w = model.weights();
    w.embeddings_ln_bias = TensorView();
    EXPECT_EQ(CpuBackend::Create(config, w, Pooling::kMean).status().code(),
              StatusCode::kInvalidArgument);
  }
  {
    EncoderWeights w = model.weights();
    w.layers[0].q_bias.dtype = DType::kI32;
    EXPECT_EQ(CpuBackend::Create(config, w, Pooling::kMean).status().code(),
              StatusCode::kInvalidArgument);
  }
  EncoderConfig bad = config;
  bad.num_heads = 3;
  EXPECT_EQ(CpuBackend::Create(bad, model.weights(), Pooling::kMean).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CpuBackend::Create(config, model.weights(), Pooling::kMean, {-1}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
