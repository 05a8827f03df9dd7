// PoolAndNormalize: one float32 vector per sequence from the final token states (cls, mean,
// max, mean_sqrt_len or last token), L2-normalised where the sequence's flag asks for it.
// One block per sequence.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"
#include "engine/pooling.h"

namespace sluice::cuda {

struct PoolingArgs {
  CudaDType dtype = CudaDType::kF16;
  Pooling pooling = Pooling::kMean;
  int num_sequences = 0;
  int hidden = 0;
  const void* states = nullptr;         // [tokens, hidden]
  const int32_t* cu_seqlens = nullptr;  // device, [num_sequences + 1]; empty ones pool to 0
  const uint8_t* normalize = nullptr;   // device, [num_sequences]; nullptr: none normalised
  float* out = nullptr;                 // [num_sequences, hidden]
};

Status PoolAndNormalize(const PoolingArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
