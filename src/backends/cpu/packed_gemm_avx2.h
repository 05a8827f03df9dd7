// The AVX2 kernels behind PackedGemm (packed_gemm.h), for CPUs without AVX-512, in their own
// translation unit (the only one compiled for AVX2 + FMA). Same panel layout as the AVX-512
// kernels, so one PackedMatrix serves both.
#pragma once

#include <cstddef>

namespace sluice::cpu {

// As PackedGemmAvx512 (packed_gemm_avx512.h). REQUIRES: an AVX2 + FMA CPU.
void PackedGemmAvx2(const float* x, size_t ldx, size_t rows, const float* panels, size_t k,
                    size_t col0, size_t cols, float* y, size_t ldy);

}  // namespace sluice::cpu
