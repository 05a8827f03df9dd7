// FusedAttention: softmax(Q K^T * scale) V for every head of every sequence of a flat,
// padding-free batch, reading Q, K and V straight from the fused QKV projection and never
// materialising the score matrix (online softmax over K/V tiles held in shared memory, tensor
// cores for both products). Sequences attend only within themselves; no mask is needed.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

struct AttentionArgs {
  CudaDType dtype = CudaDType::kF16;
  int num_sequences = 0;
  int max_seqlen = 0;  // longest sequence; sizes the grid
  int num_heads = 0;
  int head_dim = 0;
  // [tokens, 3 * num_heads * head_dim]: per token all Q heads, then all K heads, then all V.
  const void* qkv = nullptr;
  const int32_t* cu_seqlens = nullptr;  // device, [num_sequences + 1]
  float scale = 0.0f;                   // usually 1 / sqrt(head_dim)
  void* out = nullptr;                  // [tokens, num_heads * head_dim]
};

// True for the head sizes the kernel is compiled for (32, 64, 128).
bool FusedAttentionSupportsHeadDim(int head_dim);

// InvalidArgument for an unsupported head size or non-positive sizes.
// REQUIRES: cu_seqlens is non-decreasing and no sequence is longer than max_seqlen.
Status FusedAttention(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
