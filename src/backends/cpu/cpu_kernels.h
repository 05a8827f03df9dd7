// Row kernels of the CPU encoder: the elementwise and reduction work around the BLAS GEMMs,
// vectorised for AVX2/FMA. Each works on a range of rows so callers can split rows over threads.
#pragma once

#include <cstddef>

#include "engine/encoder_config.h"

namespace sluice::cpu {

// x[r, :] += bias for `rows` rows of `cols` contiguous floats (stride `ld`).
void AddBias(float* x, size_t rows, size_t cols, size_t ld, const float* bias);

// x[r, :] += bias, then x = act(x), for `rows` rows of `cols` contiguous floats (stride `ld`).
void AddBiasActivation(float* x, size_t rows, size_t cols, size_t ld, const float* bias,
                       Activation act);

// out[r, :] = LayerNorm(x[r, :] + bias + residual[r, :]) * gamma + beta over rows of `cols`
// floats (all contiguous with stride `cols`). `bias` and `residual` may be null; `out` may alias
// `x` or `residual`. Mean and biased variance as torch.nn.LayerNorm.
void AddBiasResidualLayerNorm(const float* x, const float* bias, const float* residual,
                              const float* gamma, const float* beta, float eps, size_t rows,
                              size_t cols, float* out);

// In-place softmax of one row, with the maximum subtracted first.
void SoftmaxRow(float* x, size_t n);

// Scales x to unit L2 norm (a zero vector stays zero).
void L2Normalize(float* x, size_t n);

// y[i] = exp(x[i]) with a relative error below 2e-7 for x in [-87, 88]; exposed for tests.
void ExpVector(const float* x, size_t n, float* y);

// y[i] = act(x[i]); exposed for tests.
void ActivationVector(const float* x, size_t n, Activation act, float* y);

}  // namespace sluice::cpu
