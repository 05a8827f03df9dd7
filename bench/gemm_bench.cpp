// gemm_bench: the CPU backend's packed GEMM (cpu::PackedGemm) against OpenBLAS's sgemm at the
// linear-layer shapes of all-MiniLM-L6-v2, y[M, N] = x[M, K] W[N, K]^T, on 1 and 2 threads split
// the way CpuBackend splits them (row blocks from 32 rows, column blocks below).
//
//   gemm_bench [--ms MS] [--reps R] [--hot] [--m M] [--threads T]
//
// By default each call reads the next of several weight copies (48 MB in all, the size of the
// model's weights), so weights come from the last-level cache as they do in a forward pass;
// --hot reuses one copy. Prints the median GFLOP/s of R alternating repetitions of >= MS ms.
// SLUICE_CPU_GEMM=avx2 measures the AVX2 kernels on an AVX-512 CPU (with
// OPENBLAS_CORETYPE=Haswell for OpenBLAS's AVX2 kernels alongside).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/aligned_buffer.h"
#include "backends/cpu/blas_runtime.h"
#include "backends/cpu/packed_gemm.h"
#include "common/thread_pool.h"

namespace sluice {
namespace {

using cpu::AlignedBuffer;
using cpu::PackedMatrix;

struct Shape {
  size_t m, n, k;
};

size_t RoundUp(size_t x, size_t to) { return (x + to - 1) / to * to; }

// Calls gemm(row0, rows, col0, cols) over the pool as CpuBackend::Linear does: row blocks
// rounded to `row_tile`, column blocks to `col_tile`.
template <typename Gemm>
void Split(ThreadPool& pool, size_t m, size_t n, size_t row_tile, size_t col_tile,
           const Gemm& gemm) {
  const auto threads = static_cast<size_t>(pool.num_threads());
  if (threads == 1) {
    gemm(0, m, 0, n);
  } else if (m >= 32) {
    const size_t blocks = m >= 256 ? 2 * threads : threads;
    pool.ParallelFor(m, RoundUp((m + blocks - 1) / blocks, row_tile),
                     [&](size_t begin, size_t end) { gemm(begin, end - begin, 0, n); });
  } else {
    pool.ParallelFor(n, RoundUp((n + threads - 1) / threads, col_tile),
                     [&](size_t begin, size_t end) { gemm(0, m, begin, end - begin); });
  }
}

// GFLOP/s of `call(i)` (i = call number) repeated for at least `ms` milliseconds.
template <typename Call>
double Rate(const Shape& s, double ms, const Call& call) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  size_t calls = 0;
  double elapsed = 0;
  do {
    call(calls++);
    elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  } while (elapsed < ms);
  return 2.0 * static_cast<double>(s.m * s.n * s.k) * static_cast<double>(calls) / elapsed / 1e6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  double ms = 150;
  int reps = 5;
  bool hot = false;
  std::vector<size_t> ms_rows = {16, 128, 512, 4096, 16384};
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
      ms = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--hot") == 0) {
      hot = true;
    } else if (std::strcmp(argv[i], "--m") == 0 && i + 1 < argc) {
      ms_rows = {static_cast<size_t>(std::atol(argv[++i]))};
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      thread_counts = {std::atoi(argv[++i])};
    } else {
      std::fprintf(stderr,
                   "usage: gemm_bench [--ms MS] [--reps R] [--hot] [--m M] [--threads T]\n");
      return 2;
    }
  }
  if (!cpu::UsePackedGemm()) {
    std::fprintf(stderr,
                 "PackedGemm is off in this process (no AVX2/AVX-512, or SLUICE_CPU_GEMM)\n");
    return 1;
  }
  cpu::ConfigureBlasOnce();
  std::printf("%s; weights %s\n", cpu::BlasDescription().c_str(),
              hot ? "hot (one copy)" : "rotating over 48 MB of copies");
  std::printf("%6s %5s %5s %3s | %9s %9s | %6s\n", "M", "N", "K", "thr", "OpenBLAS", "packed",
              "ratio");

  const std::vector<std::pair<size_t, size_t>> nk = {
      {1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const auto& [n, k] : nk) {
    const size_t copies = hot ? 1 : std::max<size_t>(1, (48u << 20) / (n * k * sizeof(float)));
    std::vector<AlignedBuffer> raw;
    std::vector<PackedMatrix> packed;
    for (size_t c = 0; c < copies; ++c) {
      raw.push_back(AlignedBuffer::Allocate(n * k));
      for (size_t i = 0; i < n * k; ++i) raw.back().data()[i] = dist(rng);
      auto p = PackedMatrix::Pack(raw.back().data(), n, k);
      if (!p.ok()) return 1;
      packed.push_back(std::move(p).value());
    }
    for (size_t m : ms_rows) {
      const Shape s{m, n, k};
      AlignedBuffer x = AlignedBuffer::Allocate(m * k);
      AlignedBuffer y_blas = AlignedBuffer::Allocate(m * n);
      AlignedBuffer y_packed = AlignedBuffer::Allocate(m * n);
      for (size_t i = 0; i < m * k; ++i) x.data()[i] = dist(rng);
      for (int threads : thread_counts) {
        ThreadPool pool(threads);
        const auto blas = [&](size_t call) {
          const float* w = raw[call % copies].data();
          Split(pool, m, n, 16, 16, [&](size_t row0, size_t rows, size_t col0, size_t cols) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                        static_cast<int>(cols), static_cast<int>(k), 1.0f, x.data() + row0 * k,
                        static_cast<int>(k), w + col0 * k, static_cast<int>(k), 0.0f,
                        y_blas.data() + row0 * n + col0, static_cast<int>(n));
          });
        };
        const auto ours = [&](size_t call) {
          const PackedMatrix& w = packed[call % copies];
          Split(pool, m, n, 1, PackedMatrix::kPanelWidth,
                [&](size_t row0, size_t rows, size_t col0, size_t cols) {
                  cpu::PackedGemm(x.data() + row0 * k, k, rows, w, col0, cols,
                                  y_packed.data() + row0 * n + col0, n);
                });
        };
        std::vector<double> rate_blas, rate_ours;
        for (int r = 0; r < reps; ++r) {
          rate_blas.push_back(Rate(s, ms, blas));
          rate_ours.push_back(Rate(s, ms, ours));
        }
        // Same weights copy for both, then compare: a sanity check, not a test.
        blas(0);
        ours(0);
        double worst = 0;
        for (size_t i = 0; i < m * n; ++i) {
          worst =
              std::max(worst, static_cast<double>(std::abs(y_blas.data()[i] - y_packed.data()[i])));
        }
        const double b = Median(rate_blas), o = Median(rate_ours);
        std::printf("%6zu %5zu %5zu %3d | %9.1f %9.1f | %6.2f%s\n", m, n, k, threads, b, o, o / b,
                    worst > 1e-3 ? "  MISMATCH" : "");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) { return sluice::Main(argc, argv); }
