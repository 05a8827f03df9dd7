#include "model/tensor.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>

#ifdef __F16C__
#include <immintrin.h>
#endif

#include <fmt/format.h>

namespace sluice {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeInfo, 12> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
    {DType::kF8E4M3, "F8_E4M3", 1},
    {DType::kF8E5M2, "F8_E5M2", 1},
}};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  SLUICE_CHECK(false) << "unknown DType " << static_cast<int>(dtype);
  return kDTypes[0];
}

uint16_t LoadU16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));  // the data may be unaligned
  return v;
}

}  // namespace

size_t DTypeSize(DType dtype) { return Info(dtype).size; }

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

StatusOr<DType> ParseDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return InvalidArgument(fmt::format("unknown dtype \"{}\"", name));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const { return fmt::format("[{}]", fmt::join(shape, ", ")); }

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    // inf, or NaN with its payload made quiet (as F16C hardware does, so both paths agree)
    bits = sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: shift the mantissa up until its leading 1 becomes the implicit bit.
    int e = -14;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3ffu;
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {
    if (abs == 0x7f800000u) return sign | 0x7c00u;
    // NaN: keep the top payload bits and force it quiet so it cannot become inf.
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  // 65520 and above round to inf under round-to-nearest-even.
  if (abs >= 0x477ff000u) return sign | 0x7c00u;
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): value = abs_f * 2^24 rounded to an integer, RNE.
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24 given the bounds above
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even. A carry
  // out of the mantissa correctly bumps the exponent.
  uint32_t v = abs - ((127u - 15u) << 23);
  v += 0xfffu + ((v >> 13) & 1u);
  return static_cast<uint16_t>(sign | (v >> 13));
}

float BFloat16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToBFloat16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN; rounding could make it inf
  }
  const uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

Status ConvertToFloat32(const TensorView& src, std::span<float> dst) {
  const int64_t numel = src.numel();
  if (numel < 0) {
    return InvalidArgument(fmt::format("tensor {} has a negative dimension", src.name));
  }
  const size_t n = static_cast<size_t>(numel);
  if (dst.size() != n) {
    return InvalidArgument(fmt::format("tensor {} {} has {} elements but the destination holds {}",
                                       src.name, src.ShapeString(), n, dst.size()));
  }
  if (src.dtype != DType::kF32 && src.dtype != DType::kF16 && src.dtype != DType::kBF16) {
    return InvalidArgument(
        fmt::format("cannot convert tensor {} of dtype {} to F32", src.name, DTypeName(src.dtype)));
  }
  if (src.nbytes != n * DTypeSize(src.dtype) || (n > 0 && src.data == nullptr)) {
    return InvalidArgument(fmt::format("tensor {} {} {} has {} bytes of data", src.name,
                                       DTypeName(src.dtype), src.ShapeString(), src.nbytes));
  }
  if (n == 0) return Status::Ok();
  const std::byte* p = src.data;
  switch (src.dtype) {
    case DType::kF32:
      std::memcpy(dst.data(), p, n * sizeof(float));
      break;
    case DType::kF16: {
      size_t i = 0;
#ifdef __F16C__
      for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
        _mm256_storeu_ps(dst.data() + i, _mm256_cvtph_ps(h));
      }
#endif
      for (; i < n; ++i) dst[i] = HalfToFloat(LoadU16(p + 2 * i));
      break;
    }
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) dst[i] = BFloat16ToFloat(LoadU16(p + 2 * i));
      break;
    default:
      SLUICE_CHECK(false) << "unreachable";
  }
  return Status::Ok();
}

}  // namespace sluice
