// CudaBackend end to end on small random encoders: against a double-precision CPU forward,
// batched against one-at-a-time, and every bad-input path.
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/kernels/kernel_image.cuh"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace sluice::cuda {
namespace {

using testing::RelativeError;

// A random encoder whose weights live in this object; views point into it.
class RandomModel {
 public:
  RandomModel(const EncoderConfig& config, DType storage, uint32_t seed)
      : config_(config), storage_(storage), rng_(seed) {
    const int64_t h = config.hidden_size;
    const int64_t inter = config.intermediate_size;
    const float w_scale = 1.0f / std::sqrt(static_cast<float>(h));
    weights_.word_embeddings = Make("word", {config.vocab_size, h}, -1, 1);
    weights_.position_embeddings = Make("position", {config.max_position_embeddings, h}, -1, 1);
    if (config.type_vocab_size > 0) {
      weights_.token_type_embeddings = Make("type", {config.type_vocab_size, h}, -1, 1);
    }
    weights_.embeddings_ln_weight = Make("emb_ln_w", {h}, 0.8f, 1.2f);
    weights_.embeddings_ln_bias = Make("emb_ln_b", {h}, -0.1f, 0.1f);
    for (int l = 0; l < config.num_layers; ++l) {
      EncoderLayerWeights w;
      w.q_weight = Make("q", {h, h}, -w_scale, w_scale);
      w.k_weight = Make("k", {h, h}, -w_scale, w_scale);
      w.v_weight = Make("v", {h, h}, -w_scale, w_scale);
      w.q_bias = Make("qb", {h}, -0.1f, 0.1f);
      w.k_bias = Make("kb", {h}, -0.1f, 0.1f);
      w.v_bias = Make("vb", {h}, -0.1f, 0.1f);
      w.attn_out_weight = Make("ao", {h, h}, -w_scale, w_scale);
      w.attn_out_bias = Make("aob", {h}, -0.1f, 0.1f);
      w.attn_ln_weight = Make("aln", {h}, 0.8f, 1.2f);
      w.attn_ln_bias = Make("alnb", {h}, -0.1f, 0.1f);
      w.ffn_in_weight = Make("fi", {inter, h}, -w_scale, w_scale);
      w.ffn_in_bias = Make("fib", {inter}, -0.1f, 0.1f);
      const float out_scale = 1.0f / std::sqrt(static_cast<float>(inter));
      w.ffn_out_weight = Make("fo", {h, inter}, -out_scale, out_scale);
      w.ffn_out_bias = Make("fob", {h}, -0.1f, 0.1f);
      w.ffn_ln_weight = Make("fln", {h}, 0.8f, 1.2f);
      w.ffn_ln_bias = Make("flnb", {h}, -0.1f, 0.1f);
      weights_.layers.push_back(w);
    }
  }

  const EncoderWeights& weights() const { return weights_; }
  EncoderWeights& mutable_weights() { return weights_; }

  // The double-precision forward pass the backend must reproduce.
  std::vector<double> Forward(const Batch& batch, Pooling pooling) const {
    const int h = config_.hidden_size;
    const int heads = config_.num_heads;
    const int d = config_.head_dim();
    const size_t tokens = batch.num_tokens();
    std::vector<double> x(tokens * h);
    for (size_t t = 0; t < tokens; ++t) {
      std::vector<double> row(h);
      for (int i = 0; i < h; ++i) {
        row[i] = At(weights_.word_embeddings, size_t(batch.input_ids[t]) * h + i) +
                 At(weights_.position_embeddings,
                    size_t(batch.position_ids[t] + config_.position_offset) * h + i);
        if (config_.type_vocab_size > 0) {
          row[i] += At(weights_.token_type_embeddings, size_t(batch.token_type_ids[t]) * h + i);
        }
      }
      LayerNorm(row, weights_.embeddings_ln_weight, weights_.embeddings_ln_bias);
      std::copy(row.begin(), row.end(), x.begin() + t * h);
    }
    for (const EncoderLayerWeights& w : weights_.layers) {
      const auto q = Linear(x, tokens, w.q_weight, w.q_bias);
      const auto k = Linear(x, tokens, w.k_weight, w.k_bias);
      const auto v = Linear(x, tokens, w.v_weight, w.v_bias);
      std::vector<double> ctx(tokens * h);
      for (size_t s = 0; s < batch.num_sequences(); ++s) {
        const int b = batch.cu_seqlens[s], e = batch.cu_seqlens[s + 1];
        for (int head = 0; head < heads; ++head) {
          for (int i = b; i < e; ++i) {
            std::vector<double> p;
            double mx = -INFINITY;
            for (int j = b; j < e; ++j) {
              double dot = 0;
              for (int c = 0; c < d; ++c) {
                dot += q[size_t(i) * h + head * d + c] * k[size_t(j) * h + head * d + c];
              }
              p.push_back(dot / std::sqrt(double(d)));
              mx = std::max(mx, p.back());
            }
            double sum = 0;
            for (double& pv : p) sum += (pv = std::exp(pv - mx));
            for (int c = 0; c < d; ++c) {
              double acc = 0;
              for (int j = b; j < e; ++j) acc += p[j - b] * v[size_t(j) * h + head * d + c];
              ctx[size_t(i) * h + head * d + c] = acc / sum;
            }
          }
        }
      }
      auto attn = Linear(ctx, tokens, w.attn_out_weight, w.attn_out_bias);
      for (size_t i = 0; i < x.size(); ++i) x[i] += attn[i];
      LayerNormRows(x, tokens, w.attn_ln_weight, w.attn_ln_bias);
      auto inner = Linear(x, tokens, w.ffn_in_weight, w.ffn_in_bias);
      for (double& a : inner) {
        a = config_.activation == Activation::kRelu ? std::max(a, 0.0)
                                                    : 0.5 * a * (1 + std::erf(a / std::sqrt(2.0)));
      }
      auto ffn = Linear(inner, tokens, w.ffn_out_weight, w.ffn_out_bias);
      for (size_t i = 0; i < x.size(); ++i) x[i] += ffn[i];
      LayerNormRows(x, tokens, w.ffn_ln_weight, w.ffn_ln_bias);
    }
    std::vector<double> out;
    for (size_t s = 0; s < batch.num_sequences(); ++s) {
      const int b = batch.cu_seqlens[s], e = batch.cu_seqlens[s + 1];
      std::vector<double> v(h, 0.0);
      for (int i = 0; i < h; ++i) {
        if (pooling == Pooling::kCls) {
          v[i] = x[size_t(b) * h + i];
        } else {
          for (int t = b; t < e; ++t) v[i] += x[size_t(t) * h + i];
          v[i] /= (e - b);
        }
      }
      if (batch.normalize[s]) {
        double n = 0;
        for (double a : v) n += a * a;
        for (double& a : v) a /= std::sqrt(n);
      }
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  }

 private:
  TensorView Make(const std::string& name, std::vector<int64_t> shape, float lo, float hi) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::uniform_real_distribution<float> dist(lo, hi);
    auto& bytes = storage_bytes_.emplace_back();
    const size_t element = storage_ == DType::kF32 ? 4 : 2;
    bytes.resize(size_t(n) * element);
    for (int64_t i = 0; i < n; ++i) {
      const float f = dist(rng_);
      if (storage_ == DType::kF32) {
        std::memcpy(bytes.data() + i * 4, &f, 4);
      } else {
        const uint16_t b =
            testing::ToBits(f, storage_ == DType::kF16 ? CudaDType::kF16 : CudaDType::kBF16);
        std::memcpy(bytes.data() + i * 2, &b, 2);
      }
    }
    TensorView view;
    view.name = name;
    view.dtype = storage_;
    view.shape = std::move(shape);
    view.data = bytes.data();
    view.nbytes = bytes.size();
    return view;
  }

  double At(const TensorView& v, size_t i) const {
    if (v.dtype == DType::kF32) {
      float f;
      std::memcpy(&f, v.data + i * 4, 4);
      return f;
    }
    uint16_t b;
    std::memcpy(&b, v.data + i * 2, 2);
    return testing::FromBits(b, v.dtype == DType::kF16 ? CudaDType::kF16 : CudaDType::kBF16);
  }

  std::vector<double> Linear(const std::vector<double>& x, size_t rows, const TensorView& w,
                             const TensorView& b) const {
    const size_t out = size_t(w.shape[0]), in = size_t(w.shape[1]);
    std::vector<double> y(rows * out);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t o = 0; o < out; ++o) {
        double acc = At(b, o);
        for (size_t k = 0; k < in; ++k) acc += x[r * in + k] * At(w, o * in + k);
        y[r * out + o] = acc;
      }
    }
    return y;
  }

  void LayerNorm(std::vector<double>& row, const TensorView& g, const TensorView& b) const {
    const double n = double(row.size());
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= n;
    for (double v : row) var += (v - mean) * (v - mean);
    var /= n;
    const double inv = 1.0 / std::sqrt(var + config_.layer_norm_eps);
    for (size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) * inv * At(g, i) + At(b, i);
  }

  void LayerNormRows(std::vector<double>& x, size_t rows, const TensorView& g,
                     const TensorView& b) const {
    const size_t h = x.size() / rows;
    for (size_t r = 0; r < rows; ++r) {
      std::vector<double> row(x.begin() + r * h, x.begin() + (r + 1) * h);
      LayerNorm(row, g, b);
      std::copy(row.begin(), row.end(), x.begin() + r * h);
    }
  }

  EncoderConfig config_;
  DType storage_;
  std::mt19937 rng_;
  std::deque<std::vector<std::byte>> storage_bytes_;
  EncoderWeights weights_;
};

struct ModelCase {
  std::string name;
  EncoderConfig config;
  DType storage;
  Pooling pooling;
  std::vector<int> lengths;
};

EncoderConfig BertLike() {
  EncoderConfig c;
  c.model_type = "bert";
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 128;
  c.max_position_embeddings = 80;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12f;
  c.activation = Activation::kGelu;
  return c;
}

EncoderConfig RobertaLike() {
  EncoderConfig c;
  c.family = EncoderFamily::kRoberta;
  c.model_type = "roberta";
  c.vocab_size = 61;
  c.hidden_size = 128;
  c.num_layers = 1;
  c.num_heads = 2;
  c.intermediate_size = 256;
  c.max_position_embeddings = 72;
  c.type_vocab_size = 0;
  c.pad_token_id = 1;
  c.position_offset = 2;
  c.layer_norm_eps = 1e-5f;
  c.activation = Activation::kRelu;
  return c;
}

const ModelCase kModels[] = {
    {"bert_f32_mean", BertLike(), DType::kF32, Pooling::kMean, {1, 7, 33, 64, 65, 5}},
    {"roberta_bf16_cls", RobertaLike(), DType::kBF16, Pooling::kCls, {3, 70, 12}},
};

Batch MakeBatch(const EncoderConfig& config, const std::vector<int>& lengths, std::mt19937& rng) {
  Batch batch;
  batch.cu_seqlens.push_back(0);
  for (size_t s = 0; s < lengths.size(); ++s) {
    for (int i = 0; i < lengths[s]; ++i) {
      batch.input_ids.push_back(int32_t(rng() % config.vocab_size));
      batch.token_type_ids.push_back(
          config.type_vocab_size > 0 ? int32_t(rng() % config.type_vocab_size) : 0);
      batch.position_ids.push_back(i);
    }
    batch.cu_seqlens.push_back(batch.cu_seqlens.back() + lengths[s]);
    batch.max_seqlen = std::max(batch.max_seqlen, lengths[s]);
    batch.normalize.push_back(uint8_t(s % 2 == 0));
  }
  return batch;
}

Batch Slice(const Batch& batch, size_t s) {
  Batch one;
  const int b = batch.cu_seqlens[s], e = batch.cu_seqlens[s + 1];
  one.input_ids.assign(batch.input_ids.begin() + b, batch.input_ids.begin() + e);
  one.token_type_ids.assign(batch.token_type_ids.begin() + b, batch.token_type_ids.begin() + e);
  one.position_ids.assign(batch.position_ids.begin() + b, batch.position_ids.begin() + e);
  one.cu_seqlens = {0, e - b};
  one.max_seqlen = e - b;
  one.normalize = {batch.normalize[s]};
  return one;
}

std::vector<double> Row(const std::vector<float>& v, size_t row, size_t width) {
  return std::vector<double>(v.begin() + row * width, v.begin() + (row + 1) * width);
}

BatchLimits SmallLimits() {
  BatchLimits limits;
  limits.max_batch_tokens = 512;
  limits.max_batch_requests = 16;
  limits.max_sequence_length = 70;
  return limits;
}

class CudaBackendTest : public ::testing::TestWithParam<std::tuple<ModelCase, CudaDType>> {};

TEST_P(CudaBackendTest, MatchesDoublePrecisionForwardAndBatchingIsInvisible) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto& [model_case, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  RandomModel model(model_case.config, model_case.storage, seed);
  const Batch batch = MakeBatch(model_case.config, model_case.lengths, rng);
  const std::vector<double> ref = model.Forward(batch, model_case.pooling);
  // Both places the residual and the output projections' biases can be added: the GEMM
  // epilogue or the LayerNorm.
  for (const bool in_gemm : {false, true}) {
    SCOPED_TRACE(fmt::format("residual and bias in the GEMM epilogue: {}", in_gemm));
    auto backend = CudaBackend::Create(model_case.config, model.weights(), model_case.pooling,
                                       {.device = 0,
                                        .dtype = dtype,
                                        .gpu_memory_limit = 0,
                                        .residual_in_gemm = in_gemm,
                                        .out_bias_in_layernorm = !in_gemm,
                                        .qkv_bias_in_attention = !in_gemm});
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    CudaBackend& b = **backend;
    EXPECT_EQ(b.name(), "cuda:0");
    EXPECT_EQ(b.embedding_dim(), model_case.config.hidden_size);
    ASSERT_TRUE(b.Warmup(SmallLimits()).ok());

    std::vector<float> out(3, NAN);  // Embed resizes; stale contents must not survive
    const Status status = b.Embed(batch, &out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    const size_t h = size_t(model_case.config.hidden_size);
    ASSERT_EQ(out.size(), batch.num_sequences() * h);

    const double tol = dtype == CudaDType::kF16 ? 5e-3 : 3e-2;
    for (size_t s = 0; s < batch.num_sequences(); ++s) {
      SCOPED_TRACE(fmt::format("sequence {} of {} tokens", s, model_case.lengths[s]));
      EXPECT_LT(
          RelativeError(Row(out, s, h), Row(std::vector<float>(ref.begin(), ref.end()), s, h)),
          tol);
      std::vector<float> single;
      ASSERT_TRUE(b.Embed(Slice(batch, s), &single).ok());
      ASSERT_EQ(single.size(), h);
      EXPECT_LT(RelativeError(Row(single, 0, h), Row(out, s, h)), tol / 2);
    }
    EXPECT_TRUE(b.Health().ok());
  }
}

std::string ModelName(const ::testing::TestParamInfo<std::tuple<ModelCase, CudaDType>>& p) {
  return fmt::format("{}_{}", std::get<0>(p.param).name, CudaDTypeName(std::get<1>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(Models, CudaBackendTest,
                         ::testing::Combine(::testing::ValuesIn(kModels),
                                            ::testing::Values(CudaDType::kF16, CudaDType::kBF16)),
                         ModelName);

// fp8 GEMMs: E4M3 rounding (2^-4 relative) in four of the six products per layer, so the
// tolerance is wider; a sequence's vector still must not depend on its batch.
class CudaBackendFp8Test : public ::testing::TestWithParam<ModelCase> {};

TEST_P(CudaBackendFp8Test, StaysCloseToTheDoubleForwardAndBatchingIsInvisible) {
  SLUICE_SKIP_WITHOUT_GPU();
  if (!testing::GpuComputeCapabilityAtLeast(89)) GTEST_SKIP() << "no fp8 tensor cores";
  const ModelCase& model_case = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  RandomModel model(model_case.config, model_case.storage, seed);
  const Batch batch = MakeBatch(model_case.config, model_case.lengths, rng);
  const std::vector<double> ref = model.Forward(batch, model_case.pooling);
  for (const bool fast : {false, true}) {
    SCOPED_TRACE(fmt::format("fast accumulation: {}", fast));
    CudaBackendOptions options;
    options.fp8_gemms = true;
    options.fp8_fast_accum = fast;
    auto backend =
        CudaBackend::Create(model_case.config, model.weights(), model_case.pooling, options);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    CudaBackend& b = **backend;
    ASSERT_TRUE(b.Warmup(SmallLimits()).ok());
    std::vector<float> out;
    const Status status = b.Embed(batch, &out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    const size_t h = size_t(model_case.config.hidden_size);
    for (size_t s = 0; s < batch.num_sequences(); ++s) {
      SCOPED_TRACE(fmt::format("sequence {} of {} tokens", s, model_case.lengths[s]));
      EXPECT_LT(
          RelativeError(Row(out, s, h), Row(std::vector<float>(ref.begin(), ref.end()), s, h)),
          0.1);
      std::vector<float> single;
      ASSERT_TRUE(b.Embed(Slice(batch, s), &single).ok());
      EXPECT_LT(RelativeError(Row(single, 0, h), Row(out, s, h)), 1e-2);
    }
    EXPECT_TRUE(b.Health().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaBackendFp8Test, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<ModelCase>& p) {
                           return std::string(p.param.name);
                         });

// Many short sequences: enough 64-row attention tiles for the short-tile kernel (a wave of
// them on any GPU up to 256 multiprocessors), with the sequences packed several to a tile. A
// sequence's vector must not depend on what it shares its tile with: dropping the first
// sequence moves every other one to new neighbours and offsets within the same graph bucket,
// and their vectors must stay the same bits.
TEST(CudaBackendShortSequencesTest, PackedTilesMatchTheReferenceAndTheirNeighboursDoNotMatter) {
  SLUICE_SKIP_WITHOUT_GPU();
  EncoderConfig config = BertLike();
  config.hidden_size = 128;
  config.num_heads = 4;  // head size 32
  config.num_layers = 1;
  config.intermediate_size = 256;
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  RandomModel model(config, DType::kF32, seed);
  std::vector<int> lengths;
  int tokens = 0;
  while (tokens < 4000) {
    lengths.push_back(1 + int(rng() % 40));
    tokens += lengths.back();
  }
  const Batch batch = MakeBatch(config, lengths, rng);
  Batch rest;
  rest.cu_seqlens.push_back(0);
  for (size_t s = 1; s < lengths.size(); ++s) {
    const Batch one = Slice(batch, s);
    rest.input_ids.insert(rest.input_ids.end(), one.input_ids.begin(), one.input_ids.end());
    rest.token_type_ids.insert(rest.token_type_ids.end(), one.token_type_ids.begin(),
                               one.token_type_ids.end());
    rest.position_ids.insert(rest.position_ids.end(), one.position_ids.begin(),
                             one.position_ids.end());
    rest.cu_seqlens.push_back(rest.cu_seqlens.back() + lengths[s]);
    rest.max_seqlen = std::max(rest.max_seqlen, lengths[s]);
    rest.normalize.push_back(one.normalize[0]);
  }
  const std::vector<double> ref = model.Forward(batch, Pooling::kMean);

  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  CudaBackend& b = **backend;
  BatchLimits limits;
  limits.max_batch_tokens = 4096;
  limits.max_batch_requests = 4096;
  limits.max_sequence_length = 70;
  ASSERT_TRUE(b.Warmup(limits).ok());
  std::vector<float> out;
  std::vector<float> out_rest;
  ASSERT_TRUE(b.Embed(batch, &out).ok());
  ASSERT_TRUE(b.Embed(rest, &out_rest).ok());
  const size_t h = size_t(config.hidden_size);
  ASSERT_EQ(out.size(), lengths.size() * h);
  ASSERT_EQ(out_rest.size(), (lengths.size() - 1) * h);
  for (size_t s = 0; s < lengths.size(); ++s) {
    SCOPED_TRACE(fmt::format("sequence {} of {} tokens", s, lengths[s]));
    EXPECT_LT(RelativeError(Row(out, s, h), Row(std::vector<float>(ref.begin(), ref.end()), s, h)),
              5e-3);
    if (s > 0) {
      EXPECT_EQ(std::vector<float>(out.begin() + s * h, out.begin() + (s + 1) * h),
                std::vector<float>(out_rest.begin() + (s - 1) * h, out_rest.begin() + s * h));
    }
  }
  EXPECT_TRUE(b.Health().ok());
}

TEST(CudaBackendCreateTest, RejectsFp8WithBf16OrTheResidualInTheGemm) {
  RandomModel model(BertLike(), DType::kF32, 1);
  CudaBackendOptions options;
  options.fp8_gemms = true;
  options.dtype = CudaDType::kBF16;
  auto bf16 = CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean, options);
  ASSERT_FALSE(bf16.ok());
  EXPECT_EQ(bf16.status().code(), StatusCode::kInvalidArgument) << bf16.status().ToString();
  options.dtype = CudaDType::kF16;
  options.residual_in_gemm = true;
  auto residual = CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean, options);
  ASSERT_FALSE(residual.ok());
  EXPECT_EQ(residual.status().code(), StatusCode::kInvalidArgument);
}

TEST(CudaBackendCreateTest, RejectsFp8ForSizesThatAreNotMultiplesOf16) {
  // Checked before the device is touched, so this runs without a GPU too.
  EncoderConfig config = BertLike();
  config.intermediate_size = 136;
  RandomModel model(config, DType::kF32, 1);
  CudaBackendOptions options;
  options.fp8_gemms = true;
  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented) << backend.status().ToString();
  EXPECT_NE(backend.status().message().find("multiples of 16"), std::string::npos);
}

TEST(CudaBackendCreateTest, RejectsArchitecturesWithoutKernels) {
  RandomModel model(BertLike(), DType::kF32, 1);
  EncoderConfig config = BertLike();
  config.num_heads = 4;  // head size 16
  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented) << backend.status().ToString();
  config = BertLike();
  config.activation = Activation::kSilu;
  backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
}

// Every compiled architecture carries its PTX, so a device runs this build when one of them is
// at most its compute capability; otherwise Create names the device's capability and the flag
// to rebuild with, before any kernel runs.
TEST(CudaBackendCreateTest, RefusesAGpuThisBuildHasNoCodeFor) {
  SLUICE_SKIP_WITHOUT_GPU();
  int major = 0, minor = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0), cudaSuccess);
  const int capability = 10 * major + minor;
  const std::string compiled = CompiledArchitectures();
  ASSERT_FALSE(compiled.empty());
  bool runnable = false;
  for (size_t at = 0; at < compiled.size();) {
    const size_t comma = std::min(compiled.find(',', at), compiled.size());
    // "90", "90a" or "90-real": the number leads.
    runnable |= std::atoi(compiled.substr(at, comma - at).c_str()) <= capability;
    at = comma + 1;
  }
  RandomModel model(BertLike(), DType::kF32, 1);
  auto backend = CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean, {});
  const Status probe = CheckKernelImage(0);
  if (runnable && major >= 8) {
    EXPECT_TRUE(probe.ok()) << probe.ToString();
    EXPECT_TRUE(backend.ok()) << backend.status().ToString();
    return;
  }
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(probe.code(), StatusCode::kUnimplemented);
  const std::string message = backend.status().message();
  EXPECT_NE(message.find(fmt::format("compute capability {}.{}", major, minor)), std::string::npos)
      << message;
  if (major >= 8) {
    EXPECT_NE(message.find(fmt::format("-DSLUICE_CUDA_ARCHITECTURES={}", capability)),
              std::string::npos)
        << message;
  }
}

TEST(CudaBackendCreateTest, RejectsMismatchedWeightsBeforeTouchingTheDevice) {
  RandomModel model(BertLike(), DType::kF32, 2);
  EncoderWeights weights = model.weights();
  weights.layers[1].ffn_in_weight.shape = {64, 128};
  auto backend = CudaBackend::Create(BertLike(), weights, Pooling::kMean, {});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(backend.status().message().find("ffn_in_weight"), std::string::npos);
  weights = model.weights();
  weights.layers.pop_back();
  EXPECT_EQ(CudaBackend::Create(BertLike(), weights, Pooling::kMean, {}).status().code(),
            StatusCode::kInvalidArgument);
  weights = model.weights();
  weights.word_embeddings.dtype = DType::kI32;
  EXPECT_EQ(CudaBackend::Create(BertLike(), weights, Pooling::kMean, {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CudaBackendCreateTest, WithoutGpuIsUnavailable) {
  if (testing::HaveGpu()) GTEST_SKIP() << "a CUDA device is present";
  RandomModel model(BertLike(), DType::kF32, 3);
  auto backend = CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean, {});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnavailable) << backend.status().ToString();
}

TEST(CudaBackendCreateTest, MemoryLimitTooSmallIsUnavailable) {
  SLUICE_SKIP_WITHOUT_GPU();
  RandomModel model(BertLike(), DType::kF32, 4);
  auto backend =
      CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean, {.gpu_memory_limit = 4096});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnavailable) << backend.status().ToString();
  // Room for the weights but not for the workspaces: Warmup reports it.
  backend = CudaBackend::Create(BertLike(), model.weights(), Pooling::kMean,
                                {.gpu_memory_limit = 40u << 20});
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  BatchLimits huge;
  huge.max_batch_tokens = 1 << 20;
  huge.max_sequence_length = 64;
  const Status status = (*backend)->Warmup(huge);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
}

TEST(CudaBackendEmbedTest, BadInputIsInvalidArgumentAndLeavesTheBackendHealthy) {
  SLUICE_SKIP_WITHOUT_GPU();
  const EncoderConfig config = BertLike();
  RandomModel model(config, DType::kF32, 5);
  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  CudaBackend& b = **backend;
  std::mt19937 rng(5);
  const Batch good = MakeBatch(config, {4, 9}, rng);
  std::vector<float> out;
  EXPECT_EQ(b.Embed(good, &out).code(), StatusCode::kFailedPrecondition);

  BatchLimits too_long = SmallLimits();
  too_long.max_sequence_length = 81;
  EXPECT_EQ(b.Warmup(too_long).code(), StatusCode::kInvalidArgument);
  BatchLimits zero = SmallLimits();
  zero.max_batch_tokens = 0;
  EXPECT_EQ(b.Warmup(zero).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(b.Warmup(SmallLimits()).ok());

  struct BadCase {
    const char* what;
    void (*mutate)(Batch&);
  };
  // The message names the token.
  Batch bad_id = good;
  bad_id.input_ids[5] = 97;
  const Status named = b.Embed(bad_id, &out);
  EXPECT_NE(named.message().find("token 5: id 97"), std::string::npos) << named.ToString();
  const BadCase cases[] = {
      {"id past the vocabulary", [](Batch& x) { x.input_ids[2] = 97; }},
      {"negative id", [](Batch& x) { x.input_ids[0] = -1; }},
      {"token type past the table", [](Batch& x) { x.token_type_ids[1] = 2; }},
      {"position past the table", [](Batch& x) { x.position_ids[3] = 80; }},
      {"negative position", [](Batch& x) { x.position_ids[3] = -1; }},
      {"short type ids", [](Batch& x) { x.token_type_ids.pop_back(); }},
      {"short position ids", [](Batch& x) { x.position_ids.pop_back(); }},
      {"missing normalize flag", [](Batch& x) { x.normalize.pop_back(); }},
      {"cu_seqlens not from 0", [](Batch& x) { x.cu_seqlens[0] = 1; }},
      {"cu_seqlens short of the tokens", [](Batch& x) { x.cu_seqlens.back() -= 1; }},
      {"empty sequence", [](Batch& x) { x.cu_seqlens[1] = 0; }},
      {"decreasing cu_seqlens", [](Batch& x) { x.cu_seqlens[1] = 20; }},
      {"tokens without cu_seqlens", [](Batch& x) { x.cu_seqlens.clear(); }},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.what);
    Batch bad = good;
    c.mutate(bad);
    const Status status = b.Embed(bad, &out);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  }
  Batch too_many_tokens = MakeBatch(config, std::vector<int>(8, 70), rng);
  EXPECT_EQ(b.Embed(too_many_tokens, &out).code(), StatusCode::kInvalidArgument);
  Batch too_long_sequence = MakeBatch(config, {71}, rng);
  too_long_sequence.position_ids.assign(71, 0);
  EXPECT_EQ(b.Embed(too_long_sequence, &out).code(), StatusCode::kInvalidArgument);
  Batch too_many_sequences = MakeBatch(config, std::vector<int>(17, 1), rng);
  EXPECT_EQ(b.Embed(too_many_sequences, &out).code(), StatusCode::kInvalidArgument);

  EXPECT_TRUE(b.Health().ok());
  EXPECT_TRUE(b.Embed(good, &out).ok());
  EXPECT_EQ(out.size(), 2u * 64u);
  EXPECT_TRUE(b.Embed(Batch{}, &out).ok());
  EXPECT_TRUE(out.empty());
}

// Graph buckets pad batches with tokens of no sequence and with empty sequence slots; the
// vectors must be those of the eager, unpadded forward pass.
TEST(CudaBackendGraphTest, GraphReplayMatchesEagerForEveryBucketBoundary) {
  SLUICE_SKIP_WITHOUT_GPU();
  const EncoderConfig config = BertLike();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  RandomModel model(config, DType::kF32, seed);
  CudaBackendOptions eager_options;
  eager_options.graph_max_tokens = 0;
  auto graphs = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  auto eager = CudaBackend::Create(config, model.weights(), Pooling::kMean, eager_options);
  ASSERT_TRUE(graphs.ok() && eager.ok());
  ASSERT_TRUE((*graphs)->Warmup(SmallLimits()).ok());
  ASSERT_TRUE((*eager)->Warmup(SmallLimits()).ok());
  EXPECT_EQ((*graphs)->graph_buckets(), (std::vector<int>{64, 96, 128, 192, 256, 384, 512}));
  EXPECT_TRUE((*eager)->graph_buckets().empty());

  std::mt19937 rng(seed);
  // Token counts at and just past bucket edges (64, 65, 96, 97, 192, 193), all slots full.
  const std::vector<std::vector<int>> batches = {
      {1},
      {64},
      {65},
      {70, 26},
      {33, 64},
      {1, 1, 1, 1, 1, 1, 1, 1},
      {70, 70, 52},
      {70, 70, 53},
      {3, 66, 64},
      {70, 70, 70, 70, 70, 70, 70, 22},
      std::vector<int>(16, 2),
  };
  for (const auto& lengths : batches) {
    SCOPED_TRACE(fmt::format("lengths {}", fmt::join(lengths, ",")));
    const Batch batch = MakeBatch(config, lengths, rng);
    std::vector<float> from_graph(1, NAN), from_eager;
    const Status from_graph_status = (*graphs)->Embed(batch, &from_graph);
    ASSERT_TRUE(from_graph_status.ok()) << from_graph_status.ToString();
    const Status from_eager_status = (*eager)->Embed(batch, &from_eager);
    ASSERT_TRUE(from_eager_status.ok()) << from_eager_status.ToString();
    ASSERT_EQ(from_graph.size(), from_eager.size());
    for (float v : from_graph) ASSERT_TRUE(std::isfinite(v));
    EXPECT_LT(RelativeError(std::vector<double>(from_graph.begin(), from_graph.end()),
                            std::vector<double>(from_eager.begin(), from_eager.end())),
              2e-3);
  }
  EXPECT_GT((*graphs)->last_forward_ms(), 0.0f);
}

// Eager passes (above the graph buckets) run on token counts padded to multiples of 256; their
// GEMMs are tuned at warm-up once per power-of-two class, and a new count in a tuned class
// takes the class's algorithms without timing any.
TEST(CudaBackendWarmupTest, TunesEagerClassesAtWarmupAndLaterBatchesReuseThem) {
  SLUICE_SKIP_WITHOUT_GPU();
  const EncoderConfig config = BertLike();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  RandomModel model(config, DType::kF32, seed);
  CudaBackendOptions options;
  options.graph_max_tokens = 128;
  CudaBackendOptions untuned;
  untuned.graph_max_tokens = 0;
  untuned.autotune_gemms = false;
  auto tuned = CudaBackend::Create(config, model.weights(), Pooling::kMean, options);
  auto plain = CudaBackend::Create(config, model.weights(), Pooling::kMean, untuned);
  ASSERT_TRUE(tuned.ok() && plain.ok());
  BatchLimits limits = SmallLimits();
  limits.max_batch_tokens = 1024;
  ASSERT_TRUE((*tuned)->Warmup(limits).ok());
  ASSERT_TRUE((*plain)->Warmup(limits).ok());
  const size_t after_warmup = (*tuned)->gemm().tuned_shapes();
  // Four GEMM shapes for each bucket (64-128 tokens) and each eager class (256, 512, 1024).
  EXPECT_GE(after_warmup, 4u * 6u);

  std::mt19937 rng(seed);
  // 600 and 900 tokens: padded to 768 and 1024; 200: 256.
  for (const std::vector<int>& lengths :
       {std::vector<int>(10, 60), std::vector<int>(15, 60), std::vector<int>{70, 70, 60}}) {
    const Batch batch = MakeBatch(config, lengths, rng);
    std::vector<float> got, want;
    const Status s = (*tuned)->Embed(batch, &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE((*plain)->Embed(batch, &want).ok());
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(RelativeError(std::vector<double>(got.begin(), got.end()),
                            std::vector<double>(want.begin(), want.end())),
              2e-3);
  }
  EXPECT_EQ((*tuned)->gemm().tuned_shapes(), after_warmup);
  EXPECT_EQ((*plain)->gemm().tuned_shapes(), 0u);
}

TEST(CudaBackendProfileTest, TimesEveryKindOfOpOnce) {
  SLUICE_SKIP_WITHOUT_GPU();
  const EncoderConfig config = BertLike();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  RandomModel model(config, DType::kF32, seed);
  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  ASSERT_TRUE(backend.ok());
  CudaBackend& b = **backend;
  std::mt19937 rng(seed);
  const Batch batch = MakeBatch(config, {33, 70, 5}, rng);
  EXPECT_EQ(b.ProfileForward(batch, 2).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(b.Warmup(SmallLimits()).ok());
  auto ops = b.ProfileForward(batch, 3);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  std::vector<std::string> names;
  for (const OpTime& op : *ops) {
    names.push_back(op.op);
    EXPECT_EQ(op.calls,
              op.op == "embedding+layernorm" || op.op == "pooling" ? 1 : config.num_layers)
        << op.op;
    EXPECT_GT(op.ms, 0.0) << op.op;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"embedding+layernorm", "qkv_gemm", "attention",
                                             "attn_out_gemm", "attn_layernorm", "ffn_in_gemm",
                                             "ffn_out_gemm", "ffn_layernorm", "pooling"}));
  // Profiling leaves the backend serving the same results.
  std::vector<float> a, c;
  ASSERT_TRUE(b.Embed(batch, &a).ok());
  ASSERT_TRUE(b.ProfileForward(batch, 1).ok());
  ASSERT_TRUE(b.Embed(batch, &c).ok());
  EXPECT_EQ(a, c);
  EXPECT_EQ(b.ProfileForward(Batch{}, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(CudaBackendPipelineTest, SubmitCollectOverlapsAndKeepsResultsInOrder) {
  SLUICE_SKIP_WITHOUT_GPU();
  const EncoderConfig config = BertLike();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  RandomModel model(config, DType::kF32, seed);
  auto backend = CudaBackend::Create(config, model.weights(), Pooling::kMean, {});
  ASSERT_TRUE(backend.ok());
  CudaBackend& b = **backend;
  std::vector<float> out;
  std::mt19937 rng(seed);
  EXPECT_EQ(b.Submit(MakeBatch(config, {3}, rng)).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(b.Warmup(SmallLimits()).ok());
  EXPECT_EQ(b.max_in_flight(), 2);

  // Reference vectors one batch at a time, over several buckets.
  std::vector<Batch> batches;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < 9; ++i) {
    std::vector<int> lengths;
    for (int s = 0; s <= i % 4; ++s) lengths.push_back(1 + int(rng() % 70));
    batches.push_back(MakeBatch(config, lengths, rng));
    expected.emplace_back();
    ASSERT_TRUE(b.Embed(batches.back(), &expected.back()).ok());
  }

  // Two in flight at every step: submit i + 1 before collecting i.
  StatusOr<uint64_t> first = b.Submit(batches[0]);
  ASSERT_TRUE(first.ok());
  std::vector<uint64_t> tickets = {*first};
  for (size_t i = 0; i < batches.size(); ++i) {
    if (i + 1 < batches.size()) {
      StatusOr<uint64_t> next = b.Submit(batches[i + 1]);
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      tickets.push_back(*next);
      if (i == 0) {
        // A third batch, Embed() and an out-of-order Collect() are refused while two are out.
        EXPECT_EQ(b.Submit(batches[2]).status().code(), StatusCode::kFailedPrecondition);
        EXPECT_EQ(b.Embed(batches[2], &out).code(), StatusCode::kFailedPrecondition);
        EXPECT_EQ(b.Collect(tickets[1], &out).code(), StatusCode::kInvalidArgument);
      }
    }
    ASSERT_TRUE(b.Collect(tickets[i], &out).ok());
    SCOPED_TRACE(fmt::format("batch {}", i));
    ASSERT_EQ(out.size(), expected[i].size());
    EXPECT_LT(RelativeError(std::vector<double>(out.begin(), out.end()),
                            std::vector<double>(expected[i].begin(), expected[i].end())),
              1e-6);
  }
  EXPECT_EQ(b.Collect(tickets.back(), &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.Submit(Batch{}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(b.Health().ok());
}

}  // namespace
}  // namespace sluice::cuda
