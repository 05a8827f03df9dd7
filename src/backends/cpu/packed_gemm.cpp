#include "backends/cpu/packed_gemm.h"

#include <fmt/format.h>

#include <cstdlib>
#include <string_view>

#include "backends/cpu/packed_gemm_avx512.h"
#include "common/check.h"
#include "common/logging.h"

namespace sluice::cpu {

static_assert(PackedMatrix::kPanelWidth == kAvx512PanelWidth);

StatusOr<PackedMatrix> PackedMatrix::Pack(const float* w, size_t n, size_t k) {
  if (n == 0 || k == 0) {
    return InvalidArgument(fmt::format("cannot pack a [{}, {}] matrix", n, k));
  }
  const size_t num_panels = (n + kPanelWidth - 1) / kPanelWidth;
  PackedMatrix m;
  m.data_ = AlignedBuffer::Allocate(num_panels * kPanelWidth * k);
  if (m.data_.empty()) {
    return ResourceExhausted(fmt::format("cannot allocate a packed [{}, {}] matrix", n, k));
  }
  m.n_ = n;
  m.k_ = k;
  for (size_t p = 0; p < num_panels; ++p) {
    float* panel = m.data_.data() + p * kPanelWidth * k;
    for (size_t j = 0; j < kPanelWidth; ++j) {
      const size_t col = p * kPanelWidth + j;
      for (size_t i = 0; i < k; ++i) panel[i * kPanelWidth + j] = col < n ? w[col * k + i] : 0.0f;
    }
  }
  return m;
}

bool PackedGemmSupported() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("fma") != 0;
  }();
  return supported;
}

bool UsePackedGemm() {
  static const bool use = [] {
    const char* env = std::getenv("SLUICE_CPU_GEMM");
    const bool forced_blas = env != nullptr && std::string_view(env) == "openblas";
    const bool packed = PackedGemmSupported() && !forced_blas;
    SLUICE_LOG_INFO("cpu linear layers: {}", packed        ? "packed AVX-512 GEMM"
                                             : forced_blas ? "OpenBLAS (SLUICE_CPU_GEMM=openblas)"
                                                           : "OpenBLAS (this CPU has no AVX-512F)");
    return packed;
  }();
  return use;
}

void PackedGemm(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy) {
  SLUICE_CHECK(PackedGemmSupported());
  SLUICE_CHECK(col0 % PackedMatrix::kPanelWidth == 0 && col0 + cols <= w.n());
  if (rows == 0 || cols == 0) return;
  PackedGemmAvx512(x, ldx, rows, w.panels(), w.k(), col0, cols, y, ldy);
}

}  // namespace sluice::cpu
