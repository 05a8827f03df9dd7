#include "backends/model_loader.h"

#include <charconv>
#include <utility>

#include "backends/cpu/cpu_backend.h"
#include "engine/encoder_weights.h"
#include "model/weight_store.h"
#ifdef SLUICE_WITH_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace sluice {

StatusOr<DeviceSpec> DeviceSpec::Parse(std::string_view text) {
  DeviceSpec spec;
  if (text == "cpu") return spec;
  if (text == "cuda") {
    spec.kind = Kind::kCuda;
    return spec;
  }
  if (text.starts_with("cuda:")) {
    std::string_view digits = text.substr(5);
    int index = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
        index >= 0) {
      spec.kind = Kind::kCuda;
      spec.index = index;
      return spec;
    }
  }
  return InvalidArgument("unknown device '" + std::string(text) +
                         "' (expected cpu, cuda or cuda:N)");
}

std::string DeviceSpec::ToString() const {
  return kind == Kind::kCpu ? std::string("cpu") : "cuda:" + std::to_string(index);
}

namespace {

StatusOr<std::unique_ptr<Backend>> CreateBackend(const LoadOptions& options,
                                                 const EncoderConfig& config,
                                                 const EncoderWeights& weights, Pooling pooling) {
  if (options.device.kind == DeviceSpec::Kind::kCpu) {
    CpuBackendOptions cpu;
    cpu.num_threads = options.cpu_threads;
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                            CpuBackend::Create(config, weights, pooling, cpu));
    return std::unique_ptr<Backend>(std::move(backend));
  }
#ifdef SLUICE_WITH_CUDA
  cuda::CudaBackendOptions cuda;
  cuda.device = options.device.index;
  cuda.gpu_memory_limit = options.gpu_memory_limit;
  if (options.gpu_dtype == "bf16") {
    cuda.dtype = cuda::CudaDType::kBF16;
  } else if (options.gpu_dtype != "fp16") {
    return InvalidArgument("unknown GPU dtype '" + options.gpu_dtype + "' (expected fp16 or bf16)");
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaBackend> backend,
                          cuda::CudaBackend::Create(config, weights, pooling, cuda));
  return std::unique_ptr<Backend>(std::move(backend));
#else
  return Unavailable("device " + options.device.ToString() +
                     " requested, but this sluice was built without the CUDA backend");
#endif
}

}  // namespace

StatusOr<LoadedModel> LoadModel(const LoadOptions& options) {
  LoadedModel model;
  SLUICE_ASSIGN_OR_RETURN(model.dir, ModelDir::Open(options.model_dir));
  SLUICE_ASSIGN_OR_RETURN(model.config, EncoderConfig::FromHf(model.dir.config));
  SLUICE_ASSIGN_OR_RETURN(model.pooling, ParsePooling(model.dir.pooling));
  SLUICE_ASSIGN_OR_RETURN(model.tokenizer, Tokenizer::FromFile(model.dir.tokenizer_path));
  // The store maps the weights only while the backend copies them to its own memory.
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model.dir.dir));
  SLUICE_ASSIGN_OR_RETURN(EncoderWeights weights, EncoderWeights::Bind(*store, model.config));
  SLUICE_ASSIGN_OR_RETURN(model.backend,
                          CreateBackend(options, model.config, weights, model.pooling));
  SLUICE_RETURN_IF_ERROR(model.backend->Warmup(options.limits));
  return model;
}

}  // namespace sluice
