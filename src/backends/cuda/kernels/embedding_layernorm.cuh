// EmbeddingLayerNorm: out = LN(word[id] + position[pos + offset] + token_type[type]), the
// first op of the encoder, in one pass. One warp per token for widths of a multiple of 8 up to
// 2048 (one block per token otherwise); float32 arithmetic, fp16/bf16 storage.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

struct EmbeddingLayerNormArgs {
  CudaDType dtype = CudaDType::kF16;
  int tokens = 0;
  int hidden = 0;
  const int32_t* input_ids = nullptr;       // device, [tokens], each < vocab
  const int32_t* token_type_ids = nullptr;  // device, [tokens]; unused without token_type
  const int32_t* position_ids = nullptr;    // device, [tokens]
  int position_offset = 0;
  const void* word = nullptr;        // [vocab, hidden]
  const void* position = nullptr;    // [max_positions, hidden]
  const void* token_type = nullptr;  // [type_vocab, hidden] or nullptr
  const void* gamma = nullptr;       // [hidden]
  const void* beta = nullptr;        // [hidden]
  float eps = 1e-12f;
  void* out = nullptr;  // [tokens, hidden]
};

// REQUIRES: ids were checked against the table sizes by the caller.
Status EmbeddingLayerNorm(const EmbeddingLayerNormArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
