#include "backends/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "backends/cuda/kernels/attention.cuh"

// The input side of CudaBackend: checking a batch, choosing the shape it runs with (graph
// bucket or eager padding, which attention kernel and work list), and packing it into the
// pinned upload buffer. The rest of the class is in cuda_backend.cpp.

namespace sluice::cuda {
namespace {

// Eager batches are padded to a multiple of this, which bounds the GEMM shapes to plan.
constexpr int kEagerTokenStep = 256;
// The Hopper attention kernel computes whole 128-row x 128-key tiles, where the portable one
// runs 64-row tiles for sequences of up to 64 tokens: it is used when a forward pass's sequence
// slots hold more than 64 tokens on average (H100, attention ms, portable against Hopper:
// BERT-base 256 x 64 0.82 against 1.00, 256 x 80 1.29-1.32 against 1.03-1.05; MiniLM-L6 256 x 64
// 0.24 against 0.33, 256 x 80 0.37 against 0.35).
constexpr int kHopperAttentionMinMeanTokens = 65;

size_t Align16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// Token types a model takes: those of its table, or type 0 alone when it has none.
int TypeVocab(const EncoderConfig& config) { return std::max(config.type_vocab_size, 1); }

// Whether a token's id, token type and position index the model's tables; each range is one
// interval, so a batch's smallest and largest value stand for all of them.
bool IdInTable(const EncoderConfig& config, int32_t id) {
  return id >= 0 && id < config.vocab_size;
}
bool TypeInTable(const EncoderConfig& config, int32_t type) {
  return type >= 0 && type < TypeVocab(config);
}
bool PositionInTable(const EncoderConfig& config, int32_t position) {
  return position >= 0 &&
         int64_t{position} + config.position_offset < config.max_position_embeddings;
}

// Copies `values` to `dst` and returns the smallest and largest of them ({0, 0} for none), in
// one loop the compiler vectorizes.
std::pair<int32_t, int32_t> CopyMinMax(const std::vector<int32_t>& values, int32_t* dst) {
  if (values.empty()) return {0, 0};
  int32_t lo = values[0];
  int32_t hi = values[0];
  const size_t n = values.size();
  const int32_t* src = values.data();
  for (size_t i = 0; i < n; ++i) {
    const int32_t v = src[i];
    dst[i] = v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return {lo, hi};
}

}  // namespace

CudaBackend::InputLayout::InputLayout(size_t tokens, size_t sequences, size_t max_tiles) {
  const size_t ids = Align16(tokens * sizeof(int32_t));
  types = ids;
  positions = types + ids;
  cu_seqlens = positions + ids;
  tiles = cu_seqlens + Align16((sequences + 1) * sizeof(int32_t));
  num_tiles = tiles + Align16(2 * max_tiles * sizeof(int32_t));
  normalize = num_tiles + 16;
  bytes = normalize + sequences;
}

Status CudaBackend::CheckBatch(const Batch& batch) const {
  const size_t tokens = batch.num_tokens();
  const size_t sequences = batch.num_sequences();
  SLUICE_RETURN_IF_ERROR(batch.CheckLayout());
  if (tokens > limits_.max_batch_tokens || sequences > limits_.max_batch_requests) {
    return InvalidArgument(
        fmt::format("batch of {} tokens in {} sequences exceeds the limits ({} tokens, {} "
                    "sequences) given to Warmup()",
                    tokens, sequences, limits_.max_batch_tokens, limits_.max_batch_requests));
  }
  for (size_t i = 0; i < sequences; ++i) {
    const int64_t length = int64_t{batch.cu_seqlens[i + 1]} - batch.cu_seqlens[i];
    if (static_cast<size_t>(length) > limits_.max_sequence_length) {
      return InvalidArgument(fmt::format("sequence {} has {} tokens (must be 1..{})", i, length,
                                         limits_.max_sequence_length));
    }
  }
  return Status::Ok();
}

Status CudaBackend::CheckTokens(const Batch& batch) const {
  for (size_t t = 0; t < batch.num_tokens(); ++t) {
    const int32_t id = batch.input_ids[t];
    const int32_t type = batch.token_type_ids[t];
    if (!IdInTable(config_, id)) {
      return InvalidArgument(
          fmt::format("token {}: id {} outside the vocabulary of {}", t, id, config_.vocab_size));
    }
    if (!TypeInTable(config_, type)) {
      return InvalidArgument(
          fmt::format("token {}: token type {} outside 0..{}", t, type, TypeVocab(config_) - 1));
    }
    if (!PositionInTable(config_, batch.position_ids[t])) {
      return InvalidArgument(fmt::format("token {}: position {} outside the model's {}", t,
                                         batch.position_ids[t], config_.max_position_embeddings));
    }
  }
  return Status::Ok();
}

CudaBackend::ForwardShape CudaBackend::ShapeFor(const Batch& batch,
                                                const CudaGraphExec** graph) const {
  const int tokens = static_cast<int>(batch.num_tokens());
  const int sequences = static_cast<int>(batch.num_sequences());
  for (const Bucket& b : buckets_) {
    if (b.shape.tokens >= tokens && b.shape.sequences >= sequences && b.graph.valid()) {
      *graph = &b.graph;
      return b.shape;
    }
  }
  *graph = nullptr;
  const int padded = std::min((tokens + kEagerTokenStep - 1) / kEagerTokenStep * kEagerTokenStep,
                              static_cast<int>(limits_.max_batch_tokens));
  // Room for the tilings Pack may choose (a packed list is never longer than a half one).
  const AttentionTiling widest =
      ShortAttentionPass(padded, sequences) ? AttentionTiling::kHalf : AttentionTiling::kFull;
  return MakeShape(padded, sequences,
                   CountAttentionTiles(batch.cu_seqlens.data(), sequences, widest));
}

bool CudaBackend::HopperAttentionPass(int tokens, int sequences) const {
  return options_.hopper_attention && tokens >= kHopperAttentionMinMeanTokens * sequences;
}

bool CudaBackend::ShortAttentionPass(int tokens, int sequences) const {
  return config_.head_dim() <= 64 && !HopperAttentionPass(tokens, sequences);
}

bool CudaBackend::ShortAttentionKernel(const ForwardShape& shape) const {
  return ShortAttentionPass(shape.tokens, shape.sequences) &&
         shape.tokens / (kAttentionQueryTile / 2) * config_.num_heads >= sm_count_;
}

Status CudaBackend::Pack(const Batch& batch, const ForwardShape& shape, std::byte* host) const {
  const InputLayout& layout = shape.layout;
  const size_t tokens = batch.num_tokens();
  const size_t sequences = batch.num_sequences();
  const size_t pad_tokens = static_cast<size_t>(shape.tokens) - tokens;
  const int32_t pad_id = config_.pad_token_id >= 0 && config_.pad_token_id < config_.vocab_size
                             ? config_.pad_token_id
                             : 0;
  auto* ids = reinterpret_cast<int32_t*>(host);
  auto* types = reinterpret_cast<int32_t*>(host + layout.types);
  auto* positions = reinterpret_cast<int32_t*>(host + layout.positions);
  auto* cu = reinterpret_cast<int32_t*>(host + layout.cu_seqlens);
  auto* tiles = reinterpret_cast<int32_t*>(host + layout.tiles);
  auto* num_tiles = reinterpret_cast<int32_t*>(host + layout.num_tiles);
  auto* normalize = reinterpret_cast<uint8_t*>(host + layout.normalize);
  // The token values' ranges come with the copies (one pass over each array); the token to name
  // is looked for only when one is off.
  const auto [id_lo, id_hi] = CopyMinMax(batch.input_ids, ids);
  const auto [type_lo, type_hi] = CopyMinMax(batch.token_type_ids, types);
  const auto [position_lo, position_hi] = CopyMinMax(batch.position_ids, positions);
  if (!IdInTable(config_, id_lo) || !IdInTable(config_, id_hi) || !TypeInTable(config_, type_lo) ||
      !TypeInTable(config_, type_hi) || !PositionInTable(config_, position_lo) ||
      !PositionInTable(config_, position_hi)) {
    SLUICE_RETURN_IF_ERROR(CheckTokens(batch));
  }
  std::fill_n(ids + tokens, pad_tokens, pad_id);
  std::fill_n(types + tokens, pad_tokens, 0);
  std::fill_n(positions + tokens, pad_tokens, 0);
  // Padding tokens belong to no sequence; padding sequence slots are empty.
  std::memcpy(cu, batch.cu_seqlens.data(), (sequences + 1) * sizeof(int32_t));
  std::fill_n(cu + sequences + 1, static_cast<size_t>(shape.sequences) - sequences,
              static_cast<int32_t>(tokens));
  // Half (64-row) attention tiles when full ones would not fill the GPU once: twice the blocks,
  // each done sooner. The kernel covers a half tile with one m-tile per warp (head sizes <= 64).
  // Otherwise, in passes of short sequences, packed tiles (the shape has room for either).
  const int n = static_cast<int>(sequences);
  const int32_t* cu_in = batch.cu_seqlens.data();
  const bool short_pass = ShortAttentionPass(shape.tokens, shape.sequences);
  const bool half =
      config_.head_dim() <= 64 &&
      CountAttentionTiles(cu_in, n, AttentionTiling::kFull) * config_.num_heads < sm_count_ &&
      (short_pass || CountAttentionTiles(cu_in, n, AttentionTiling::kHalf) <= shape.max_tiles);
  const AttentionTiling tiling = half         ? AttentionTiling::kHalf
                                 : short_pass ? AttentionTiling::kPacked
                                              : AttentionTiling::kFull;
  *num_tiles = AppendAttentionTiles(cu_in, n, tiles, tiling);
  std::memcpy(normalize, batch.normalize.data(), sequences);
  std::fill_n(normalize + sequences, static_cast<size_t>(shape.sequences) - sequences, 0);
  return Status::Ok();
}

}  // namespace sluice::cuda
