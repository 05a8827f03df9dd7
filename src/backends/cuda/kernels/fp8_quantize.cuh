// fp8 (E4M3) copies for the fp8 GEMM mode: weights get one float32 scale per tensor (its
// absolute maximum maps to E4M3's largest finite value, 448); activations are stored unscaled,
// since E4M3's exponent covers the range of LayerNorm and GELU outputs. Conversions round to
// nearest and saturate at +-448.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

// Largest finite E4M3 value.
inline constexpr float kE4m3Max = 448.0f;

// Quantizes a weight tensor: writes amax(|x|) / 448 to `*scale` (1 for an all-zero tensor) and
// y = x / scale in E4M3. `scale` is device memory; the matmul multiplies by it back.
Status QuantizeWeightE4m3(CudaDType dtype, const void* x, size_t n, float* scale, uint8_t* y,
                          cudaStream_t stream);

// y = x in E4M3 (unscaled, saturating): an activation's fp8 copy.
Status ConvertToE4m3(CudaDType dtype, const void* x, size_t n, uint8_t* y, cudaStream_t stream);

}  // namespace sluice::cuda
