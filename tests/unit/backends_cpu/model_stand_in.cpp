// Stand-ins for the model/engine functions the CPU backend tests need, compiled only while the
// model layer's library does not exist yet (see CMakeLists.txt).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/batch.h"
#include "model/tensor.h"

namespace sluice {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

uint16_t FloatToHalf(float f) {
  // Round to nearest through the hardware conversion (F16C).
  return static_cast<uint16_t>(_cvtss_sh(f, 0));
}

float BFloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToBFloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

Status ConvertToFloat32(const TensorView& src, std::span<float> dst) {
  const auto n = static_cast<size_t>(src.numel());
  if (dst.size() != n) return InvalidArgument("size mismatch");
  for (size_t i = 0; i < n; ++i) {
    uint16_t u;
    switch (src.dtype) {
      case DType::kF32:
        std::memcpy(&dst[i], src.data + 4 * i, 4);
        break;
      case DType::kF16:
        std::memcpy(&u, src.data + 2 * i, 2);
        dst[i] = HalfToFloat(u);
        break;
      case DType::kBF16:
        std::memcpy(&u, src.data + 2 * i, 2);
        dst[i] = BFloat16ToFloat(u);
        break;
      default:
        return InvalidArgument("unsupported dtype");
    }
  }
  return Status::Ok();
}

void Batch::Add(const std::vector<int32_t>& ids, const std::vector<int32_t>& type_ids, bool norm) {
  if (cu_seqlens.empty()) cu_seqlens.push_back(0);
  for (size_t i = 0; i < ids.size(); ++i) {
    input_ids.push_back(ids[i]);
    token_type_ids.push_back(i < type_ids.size() ? type_ids[i] : 0);
    position_ids.push_back(static_cast<int32_t>(i));
  }
  cu_seqlens.push_back(static_cast<int32_t>(input_ids.size()));
  max_seqlen = std::max(max_seqlen, static_cast<int32_t>(ids.size()));
  normalize.push_back(norm ? 1 : 0);
}

void Batch::Clear() { *this = Batch(); }

}  // namespace sluice
