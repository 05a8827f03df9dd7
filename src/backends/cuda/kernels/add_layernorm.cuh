// AddLayerNorm: out = LN(x + bias + residual), the residual connection of each sub-layer,
// with the bias the GEMM epilogue did not add folded in (either may be absent). In place when out
// == residual. One warp per row held in registers (rows up to 2048 wide, 16-byte aligned), else one
// block per row; float32 arithmetic, fp16/bf16 storage.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

struct AddLayerNormArgs {
  CudaDType dtype = CudaDType::kF16;
  int rows = 0;
  int hidden = 0;
  const void* x = nullptr;         // [rows, hidden]
  const void* bias = nullptr;      // [hidden] or nullptr
  const void* residual = nullptr;  // [rows, hidden], or nullptr when x already holds it
  const void* gamma = nullptr;
  const void* beta = nullptr;
  float eps = 1e-12f;
  void* out = nullptr;  // [rows, hidden]; may alias residual
  // Optional [rows, hidden] E4M3 copy of out (unscaled, saturating): the next fp8 GEMM's input.
  uint8_t* out_fp8 = nullptr;
};

Status AddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
