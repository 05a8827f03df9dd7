// PackedMatrix and PackedGemm: the fp32 GEMM of the CPU backend's linear layers, y = x W^T with
// the weight W ([n, k], PyTorch's [out, in] layout) packed once into column panels, so no call
// repacks it.
//
// Numerics: every output element is one accumulator that starts at zero and takes one fused
// multiply-add per k, in increasing k, so a row's result is the same bits whatever other rows,
// row offset, column range or thread it is computed with.
#pragma once

#include <cstddef>

#include "backends/cpu/aligned_buffer.h"
#include "common/status.h"

namespace sluice::cpu {

class PackedMatrix {
 public:
  // Columns of y per panel; PackedGemm's column ranges start at multiples of it.
  static constexpr size_t kPanelWidth = 32;

  PackedMatrix() = default;

  // Packs `w` ([n, k], row-major, not retained). InvalidArgument when n or k is 0;
  // ResourceExhausted when the packed copy cannot be allocated.
  static StatusOr<PackedMatrix> Pack(const float* w, size_t n, size_t k);

  size_t n() const { return n_; }
  size_t k() const { return k_; }
  // Panel p: columns [p * kPanelWidth, (p + 1) * kPanelWidth) of W^T, k-major (kPanelWidth
  // floats per k, zero past n), 64-byte aligned.
  const float* panels() const { return data_.data(); }

 private:
  AlignedBuffer data_;
  size_t n_ = 0;
  size_t k_ = 0;
};

// The instruction sets PackedGemm has kernels for. Both compute every output with the same
// chain of FMAs, but a process uses one of them for everything (see UsePackedGemm).
enum class PackedGemmIsa { kAvx512, kAvx2 };

// True when this CPU (and OS) can run the kernels for `isa`: AVX-512F, or AVX2; both with FMA.
bool PackedGemmIsaSupported(PackedGemmIsa isa);

// The GEMM of this process's linear layers: PackedGemm (true) with the widest supported kernels
// unless the environment says otherwise (SLUICE_CPU_GEMM=openblas, or =avx2 to take the AVX2
// kernels on an AVX-512 CPU); OpenBLAS when the CPU has neither. Decided, and logged, once per
// process: one path for every layer and batch, so a row's result never depends on its batch.
bool UsePackedGemm();
// The kernels PackedGemm runs with in this process. REQUIRES: UsePackedGemm().
PackedGemmIsa ActivePackedGemmIsa();

// y[r * ldy + j] = sum over i of x[r * ldx + i] * W[col0 + j, i], for r < rows and j < cols:
// the columns [col0, col0 + cols) of x W^T. `y` points at the output of (row 0, column col0).
// REQUIRES: UsePackedGemm() (first form); col0 % kPanelWidth == 0; col0 + cols <= w.n();
// ldx >= w.k(); ldy >= cols. Thread-safe (w is only read). Runs ActivePackedGemmIsa()'s
// kernels, or `isa`'s (REQUIRES: PackedGemmIsaSupported(isa)) in the second form.
void PackedGemm(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy);
void PackedGemm(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy, PackedGemmIsa isa);

}  // namespace sluice::cpu
