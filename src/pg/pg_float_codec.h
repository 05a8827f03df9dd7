// The compact vector format of sluice's tables: little-endian IEEE float32, 4 bytes per
// dimension, no header. Copied as is on little-endian hosts; numpy reads it with
// np.frombuffer(b, "<f4").
#pragma once

#include <bit>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

static_assert(std::endian::native == std::endian::little,
              "the float32 column format is little-endian; add byte swaps for this host");

inline void AppendFloats(std::span<const float> values, std::string& out) {
  out.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
}

// DataLoss when `bytes` is not a whole number of floats.
inline StatusOr<std::vector<float>> DecodeFloats(std::string_view bytes) {
  if (bytes.size() % sizeof(float) != 0) {
    return DataLoss("stored vector is not a whole number of float32 values");
  }
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace sluice
