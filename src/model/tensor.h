// TensorView: a typed, shaped, read-only view of tensor bytes owned by someone else (usually a
// memory-mapped safetensors file held by a WeightStore).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2 };

// Size of one element in bytes.
size_t DTypeSize(DType dtype);
// The safetensors spelling ("F32", "BF16", ...).
std::string_view DTypeName(DType dtype);
// Parses a safetensors dtype string; NotFound-style InvalidArgument for unknown spellings.
StatusOr<DType> ParseDType(std::string_view name);

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // not necessarily aligned to the element size
  size_t nbytes = 0;

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  // "[384, 1536]".
  std::string ShapeString() const;
};

// Converts `src` (F32, F16 or BF16) to float32 into `dst`, which must hold src.numel() floats.
// InvalidArgument for other dtypes or a size mismatch.
Status ConvertToFloat32(const TensorView& src, std::span<float> dst);

// Half-precision conversions used by loaders and the CPU reference for GPU kernels.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);  // round to nearest even

}  // namespace sluice
