#include "backends/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <utility>

#include "backends/cpu/blas_runtime.h"
#include "backends/cpu/cpu_kernels.h"
#include "common/logging.h"
#include "model/tensor.h"

namespace sluice {
namespace {

using cpu::AlignedBuffer;

// Rows per OpenBLAS GEMM block: a multiple of its SkylakeX kernels' 16-row tile. PackedGemm's
// blocks are not rounded: equal blocks balance the threads better than whole 14-row tiles.
constexpr size_t kBlasRowTile = 16;

// Attention of fewer multiply-adds than this (a 16-token sequence of all-MiniLM-L6-v2 is 0.2 M)
// runs on the calling thread: it takes less time than a worker's wake-up.
constexpr size_t kInlineAttentionMacs = size_t{1} << 20;

size_t RoundUp(size_t x, size_t to) { return (x + to - 1) / to * to; }

Status ConvertInto(const TensorView& view, size_t expected, std::string_view what, float* dst) {
  if (view.empty()) return InvalidArgument(fmt::format("missing weight tensor {}", what));
  if (view.numel() < 0 || static_cast<size_t>(view.numel()) != expected) {
    return InvalidArgument(fmt::format("weight tensor {} ({}) has {} elements, expected {}", what,
                                       view.name, view.numel(), expected));
  }
  return ConvertToFloat32(view, std::span<float>(dst, expected)).WithContext(what);
}

StatusOr<AlignedBuffer> Allocate(size_t n, std::string_view what) {
  AlignedBuffer b = AlignedBuffer::Allocate(n);
  if (b.empty() && n != 0) {
    return ResourceExhausted(fmt::format("cannot allocate {} floats for {}", n, what));
  }
  return b;
}

StatusOr<AlignedBuffer> Convert(const TensorView& view, size_t expected, std::string_view what) {
  SLUICE_ASSIGN_OR_RETURN(AlignedBuffer b, Allocate(expected, what));
  SLUICE_RETURN_IF_ERROR(ConvertInto(view, expected, what, b.data()));
  return b;
}

Status ValidateConfig(const EncoderConfig& c) {
  if (c.hidden_size <= 0 || c.num_heads <= 0 || c.hidden_size % c.num_heads != 0) {
    return InvalidArgument(fmt::format("hidden_size {} is not a positive multiple of num_heads {}",
                                       c.hidden_size, c.num_heads));
  }
  if (c.num_layers <= 0 || c.intermediate_size <= 0 || c.vocab_size <= 0 || c.type_vocab_size < 0) {
    return InvalidArgument("encoder config has a non-positive size");
  }
  if (c.position_offset < 0 || c.position_offset >= c.max_position_embeddings) {
    return InvalidArgument(fmt::format("position_offset {} outside max_position_embeddings {}",
                                       c.position_offset, c.max_position_embeddings));
  }
  if (!(c.layer_norm_eps > 0.0f)) return InvalidArgument("layer_norm_eps must be positive");
  return Status::Ok();
}

}  // namespace

CpuBackend::CpuBackend(const EncoderConfig& config, Pooling pooling, int num_threads)
    : config_(config), pooling_(pooling), packed_gemm_(cpu::UsePackedGemm()), pool_(num_threads) {}

StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const EncoderConfig& config,
                                                         const EncoderWeights& weights,
                                                         Pooling pooling,
                                                         CpuBackendOptions options) {
  SLUICE_RETURN_IF_ERROR(ValidateConfig(config));
  if (options.num_threads < 0) return InvalidArgument("num_threads must be >= 0");
  cpu::ConfigureBlasOnce();
  std::unique_ptr<CpuBackend> backend(new CpuBackend(config, pooling, options.num_threads));
  SLUICE_RETURN_IF_ERROR(backend->ConvertWeights(weights));
  SLUICE_LOG_INFO("cpu backend: {} threads, {}", backend->num_threads(), cpu::BlasDescription());
  return backend;
}

Status CpuBackend::ConvertWeights(const EncoderWeights& w) {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto inter = static_cast<size_t>(config_.intermediate_size);
  SLUICE_ASSIGN_OR_RETURN(
      word_emb_,
      Convert(w.word_embeddings, static_cast<size_t>(config_.vocab_size) * h, "word_embeddings"));
  SLUICE_ASSIGN_OR_RETURN(
      pos_emb_,
      Convert(w.position_embeddings, static_cast<size_t>(config_.max_position_embeddings) * h,
              "position_embeddings"));
  if (config_.type_vocab_size > 0) {
    SLUICE_ASSIGN_OR_RETURN(type_emb_, Convert(w.token_type_embeddings,
                                               static_cast<size_t>(config_.type_vocab_size) * h,
                                               "token_type_embeddings"));
  }
  SLUICE_ASSIGN_OR_RETURN(emb_ln_g_, Convert(w.embeddings_ln_weight, h, "embeddings_ln_weight"));
  SLUICE_ASSIGN_OR_RETURN(emb_ln_b_, Convert(w.embeddings_ln_bias, h, "embeddings_ln_bias"));

  if (w.layers.size() != static_cast<size_t>(config_.num_layers)) {
    return InvalidArgument(
        fmt::format("weights have {} layers, config has {}", w.layers.size(), config_.num_layers));
  }
  layers_.resize(w.layers.size());
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const EncoderLayerWeights& src = w.layers[i];
    Layer& dst = layers_[i];
    const std::string p = fmt::format("layer {} ", i);
    // Q, K and V become one [3H, H] GEMM: one pass over the activations instead of three.
    SLUICE_ASSIGN_OR_RETURN(dst.qkv_w.raw, Allocate(3 * h * h, "qkv weight"));
    dst.qkv_w.n = 3 * h;
    dst.qkv_w.k = h;
    SLUICE_ASSIGN_OR_RETURN(dst.qkv_b, Allocate(3 * h, "qkv bias"));
    float* qkv = dst.qkv_w.raw.data();
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.q_weight, h * h, p + "q_weight", qkv));
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.k_weight, h * h, p + "k_weight", qkv + h * h));
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.v_weight, h * h, p + "v_weight", qkv + 2 * h * h));
    SLUICE_RETURN_IF_ERROR(Prepare(dst.qkv_w));
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.q_bias, h, p + "q_bias", dst.qkv_b.data()));
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.k_bias, h, p + "k_bias", dst.qkv_b.data() + h));
    SLUICE_RETURN_IF_ERROR(ConvertInto(src.v_bias, h, p + "v_bias", dst.qkv_b.data() + 2 * h));
    SLUICE_ASSIGN_OR_RETURN(dst.out_w.raw,
                            Convert(src.attn_out_weight, h * h, p + "attn_out_weight"));
    dst.out_w.n = h;
    dst.out_w.k = h;
    SLUICE_RETURN_IF_ERROR(Prepare(dst.out_w));
    SLUICE_ASSIGN_OR_RETURN(dst.out_b, Convert(src.attn_out_bias, h, p + "attn_out_bias"));
    SLUICE_ASSIGN_OR_RETURN(dst.ln1_g, Convert(src.attn_ln_weight, h, p + "attn_ln_weight"));
    SLUICE_ASSIGN_OR_RETURN(dst.ln1_b, Convert(src.attn_ln_bias, h, p + "attn_ln_bias"));
    SLUICE_ASSIGN_OR_RETURN(dst.ffn_in_w.raw,
                            Convert(src.ffn_in_weight, inter * h, p + "ffn_in_weight"));
    dst.ffn_in_w.n = inter;
    dst.ffn_in_w.k = h;
    SLUICE_RETURN_IF_ERROR(Prepare(dst.ffn_in_w));
    SLUICE_ASSIGN_OR_RETURN(dst.ffn_in_b, Convert(src.ffn_in_bias, inter, p + "ffn_in_bias"));
    SLUICE_ASSIGN_OR_RETURN(dst.ffn_out_w.raw,
                            Convert(src.ffn_out_weight, h * inter, p + "ffn_out_weight"));
    dst.ffn_out_w.n = h;
    dst.ffn_out_w.k = inter;
    SLUICE_RETURN_IF_ERROR(Prepare(dst.ffn_out_w));
    SLUICE_ASSIGN_OR_RETURN(dst.ffn_out_b, Convert(src.ffn_out_bias, h, p + "ffn_out_bias"));
    SLUICE_ASSIGN_OR_RETURN(dst.ln2_g, Convert(src.ffn_ln_weight, h, p + "ffn_ln_weight"));
    SLUICE_ASSIGN_OR_RETURN(dst.ln2_b, Convert(src.ffn_ln_bias, h, p + "ffn_ln_bias"));
  }
  return Status::Ok();
}

Status CpuBackend::Prepare(LinearWeight& w) {
  if (!cpu::UsePackedGemm()) return Status::Ok();
  SLUICE_ASSIGN_OR_RETURN(w.packed, cpu::PackedMatrix::Pack(w.raw.data(), w.n, w.k));
  w.raw = AlignedBuffer();
  return Status::Ok();
}

Status CpuBackend::Warmup(const BatchLimits& limits) {
  if (limits.max_batch_tokens == 0 || limits.max_batch_requests == 0 ||
      limits.max_sequence_length == 0) {
    return InvalidArgument("batch limits must be positive");
  }
  const size_t tokens = limits.max_batch_tokens;
  const size_t max_len = std::min(limits.max_sequence_length, tokens);
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto threads = static_cast<size_t>(pool_.num_threads());
  warm_ = false;
  SLUICE_ASSIGN_OR_RETURN(hidden_, Allocate(tokens * h, "hidden states"));
  SLUICE_ASSIGN_OR_RETURN(qkv_, Allocate(tokens * 3 * h, "qkv"));
  SLUICE_ASSIGN_OR_RETURN(context_, Allocate(tokens * h, "attention context"));
  SLUICE_ASSIGN_OR_RETURN(ffn_,
                          Allocate(tokens * static_cast<size_t>(config_.intermediate_size), "ffn"));
  SLUICE_ASSIGN_OR_RETURN(scores_, Allocate(threads * max_len * max_len, "attention scores"));
  limits_ = limits;
  warm_ = true;

  // One short sequence touches every code path (and OpenBLAS's lazily allocated buffers).
  const int len = static_cast<int>(std::min<size_t>(
      {16, max_len,
       static_cast<size_t>(config_.max_position_embeddings - config_.position_offset)}));
  Batch batch;
  batch.cu_seqlens = {0, len};
  batch.max_seqlen = len;
  batch.normalize = {1};
  for (int i = 0; i < len; ++i) {
    batch.input_ids.push_back(i % config_.vocab_size);
    batch.token_type_ids.push_back(0);
    batch.position_ids.push_back(i);
  }
  std::vector<float> out;
  return Embed(batch, &out).WithContext("warmup");
}

Status CpuBackend::Validate(const Batch& batch) const {
  if (!warm_) return FailedPrecondition("Warmup() must succeed before Embed()");
  const size_t num_seqs = batch.num_sequences();
  const size_t num_tokens = batch.num_tokens();
  if (num_seqs == 0 || num_tokens == 0) return InvalidArgument("empty batch");
  SLUICE_RETURN_IF_ERROR(batch.CheckLayout());
  if (num_tokens > limits_.max_batch_tokens) {
    return TooLarge(fmt::format("batch of {} tokens exceeds the limit of {}", num_tokens,
                                limits_.max_batch_tokens));
  }
  if (num_seqs > limits_.max_batch_requests) {
    return TooLarge(fmt::format("batch of {} sequences exceeds the limit of {}", num_seqs,
                                limits_.max_batch_requests));
  }
  for (size_t s = 0; s < num_seqs; ++s) {
    const int64_t len =
        static_cast<int64_t>(batch.cu_seqlens[s + 1]) - static_cast<int64_t>(batch.cu_seqlens[s]);
    if (static_cast<size_t>(len) > limits_.max_sequence_length) {
      return TooLarge(fmt::format("sequence {} has {} tokens, the limit is {}", s, len,
                                  limits_.max_sequence_length));
    }
  }
  const int num_types = std::max(config_.type_vocab_size, 1);
  const int max_position = config_.max_position_embeddings - config_.position_offset;
  for (size_t t = 0; t < num_tokens; ++t) {
    if (batch.input_ids[t] < 0 || batch.input_ids[t] >= config_.vocab_size) {
      return InvalidArgument(fmt::format("token id {} at index {} is outside the vocabulary of {}",
                                         batch.input_ids[t], t, config_.vocab_size));
    }
    if (batch.token_type_ids[t] < 0 || batch.token_type_ids[t] >= num_types) {
      return InvalidArgument(fmt::format("token type id {} at index {} is outside [0, {})",
                                         batch.token_type_ids[t], t, num_types));
    }
    if (batch.position_ids[t] < 0 || batch.position_ids[t] >= max_position) {
      return InvalidArgument(
          fmt::format("position id {} at index {} is outside [0, {}) (max_position_embeddings {})",
                      batch.position_ids[t], t, max_position, config_.max_position_embeddings));
    }
  }
  return Status::Ok();
}

Status CpuBackend::Embed(const Batch& batch, std::vector<float>* out) {
  SLUICE_RETURN_IF_ERROR(Validate(batch));
  RunEncoder(batch);
  const auto h = static_cast<size_t>(config_.hidden_size);
  out->resize(batch.num_sequences() * h);
  Pool(batch, out->data());
  return Status::Ok();
}

Status CpuBackend::Forward(const Batch& batch, std::vector<float>* hidden_states) {
  SLUICE_RETURN_IF_ERROR(Validate(batch));
  RunEncoder(batch);
  const size_t n = batch.num_tokens() * static_cast<size_t>(config_.hidden_size);
  hidden_states->assign(hidden_.data(), hidden_.data() + n);
  return Status::Ok();
}

void CpuBackend::RunEncoder(const Batch& batch) {
  Embeddings(batch);
  for (const Layer& layer : layers_) EncoderLayer(batch, layer);
}

void CpuBackend::Embeddings(const Batch& batch) {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const float eps = config_.layer_norm_eps;
  pool_.ParallelFor(batch.num_tokens(), 64, [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      float* row = hidden_.data() + t * h;
      const float* word = word_emb_.data() + static_cast<size_t>(batch.input_ids[t]) * h;
      const float* pos = pos_emb_.data() +
                         static_cast<size_t>(batch.position_ids[t] + config_.position_offset) * h;
      if (type_emb_.empty()) {
        for (size_t c = 0; c < h; ++c) row[c] = word[c] + pos[c];
      } else {
        const float* type = type_emb_.data() + static_cast<size_t>(batch.token_type_ids[t]) * h;
        // Summed in PyTorch's order: (word + type) + position.
        for (size_t c = 0; c < h; ++c) row[c] = (word[c] + type[c]) + pos[c];
      }
      cpu::AddBiasResidualLayerNorm(row, nullptr, nullptr, emb_ln_g_.data(), emb_ln_b_.data(), eps,
                                    1, h, row);
    }
  });
}

template <typename Epilogue>
void CpuBackend::Linear(const float* x, size_t m, const LinearWeight& w, float* y,
                        EpilogueScope scope, const Epilogue& epilogue) {
  const size_t n = w.n;
  const size_t k = w.k;
  const auto threads = static_cast<size_t>(pool_.num_threads());
  const auto gemm = [&](size_t row0, size_t rows, size_t col0, size_t cols) {
    if (packed_gemm_) {
      cpu::PackedGemm(x + row0 * k, k, rows, w.packed, col0, cols, y + row0 * n + col0, n);
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(cols), static_cast<int>(k), 1.0f, x + row0 * k,
                static_cast<int>(k), w.raw.data() + col0 * k, static_cast<int>(k), 0.0f,
                y + row0 * n + col0, static_cast<int>(n));
  };
  if (threads == 1) {
    gemm(0, m, 0, n);
    epilogue(0, m, 0, n);
    return;
  }
  if (m >= 2 * kBlasRowTile) {
    // Row blocks: each thread runs the GEMM and then the epilogue on rows still in its cache.
    const size_t blocks = m >= 256 ? 2 * threads : threads;
    const size_t grain = RoundUp((m + blocks - 1) / blocks, packed_gemm_ ? 1 : kBlasRowTile);
    pool_.ParallelFor(m, grain, [&](size_t begin, size_t end) {
      gemm(begin, end - begin, 0, n);
      epilogue(begin, end - begin, 0, n);
    });
    return;
  }
  // Too few rows to share: split the output columns (weight rows) instead, in whole panels.
  const size_t col_tile = packed_gemm_ ? cpu::PackedMatrix::kPanelWidth : kBlasRowTile;
  const size_t grain = RoundUp((n + threads - 1) / threads, col_tile);
  // An elementwise epilogue runs on each column block as it is finished; a row-wise one must
  // wait for all of them.
  pool_.ParallelFor(n, grain, [&](size_t begin, size_t end) {
    gemm(0, m, begin, end - begin);
    if (scope == EpilogueScope::kElementwise) epilogue(0, m, begin, end - begin);
  });
  if (scope == EpilogueScope::kWholeRows) epilogue(0, m, 0, n);
}

void CpuBackend::EncoderLayer(const Batch& batch, const Layer& layer) {
  const size_t tokens = batch.num_tokens();
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto inter = static_cast<size_t>(config_.intermediate_size);
  const float eps = config_.layer_norm_eps;
  float* hidden = hidden_.data();
  // qkv_ doubles as the scratch of the two projections that follow attention.
  float* scratch = qkv_.data();

  Linear(hidden, tokens, layer.qkv_w, qkv_.data(), EpilogueScope::kElementwise,
         [&](size_t row0, size_t rows, size_t col0, size_t cols) {
           cpu::AddBias(qkv_.data() + row0 * 3 * h + col0, rows, cols, 3 * h,
                        layer.qkv_b.data() + col0);
         });
  Attention(batch);
  Linear(context_.data(), tokens, layer.out_w, scratch, EpilogueScope::kWholeRows,
         [&](size_t row0, size_t rows, size_t, size_t) {
           cpu::AddBiasResidualLayerNorm(scratch + row0 * h, layer.out_b.data(), hidden + row0 * h,
                                         layer.ln1_g.data(), layer.ln1_b.data(), eps, rows, h,
                                         hidden + row0 * h);
         });
  Linear(hidden, tokens, layer.ffn_in_w, ffn_.data(), EpilogueScope::kElementwise,
         [&](size_t row0, size_t rows, size_t col0, size_t cols) {
           cpu::AddBiasActivation(ffn_.data() + row0 * inter + col0, rows, cols, inter,
                                  layer.ffn_in_b.data() + col0, config_.activation);
         });
  Linear(ffn_.data(), tokens, layer.ffn_out_w, scratch, EpilogueScope::kWholeRows,
         [&](size_t row0, size_t rows, size_t, size_t) {
           cpu::AddBiasResidualLayerNorm(scratch + row0 * h, layer.ffn_out_b.data(),
                                         hidden + row0 * h, layer.ln2_g.data(), layer.ln2_b.data(),
                                         eps, rows, h, hidden + row0 * h);
         });
}

void CpuBackend::Attention(const Batch& batch) {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto heads = static_cast<size_t>(config_.num_heads);
  const auto d = static_cast<size_t>(config_.head_dim());
  const size_t max_len = std::min(limits_.max_sequence_length, limits_.max_batch_tokens);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const auto ld_qkv = static_cast<int>(3 * h);
  // One task per (sequence, head), longest-first would balance better, but dynamic claiming of
  // single tasks already keeps both threads busy to within one task. Below kInlineAttentionMacs
  // the whole attention is shorter than waking a worker, so it runs on the caller alone.
  const size_t tasks = batch.num_sequences() * heads;
  size_t macs = 0;
  for (size_t s = 0; s + 1 < batch.cu_seqlens.size(); ++s) {
    const auto len = static_cast<size_t>(batch.cu_seqlens[s + 1] - batch.cu_seqlens[s]);
    macs += 2 * len * len * d * heads;
  }
  pool_.ParallelForWithThread(
      tasks, macs < kInlineAttentionMacs ? tasks : 1, [&](int thread, size_t begin, size_t end) {
        float* scores = scores_.data() + static_cast<size_t>(thread) * max_len * max_len;
        for (size_t task = begin; task < end; ++task) {
          const size_t s = task / heads;
          const size_t head = task % heads;
          const auto t0 = static_cast<size_t>(batch.cu_seqlens[s]);
          const auto len = static_cast<size_t>(batch.cu_seqlens[s + 1]) - t0;
          const int n = static_cast<int>(len);
          const float* q = qkv_.data() + t0 * 3 * h + head * d;
          const float* k = q + h;
          const float* v = q + 2 * h;
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, static_cast<int>(d), scale, q,
                      ld_qkv, k, ld_qkv, 0.0f, scores, n);
          for (size_t r = 0; r < len; ++r) cpu::SoftmaxRow(scores + r * len, len);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, static_cast<int>(d), n, 1.0f,
                      scores, n, v, ld_qkv, 0.0f, context_.data() + t0 * h + head * d,
                      static_cast<int>(h));
        }
      });
}

void CpuBackend::Pool(const Batch& batch, float* out) {
  const auto h = static_cast<size_t>(config_.hidden_size);
  pool_.ParallelFor(batch.num_sequences(), 8, [&](size_t begin, size_t end) {
    for (size_t s = begin; s < end; ++s) {
      const auto t0 = static_cast<size_t>(batch.cu_seqlens[s]);
      const auto t1 = static_cast<size_t>(batch.cu_seqlens[s + 1]);
      const float* rows = hidden_.data();
      float* o = out + s * h;
      switch (pooling_) {
        case Pooling::kCls:
          std::copy_n(rows + t0 * h, h, o);
          break;
        case Pooling::kLastToken:
          std::copy_n(rows + (t1 - 1) * h, h, o);
          break;
        case Pooling::kMax:
          std::copy_n(rows + t0 * h, h, o);
          for (size_t t = t0 + 1; t < t1; ++t) {
            for (size_t c = 0; c < h; ++c) o[c] = std::max(o[c], rows[t * h + c]);
          }
          break;
        case Pooling::kMean:
        case Pooling::kMeanSqrtLen: {
          std::fill_n(o, h, 0.0f);
          for (size_t t = t0; t < t1; ++t) {
            for (size_t c = 0; c < h; ++c) o[c] += rows[t * h + c];
          }
          // Divided, not multiplied by a reciprocal, as sentence-transformers does.
          const auto len = static_cast<float>(t1 - t0);
          const float div = pooling_ == Pooling::kMean ? len : std::sqrt(len);
          for (size_t c = 0; c < h; ++c) o[c] /= div;
          break;
        }
      }
      if (batch.normalize[s] != 0) cpu::L2Normalize(o, h);
    }
  });
}

}  // namespace sluice
