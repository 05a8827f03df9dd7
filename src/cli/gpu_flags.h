// The GPU options every model-loading command shares: compute type and device memory limit.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <string>

#include "backends/model_loader.h"
#include "common/status.h"

namespace sluice::cli {

struct GpuFlags {
  std::string dtype = "fp16";
  size_t memory_limit = 0;  // bytes; 0 = what is free
};

// Adds --gpu-dtype and --gpu-memory-limit (with SLUICE_GPU_DTYPE / SLUICE_GPU_MEMORY_LIMIT).
void AddGpuOptions(CLI::App* cmd, GpuFlags* flags);

// Copies the flags into `load`; the dtype is checked when the backend is created.
void ApplyGpuFlags(const GpuFlags& flags, LoadOptions* load);

}  // namespace sluice::cli
