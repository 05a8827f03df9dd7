#include "reference_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "model/tensor.h"

namespace sluice::testing {
namespace {

using Matrix = std::vector<double>;  // row-major

// y[r, o] = sum_i x[r, i] * w[o, i] + b[o]  (w in PyTorch [out, in] layout)
Matrix LinearRef(const Matrix& x, size_t rows, size_t in, const std::vector<double>& w,
                 const std::vector<double>& b, size_t out) {
  Matrix y(rows * out);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t o = 0; o < out; ++o) {
      double acc = b[o];
      for (size_t i = 0; i < in; ++i) acc += x[r * in + i] * w[o * in + i];
      y[r * out + o] = acc;
    }
  }
  return y;
}

void LayerNormRef(Matrix& x, size_t rows, size_t cols, const std::vector<double>& g,
                  const std::vector<double>& b, double eps) {
  for (size_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (size_t c = 0; c < cols; ++c) mean += x[r * cols + c];
    mean /= static_cast<double>(cols);
    for (size_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mean) * (x[r * cols + c] - mean);
    var /= static_cast<double>(cols);
    for (size_t c = 0; c < cols; ++c) {
      x[r * cols + c] = (x[r * cols + c] - mean) / std::sqrt(var + eps) * g[c] + b[c];
    }
  }
}

double ActivationRef(double x, Activation act) {
  switch (act) {
    case Activation::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::kRelu:
      return std::max(x, 0.0);
    case Activation::kSilu:
      return x / (1.0 + std::exp(-x));
  }
  return x;
}

}  // namespace

RandomEncoder::RandomEncoder(const EncoderConfig& config, DType dtype, uint32_t seed)
    : config_(config), dtype_(dtype), state_(seed * 2654435761u + 1) {
  const int64_t h = config.hidden_size, inter = config.intermediate_size;
  const double wh = 1.0 / std::sqrt(static_cast<double>(h));
  const double wi = 1.0 / std::sqrt(static_cast<double>(inter));
  weights_.word_embeddings = Make("word", {config.vocab_size, h}, 1.0);
  weights_.position_embeddings = Make("pos", {config.max_position_embeddings, h}, 0.5);
  if (config.type_vocab_size > 0) {
    weights_.token_type_embeddings = Make("type", {config.type_vocab_size, h}, 0.5);
  }
  weights_.embeddings_ln_weight = Make("emb_ln_g", {h}, 0.2, 1.0);
  weights_.embeddings_ln_bias = Make("emb_ln_b", {h}, 0.1);
  for (int l = 0; l < config.num_layers; ++l) {
    EncoderLayerWeights lw;
    const std::string p = "layer" + std::to_string(l) + ".";
    lw.q_weight = Make(p + "q", {h, h}, 1.5 * wh);
    lw.q_bias = Make(p + "qb", {h}, 0.1);
    lw.k_weight = Make(p + "k", {h, h}, 1.5 * wh);
    lw.k_bias = Make(p + "kb", {h}, 0.1);
    lw.v_weight = Make(p + "v", {h, h}, wh);
    lw.v_bias = Make(p + "vb", {h}, 0.1);
    lw.attn_out_weight = Make(p + "o", {h, h}, wh);
    lw.attn_out_bias = Make(p + "ob", {h}, 0.1);
    lw.attn_ln_weight = Make(p + "ln1g", {h}, 0.2, 1.0);
    lw.attn_ln_bias = Make(p + "ln1b", {h}, 0.1);
    lw.ffn_in_weight = Make(p + "f1", {inter, h}, 1.5 * wh);
    lw.ffn_in_bias = Make(p + "f1b", {inter}, 0.1);
    lw.ffn_out_weight = Make(p + "f2", {h, inter}, wi);
    lw.ffn_out_bias = Make(p + "f2b", {h}, 0.1);
    lw.ffn_ln_weight = Make(p + "ln2g", {h}, 0.2, 1.0);
    lw.ffn_ln_bias = Make(p + "ln2b", {h}, 0.1);
    weights_.layers.push_back(std::move(lw));
  }
}

TensorView RandomEncoder::Make(const std::string& name, std::vector<int64_t> shape, double scale,
                               double offset) {
  auto t = std::make_unique<Tensor>();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const size_t elem = dtype_ == DType::kF32 ? 4 : 2;
  t->bytes.resize(static_cast<size_t>(n) * elem);
  t->values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    state_ = state_ * 1664525u + 1013904223u;  // LCG: deterministic across platforms
    const double u = static_cast<double>(state_ >> 8) / static_cast<double>(1u << 24);
    const auto f = static_cast<float>(offset + scale * (2.0 * u - 1.0));
    std::byte* dst = t->bytes.data() + static_cast<size_t>(i) * elem;
    if (dtype_ == DType::kF32) {
      std::memcpy(dst, &f, 4);
      t->values[static_cast<size_t>(i)] = f;
    } else if (dtype_ == DType::kF16) {
      const uint16_t hv = FloatToHalf(f);
      std::memcpy(dst, &hv, 2);
      t->values[static_cast<size_t>(i)] = HalfToFloat(hv);
    } else {
      const uint16_t bv = FloatToBFloat16(f);
      std::memcpy(dst, &bv, 2);
      t->values[static_cast<size_t>(i)] = BFloat16ToFloat(bv);
    }
  }
  TensorView v;
  v.name = name;
  v.dtype = dtype_;
  v.shape = std::move(shape);
  v.data = t->bytes.data();
  v.nbytes = t->bytes.size();
  tensors_.push_back(std::move(t));
  return v;
}

const std::vector<double>& RandomEncoder::Values(const TensorView& view) const {
  for (const auto& t : tensors_) {
    if (t->bytes.data() == view.data) return t->values;
  }
  SLUICE_CHECK(false) << "unknown tensor " << view.name;
  return tensors_.front()->values;
}

std::vector<double> RandomEncoder::ReferenceHidden(const std::vector<int32_t>& ids,
                                                   const std::vector<int32_t>& types) const {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto inter = static_cast<size_t>(config_.intermediate_size);
  const auto heads = static_cast<size_t>(config_.num_heads);
  const size_t d = h / heads;
  const size_t len = ids.size();
  const double eps = config_.layer_norm_eps;

  Matrix x(len * h);
  const auto& word = Values(weights_.word_embeddings);
  const auto& pos = Values(weights_.position_embeddings);
  for (size_t t = 0; t < len; ++t) {
    const size_t p = t + static_cast<size_t>(config_.position_offset);
    for (size_t c = 0; c < h; ++c) {
      double v = word[static_cast<size_t>(ids[t]) * h + c] + pos[p * h + c];
      if (config_.type_vocab_size > 0) {
        v += Values(weights_.token_type_embeddings)[static_cast<size_t>(types[t]) * h + c];
      }
      x[t * h + c] = v;
    }
  }
  LayerNormRef(x, len, h, Values(weights_.embeddings_ln_weight),
               Values(weights_.embeddings_ln_bias), eps);

  for (const EncoderLayerWeights& lw : weights_.layers) {
    const Matrix q = LinearRef(x, len, h, Values(lw.q_weight), Values(lw.q_bias), h);
    const Matrix k = LinearRef(x, len, h, Values(lw.k_weight), Values(lw.k_bias), h);
    const Matrix v = LinearRef(x, len, h, Values(lw.v_weight), Values(lw.v_bias), h);
    Matrix ctx(len * h, 0.0);
    for (size_t head = 0; head < heads; ++head) {
      for (size_t i = 0; i < len; ++i) {
        std::vector<double> s(len);
        double mx = -1e300;
        for (size_t j = 0; j < len; ++j) {
          double dot = 0;
          for (size_t e = 0; e < d; ++e) dot += q[i * h + head * d + e] * k[j * h + head * d + e];
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (size_t j = 0; j < len; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (size_t j = 0; j < len; ++j) {
          for (size_t e = 0; e < d; ++e)
            ctx[i * h + head * d + e] += s[j] / sum * v[j * h + head * d + e];
        }
      }
    }
    Matrix a = LinearRef(ctx, len, h, Values(lw.attn_out_weight), Values(lw.attn_out_bias), h);
    for (size_t i = 0; i < a.size(); ++i) a[i] += x[i];
    LayerNormRef(a, len, h, Values(lw.attn_ln_weight), Values(lw.attn_ln_bias), eps);
    x = a;
    Matrix f = LinearRef(x, len, h, Values(lw.ffn_in_weight), Values(lw.ffn_in_bias), inter);
    for (double& e : f) e = ActivationRef(e, config_.activation);
    Matrix o = LinearRef(f, len, inter, Values(lw.ffn_out_weight), Values(lw.ffn_out_bias), h);
    for (size_t i = 0; i < o.size(); ++i) o[i] += x[i];
    LayerNormRef(o, len, h, Values(lw.ffn_ln_weight), Values(lw.ffn_ln_bias), eps);
    x = o;
  }
  return x;
}

std::vector<double> RandomEncoder::ReferenceEmbedding(const std::vector<int32_t>& ids,
                                                      const std::vector<int32_t>& types,
                                                      Pooling pooling, bool normalize) const {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const std::vector<double> x = ReferenceHidden(ids, types);
  const size_t len = ids.size();
  std::vector<double> out(h, 0.0);
  for (size_t c = 0; c < h; ++c) {
    switch (pooling) {
      case Pooling::kCls:
        out[c] = x[c];
        break;
      case Pooling::kLastToken:
        out[c] = x[(len - 1) * h + c];
        break;
      case Pooling::kMax:
        out[c] = x[c];
        for (size_t t = 1; t < len; ++t) out[c] = std::max(out[c], x[t * h + c]);
        break;
      case Pooling::kMean:
      case Pooling::kMeanSqrtLen:
        for (size_t t = 0; t < len; ++t) out[c] += x[t * h + c];
        out[c] /= pooling == Pooling::kMean ? static_cast<double>(len)
                                            : std::sqrt(static_cast<double>(len));
        break;
    }
  }
  if (normalize) {
    double sq = 0;
    for (double v : out) sq += v * v;
    for (double& v : out) v /= std::max(std::sqrt(sq), 1e-12);
  }
  return out;
}

}  // namespace sluice::testing
