// The AVX-512 kernels behind PackedGemm (packed_gemm.h), in their own translation unit: only it
// is compiled for AVX-512, so the rest of the library runs on any x86-64 the build targets.
// Callers go through packed_gemm.h, which checks the CPU first.
#pragma once

#include <cstddef>

namespace sluice::cpu {

// Columns per packed panel: two zmm registers of accumulators per row of a tile.
inline constexpr size_t kAvx512PanelWidth = 32;

// y[r * ldy + j] = sum over i in [0, k) of x[r * ldx + i] * W[col0 + j, i] for r < rows and
// j < cols, where `panels` holds W packed as PackedMatrix does. REQUIRES: an AVX-512F CPU,
// col0 % kAvx512PanelWidth == 0, and col0 + cols within the packed matrix.
void PackedGemmAvx512(const float* x, size_t ldx, size_t rows, const float* panels, size_t k,
                      size_t col0, size_t cols, float* y, size_t ldy);

}  // namespace sluice::cpu
