// LoadModel: opens a model directory and makes it ready to run on a device: the tokenizer, the
// weights bound to the encoder architecture, and a warmed-up Backend (CPU or CUDA).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/encoder_config.h"
#include "engine/pooling.h"
#include "model/model_dir.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

struct DeviceSpec {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // GPU ordinal for kCuda

  // "cpu", "cuda" (= cuda:0) or "cuda:N". InvalidArgument otherwise.
  static StatusOr<DeviceSpec> Parse(std::string_view text);
  // A GPU list for one engine replica per GPU: "0,1" (ordinals, no repeats) or "all" (every
  // visible GPU). InvalidArgument for a malformed list; Unavailable for "all" when no GPU (or
  // no CUDA backend) is there.
  static StatusOr<std::vector<DeviceSpec>> ParseGpuList(std::string_view text);
  std::string ToString() const;
};

struct LoadOptions {
  std::filesystem::path model_dir;
  DeviceSpec device;
  int cpu_threads = 0;  // 0 = all cores
  // GPU only: "fp16", "bf16" or "fp8" (fp16 with fp8 GEMMs) compute, and the most device memory
  // to take (0 = what is free).
  std::string gpu_dtype = "fp16";
  size_t gpu_memory_limit = 0;
  BatchLimits limits;
};

struct LoadedModel {
  ModelDir dir;
  EncoderConfig config;
  Pooling pooling = Pooling::kMean;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;  // warmed up for LoadOptions::limits
};

// The model on several devices: one warmed-up Backend (engine replica) per device, sharing
// one tokenizer.
struct LoadedReplicas {
  ModelDir dir;
  EncoderConfig config;
  Pooling pooling = Pooling::kMean;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<std::unique_ptr<Backend>> backends;  // in the order of the devices asked for
};

// Every failure names the file or setting at fault: NotFound for missing files, DataLoss for
// corrupt weights, InvalidArgument for unsupported architectures/dtypes, Unavailable when the
// device cannot be used (e.g. cuda requested in a build without the CUDA backend).
StatusOr<LoadedModel> LoadModel(const LoadOptions& options);

// As LoadModel, once per entry of `devices` (options.device is not used); the weights are
// mapped and bound once. InvalidArgument when `devices` is empty.
StatusOr<LoadedReplicas> LoadReplicas(const LoadOptions& options,
                                      std::span<const DeviceSpec> devices);

}  // namespace sluice
