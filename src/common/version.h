// The version and build features of this binary, for --version and /info.
#pragma once

#include <string>

namespace sluice {

// "sluice 0.1.0 (backends: cpu, cuda [sm_80, sm_90])": the CUDA backend with the GPU
// architectures it was compiled for.
std::string VersionString();

}  // namespace sluice
