// CheckKernelImage: whether this build holds GPU code a device can run (machine code for its
// architecture, or PTX of an older one that the driver compiles at load), asked of the CUDA
// runtime through a probe kernel compiled like every other kernel.
#pragma once

#include <string>

#include "common/status.h"

namespace sluice::cuda {

// The architectures this build was compiled for, as CMake named them ("80,90").
std::string CompiledArchitectures();

// Ok when `device` can run this build's kernels; Unimplemented naming the device's compute
// capability and what to rebuild with otherwise (the kernels need 8.0 or newer); Unavailable
// when the device cannot be asked. Selects `device` on the calling thread.
Status CheckKernelImage(int device);

}  // namespace sluice::cuda
