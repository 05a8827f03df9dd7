// LoadModel: opens a model directory and makes it ready to run on a device: the tokenizer, the
// weights bound to the encoder architecture, and a warmed-up Backend (CPU or CUDA).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

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
  std::string ToString() const;
};

struct LoadOptions {
  std::filesystem::path model_dir;
  DeviceSpec device;
  int cpu_threads = 0;  // 0 = all cores
  // GPU only: "fp16" or "bf16" compute, and the most device memory to take (0 = what is free).
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

// Every failure names the file or setting at fault: NotFound for missing files, DataLoss for
// corrupt weights, InvalidArgument for unsupported architectures/dtypes, Unavailable when the
// device cannot be used (e.g. cuda requested in a build without the CUDA backend).
StatusOr<LoadedModel> LoadModel(const LoadOptions& options);

}  // namespace sluice
