// The version and build features of this binary, for --version and /info.
#pragma once

#include <string>

namespace sluice {

// "sluice 0.1.0 (backends: cpu, cuda)".
std::string VersionString();

}  // namespace sluice
