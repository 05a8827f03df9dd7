// BlasRuntime: process-wide set-up of OpenBLAS for the CPU backend.
//
// OpenBLAS picks its kernels from the CPU model at load time, and the Debian build (0.3.21) does
// not know recent Xeons: it falls back to its SSE3 "Prescott" kernels, 5-10x slower than the
// AVX-512 ones (docs/cpu-backend.md has the numbers). When the user has not chosen a core with
// OPENBLAS_CORETYPE, the backend re-runs OpenBLAS's core selection with the best core the CPU's
// feature flags allow. It also makes BLAS calls single-threaded: the backend splits GEMMs over its
// own threads, so BLAS threads would only oversubscribe the cores.
#pragma once

#include <string>

namespace sluice::cpu {

// Configures OpenBLAS once per process (later calls return at once). REQUIRES: no BLAS call is
// running in the process while the first call runs.
void ConfigureBlasOnce();

// "OpenBLAS 0.3.21 ... SkylakeX": the library's build configuration and the kernels in use.
std::string BlasDescription();

}  // namespace sluice::cpu
