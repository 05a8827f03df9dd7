// FusedAttention: softmax(Q K^T * scale) V for every head of every sequence of a flat,
// padding-free batch, reading Q, K and V straight from the fused QKV projection and never
// materialising the score matrix (online softmax over K/V tiles, tensor-core products with the
// accumulators in registers). Sequences attend only within themselves; no mask is needed.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

// Query rows handled by one block of the attention kernel (one work tile).
inline constexpr int kAttentionQueryTile = 128;
// Half tiles: a work-list entry whose first row carries this bit covers 64 query rows (head
// sizes up to 64 only). Small batches use them to spread the work over twice the blocks.
inline constexpr int32_t kAttentionHalfTileBit = int32_t{1} << 30;
// Packed tiles: a work-list entry whose first row carries this bit covers that many (in the low
// bits) whole consecutive sequences, each row attending only to its own sequence's keys. Each
// sequence takes its length rounded up to kAttentionPackAlign rows of the tile, together at most
// kAttentionPackTokens (so at most four sequences), which keeps its results the same bits as
// when it runs alone. Short sequences then share a block instead of each leaving most of one
// idle. Only the portable kernels read them (AttentionArgs::hopper false, or short_tiles).
inline constexpr int32_t kAttentionPackedBit = int32_t{1} << 29;
inline constexpr int kAttentionPackTokens = 64;
inline constexpr int kAttentionPackAlign = 16;

// How a work list covers the sequences: 128-row tiles, 64-row (half) tiles, or packed tiles for
// sequences of up to kAttentionPackTokens and half tiles for longer ones (head sizes up to 64).
enum class AttentionTiling { kFull, kHalf, kPacked };

struct AttentionArgs {
  CudaDType dtype = CudaDType::kF16;
  int num_sequences = 0;
  int max_seqlen = 0;  // longest sequence; sizes the grid when `tiles` is null
  int num_heads = 0;
  int head_dim = 0;
  // [tokens, 3 * num_heads * head_dim]: per token all Q heads, then all K heads, then all V.
  const void* qkv = nullptr;
  // Optional [3 * num_heads * head_dim]: the fused projection's bias (Q, then K, then V) when
  // the GEMM left it out; the kernel accounts for it exactly.
  const void* qkv_bias = nullptr;
  const int32_t* cu_seqlens = nullptr;  // device, [num_sequences + 1]
  float scale = 0.0f;                   // usually 1 / sqrt(head_dim)
  void* out = nullptr;                  // [tokens, num_heads * head_dim]
  // Optional work list (device): pairs (sequence, first query row, or'ed with
  // kAttentionHalfTileBit for a 64-row tile; or kAttentionPackedBit | number of sequences),
  // *num_tiles of them valid, at most max_tiles. With it the grid has max_tiles x num_heads
  // blocks (the short-tile kernel: at most one wave) whatever the batch, so one launch can be
  // replayed from a CUDA graph for batches of different shapes.
  const int32_t* tiles = nullptr;
  const int32_t* num_tiles = nullptr;
  int max_tiles = 0;
  // Every listed tile covers at most 64 rows (AttentionTiling::kHalf or kPacked; head sizes up to
  // 64): a portable kernel built for such tiles runs, twice the blocks per multiprocessor and
  // one wave of them taking the tiles in turn. Without it, packed tiles run in the general
  // portable kernel (any head size).
  bool short_tiles = false;
  // Rows of `qkv` (at least the batch's tokens); 0: not known (the Hopper kernel needs it).
  int total_rows = 0;
  // On a compute capability 9.0 GPU, head size 64 (or 32, an even number of heads) with
  // total_rows known and not short_tiles: the warp-specialized Hopper kernel
  // (attention_sm90.cuh). False: the portable mma.sync kernel everywhere.
  bool hopper = true;
};

// Appends the work list of a batch (see AttentionArgs::tiles) to `tiles`; returns its length.
// kHalf lists at most twice the tiles of kFull, kPacked no more than kHalf.
int AppendAttentionTiles(const int32_t* cu_seqlens, int num_sequences, int32_t* tiles,
                         AttentionTiling tiling = AttentionTiling::kFull);
// The number of tiles AppendAttentionTiles would list.
int CountAttentionTiles(const int32_t* cu_seqlens, int num_sequences, AttentionTiling tiling);
// Most tiles a batch of `tokens` tokens in at most `sequences` sequences can need with kFull
// tiling, or with kHalf or kPacked when `short_tiles`.
int MaxAttentionTiles(int tokens, int sequences, bool short_tiles = false);

// Whether FusedAttention(args) runs the Hopper kernel on the current device.
bool FusedAttentionUsesHopperKernel(const AttentionArgs& args);

// True for the head sizes the kernel is compiled for (32, 64, 128).
bool FusedAttentionSupportsHeadDim(int head_dim);

// InvalidArgument for an unsupported head size or non-positive sizes (or a negative total_rows).
// REQUIRES: cu_seqlens is non-decreasing and no sequence is longer than max_seqlen.
Status FusedAttention(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
