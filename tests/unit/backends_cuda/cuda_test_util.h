// Helpers for the CUDA backend tests: GPU detection, 16-bit host conversions, random data,
// device upload/download through a DeviceArena, and the relative-error measure.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backends/cuda/cuda_dtype.h"
#include "backends/cuda/cuda_handles.h"
#include "backends/cuda/device_arena.h"

namespace sluice::cuda::testing {

inline bool HaveGpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return false;
  }
  return count > 0;
}

// Device 0's compute capability as major * 10 + minor (90 for Hopper), 0 without a GPU.
inline int ComputeCapability() {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return 0;
  }
  return major * 10 + minor;
}

// True when device 0 has compute capability >= `cc` (e.g. 89 for fp8 tensor cores).
inline bool GpuComputeCapabilityAtLeast(int cc) { return ComputeCapability() >= cc; }

#define SLUICE_SKIP_WITHOUT_GPU() \
  if (!::sluice::cuda::testing::HaveGpu()) GTEST_SKIP() << "no CUDA device"

inline uint16_t ToBits(float f, CudaDType dtype) {
  if (dtype == CudaDType::kF16) return static_cast<__half_raw>(__float2half_rn(f)).x;
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(f)).x;
}

inline double FromBits(uint16_t bits, CudaDType dtype) {
  if (dtype == CudaDType::kF16) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  __nv_bfloat16_raw raw;
  raw.x = bits;
  return __bfloat162float(__nv_bfloat16(raw));
}

// Fresh seed each run; tests print it so a failure can be replayed.
inline uint32_t FreshSeed() { return std::random_device{}(); }

// Uniform values in [lo, hi) rounded to `dtype`: `bits` for the device, `values` (the exact
// rounded numbers) for the reference.
struct Random16 {
  std::vector<uint16_t> bits;
  std::vector<double> values;
};

inline Random16 MakeRandom16(size_t n, CudaDType dtype, std::mt19937& rng, float lo = -1.0f,
                             float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Random16 r;
  r.bits.resize(n);
  r.values.resize(n);
  for (size_t i = 0; i < n; ++i) {
    r.bits[i] = ToBits(dist(rng), dtype);
    r.values[i] = FromBits(r.bits[i], dtype);
  }
  return r;
}

// ||out - ref|| / ||ref||; infinity when any output is not finite (an unwritten, poisoned
// element shows up here).
inline double RelativeError(const std::vector<double>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return INFINITY;
  double num = 0;
  double den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// An arena and a stream on device 0, with copy helpers that fail the test on error.
class DeviceEnv {
 public:
  DeviceEnv() {
    auto arena = DeviceArena::Create(0, 0);
    EXPECT_TRUE(arena.ok()) << arena.status().ToString();
    if (arena.ok()) arena_ = std::move(arena).value();
    auto stream = CudaStream::Create();
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    if (stream.ok()) stream_ = std::move(stream).value();
  }

  cudaStream_t stream() const { return stream_.get(); }
  DeviceArena& arena() { return *arena_; }

  template <typename T>
  void* Upload(const std::vector<T>& host) {
    void* p = Alloc(host.size() * sizeof(T));
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
    return p;
  }
  // Device memory filled with 0xFF bytes: NaN as fp16, bf16 and fp32 alike.
  void* Poisoned(size_t bytes) {
    void* p = Alloc(bytes);
    EXPECT_EQ(cudaMemset(p, 0xFF, bytes), cudaSuccess);
    return p;
  }
  template <typename T>
  std::vector<T> Download(const void* p, size_t count) {
    EXPECT_EQ(cudaStreamSynchronize(stream()), cudaSuccess);
    std::vector<T> host(count);
    EXPECT_EQ(cudaMemcpy(host.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  std::vector<double> Download16(const void* p, size_t count, CudaDType dtype) {
    std::vector<double> out;
    for (uint16_t b : Download<uint16_t>(p, count)) out.push_back(FromBits(b, dtype));
    return out;
  }

 private:
  void* Alloc(size_t bytes) {
    auto buffer = arena_->Allocate(bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status().ToString();
    if (!buffer.ok()) return nullptr;
    buffers_.push_back(std::move(buffer).value());
    return buffers_.back().data();
  }

  std::unique_ptr<DeviceArena> arena_;
  CudaStream stream_;
  std::vector<DeviceBuffer> buffers_;
};

}  // namespace sluice::cuda::testing
