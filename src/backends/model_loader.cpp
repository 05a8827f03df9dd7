#include "backends/model_loader.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "backends/cpu/cpu_backend.h"
#include "engine/encoder_weights.h"
#include "model/weight_store.h"
#ifdef SLUICE_WITH_CUDA
#include <cuda_runtime_api.h>

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

namespace {

StatusOr<int> VisibleGpuCount() {
#ifdef SLUICE_WITH_CUDA
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return Unavailable(std::string("no usable CUDA device: ") + cudaGetErrorString(error));
  }
  return count;
#else
  return Unavailable("GPUs requested, but this sluice was built without the CUDA backend");
#endif
}

}  // namespace

StatusOr<std::vector<DeviceSpec>> DeviceSpec::ParseGpuList(std::string_view text) {
  std::vector<DeviceSpec> out;
  if (text == "all") {
    SLUICE_ASSIGN_OR_RETURN(int count, VisibleGpuCount());
    if (count == 0) return Unavailable("--devices all: no CUDA device is visible");
    for (int i = 0; i < count; ++i) out.push_back(DeviceSpec{Kind::kCuda, i});
    return out;
  }
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    int index = -1;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), index);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || index < 0) {
      return InvalidArgument("bad GPU list '" + std::string(text) +
                             "' (expected ordinals such as 0,1 or all)");
    }
    bool repeated =
        std::any_of(out.begin(), out.end(), [&](const DeviceSpec& d) { return d.index == index; });
    if (repeated) {
      return InvalidArgument("GPU " + std::to_string(index) + " is listed twice in '" +
                             std::string(text) + "'");
    }
    out.push_back(DeviceSpec{Kind::kCuda, index});
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string DeviceSpec::ToString() const {
  return kind == Kind::kCpu ? std::string("cpu") : "cuda:" + std::to_string(index);
}

namespace {

StatusOr<std::unique_ptr<Backend>> CreateBackend(const LoadOptions& options,
                                                 const DeviceSpec& device,
                                                 const EncoderConfig& config,
                                                 const EncoderWeights& weights, Pooling pooling) {
  if (device.kind == DeviceSpec::Kind::kCpu) {
    CpuBackendOptions cpu;
    cpu.num_threads = options.cpu_threads;
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend,
                            CpuBackend::Create(config, weights, pooling, cpu));
    return std::unique_ptr<Backend>(std::move(backend));
  }
#ifdef SLUICE_WITH_CUDA
  cuda::CudaBackendOptions cuda;
  cuda.device = device.index;
  cuda.gpu_memory_limit = options.gpu_memory_limit;
  if (options.gpu_dtype == "bf16") {
    cuda.dtype = cuda::CudaDType::kBF16;
  } else if (options.gpu_dtype == "fp8") {
    cuda.fp8_gemms = true;
  } else if (options.gpu_dtype != "fp16") {
    return InvalidArgument("unknown GPU dtype '" + options.gpu_dtype +
                           "' (expected fp16, bf16 or fp8)");
  }
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaBackend> backend,
                          cuda::CudaBackend::Create(config, weights, pooling, cuda));
  return std::unique_ptr<Backend>(std::move(backend));
#else
  return Unavailable("device " + device.ToString() +
                     " requested, but this sluice was built without the CUDA backend");
#endif
}

}  // namespace

StatusOr<LoadedReplicas> LoadReplicas(const LoadOptions& options,
                                      std::span<const DeviceSpec> devices) {
  if (devices.empty()) return InvalidArgument("no device to load the model on");
  LoadedReplicas model;
  SLUICE_ASSIGN_OR_RETURN(model.dir, ModelDir::Open(options.model_dir));
  SLUICE_ASSIGN_OR_RETURN(model.config, EncoderConfig::FromHf(model.dir.config));
  SLUICE_ASSIGN_OR_RETURN(model.pooling, ParsePooling(model.dir.pooling));
  SLUICE_ASSIGN_OR_RETURN(model.tokenizer, Tokenizer::FromFile(model.dir.tokenizer_path));
  // The store maps the weights only while the backends copy them to their own memory.
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model.dir.dir));
  SLUICE_ASSIGN_OR_RETURN(EncoderWeights weights, EncoderWeights::Bind(*store, model.config));
  for (const DeviceSpec& device : devices) {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                            CreateBackend(options, device, model.config, weights, model.pooling));
    SLUICE_RETURN_IF_ERROR(backend->Warmup(options.limits));
    model.backends.push_back(std::move(backend));
  }
  return model;
}

StatusOr<LoadedModel> LoadModel(const LoadOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(LoadedReplicas replicas,
                          LoadReplicas(options, std::span<const DeviceSpec>(&options.device, 1)));
  LoadedModel model;
  model.dir = std::move(replicas.dir);
  model.config = std::move(replicas.config);
  model.pooling = replicas.pooling;
  model.tokenizer = std::move(replicas.tokenizer);
  model.backend = std::move(replicas.backends.front());
  return model;
}

}  // namespace sluice
