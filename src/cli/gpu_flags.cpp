#include "cli/gpu_flags.h"

#include <string>

namespace sluice::cli {

void AddGpuOptions(CLI::App* cmd, GpuFlags* flags) {
  cmd->add_option("--gpu-dtype", flags->dtype,
                  "GPU compute type: fp16, bf16, or fp8 (E4M3 weights and activations in the "
                  "QKV and feed-forward GEMMs; Ada/Hopper or newer)")
      ->envname("SLUICE_GPU_DTYPE")
      ->check(CLI::IsMember({"fp16", "bf16", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--gpu-memory-limit", flags->memory_limit,
                  "Most device memory per GPU for weights and workspaces, in bytes or with a "
                  "unit (512MiB, 8GiB); 0: what is free")
      ->envname("SLUICE_GPU_MEMORY_LIMIT")
      ->check(CLI::Validator(
          [](const std::string& value) {
            return value.find('-') == std::string::npos ? std::string()
                                                        : std::string("must not be negative");
          },
          "", "non-negative size"))
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
}

void ApplyGpuFlags(const GpuFlags& flags, LoadOptions* load) {
  load->gpu_dtype = flags.dtype;
  load->gpu_memory_limit = flags.memory_limit;
}

}  // namespace sluice::cli
