#include "backends/cpu/packed_gemm.h"

#include <fmt/format.h>

#include <cstdlib>
#include <string_view>

#include "backends/cpu/packed_gemm_avx2.h"
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

bool PackedGemmIsaSupported(PackedGemmIsa isa) {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("fma") != 0;
  }();
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
  }();
  return isa == PackedGemmIsa::kAvx512 ? avx512 : avx2;
}

namespace {

// The process's choice of GEMM for the linear layers.
struct GemmChoice {
  bool packed = false;
  PackedGemmIsa isa = PackedGemmIsa::kAvx512;
};

const GemmChoice& Choice() {
  static const GemmChoice choice = [] {
    const char* env = std::getenv("SLUICE_CPU_GEMM");
    const std::string_view want = env != nullptr ? env : "";
    GemmChoice c;
    if (want == "openblas") {
      SLUICE_LOG_INFO("cpu linear layers: OpenBLAS (SLUICE_CPU_GEMM=openblas)");
      return c;
    }
    if (!want.empty() && want != "avx2") {
      SLUICE_LOG_WARN("SLUICE_CPU_GEMM={} is not openblas or avx2; ignored", want);
    }
    if (want != "avx2" && PackedGemmIsaSupported(PackedGemmIsa::kAvx512)) {
      c.packed = true;
      c.isa = PackedGemmIsa::kAvx512;
    } else if (PackedGemmIsaSupported(PackedGemmIsa::kAvx2)) {
      c.packed = true;
      c.isa = PackedGemmIsa::kAvx2;
    }
    SLUICE_LOG_INFO("cpu linear layers: {}",
                    !c.packed ? "OpenBLAS (this CPU has neither AVX-512F nor AVX2 with FMA)"
                    : c.isa == PackedGemmIsa::kAvx512 ? "packed AVX-512 GEMM"
                                                      : "packed AVX2 GEMM");
    return c;
  }();
  return choice;
}

}  // namespace

bool UsePackedGemm() { return Choice().packed; }

PackedGemmIsa ActivePackedGemmIsa() {
  SLUICE_CHECK(Choice().packed);
  return Choice().isa;
}

void PackedGemm(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy) {
  PackedGemm(x, ldx, rows, w, col0, cols, y, ldy, ActivePackedGemmIsa());
}

void PackedGemm(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy, PackedGemmIsa isa) {
  SLUICE_CHECK(PackedGemmIsaSupported(isa));
  SLUICE_CHECK(col0 % PackedMatrix::kPanelWidth == 0 && col0 + cols <= w.n());
  if (rows == 0 || cols == 0) return;
  if (isa == PackedGemmIsa::kAvx512) {
    PackedGemmAvx512(x, ldx, rows, w.panels(), w.k(), col0, cols, y, ldy);
  } else {
    PackedGemmAvx2(x, ldx, rows, w.panels(), w.k(), col0, cols, y, ldy);
  }
}

}  // namespace sluice::cpu
