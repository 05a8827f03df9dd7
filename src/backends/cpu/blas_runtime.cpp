#include "backends/cpu/blas_runtime.h"

#include <cblas.h>

#include <cstdlib>
#include <mutex>
#include <string_view>

#include "common/logging.h"

// Core (re)selection of a DYNAMIC_ARCH OpenBLAS. Weak: absent from single-target builds, where
// the core was fixed at build time and there is nothing to choose.
extern "C" {
__attribute__((weak)) void gotoblas_dynamic_init(void);
__attribute__((weak)) void gotoblas_dynamic_quit(void);
}

namespace sluice::cpu {
namespace {

// Cores OpenBLAS falls back to when it does not recognise the CPU; all predate AVX2.
bool IsFallbackCore(std::string_view core) {
  for (std::string_view old :
       {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano", "Banias", "Katmai",
        "Coppermine", "Northwood", "Athlon", "Opteron", "Opteron(SSE3)", "Barcelona", "Unknown"}) {
    if (core == old) return true;
  }
  return false;
}

const char* BestCoreForThisCpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void ConfigureBlasOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string before = openblas_get_corename();
    const char* best = BestCoreForThisCpu();
    if (std::getenv("OPENBLAS_CORETYPE") == nullptr && IsFallbackCore(before) && best != nullptr &&
        gotoblas_dynamic_init != nullptr && gotoblas_dynamic_quit != nullptr) {
      // OpenBLAS's buffers are sized for every core of a DYNAMIC_ARCH build, so switching the
      // kernel table between calls is safe.
      setenv("OPENBLAS_CORETYPE", best, /*overwrite=*/0);
      gotoblas_dynamic_quit();
      gotoblas_dynamic_init();
      SLUICE_LOG_INFO("OpenBLAS did not recognise this CPU ({} kernels); switched to {}", before,
                      openblas_get_corename());
    }
    openblas_set_num_threads(1);
  });
}

std::string BlasDescription() {
  return std::string(openblas_get_config()) + " core=" + openblas_get_corename();
}

}  // namespace sluice::cpu
