#include "common/version.h"

namespace sluice {

std::string VersionString() {
  std::string out = "sluice " SLUICE_VERSION " (backends: cpu";
#ifdef SLUICE_WITH_CUDA
  out += ", cuda [" SLUICE_CUDA_ARCHS "]";
#endif
  out += ")";
  return out;
}

}  // namespace sluice
