// The 16-bit element types the CUDA backend computes in. Activations and weights share one
// type per backend; accumulation is always in float32.
#pragma once

#include <string_view>

namespace sluice::cuda {

enum class CudaDType { kF16, kBF16 };

inline std::string_view CudaDTypeName(CudaDType dtype) {
  return dtype == CudaDType::kF16 ? "fp16" : "bf16";
}

}  // namespace sluice::cuda
