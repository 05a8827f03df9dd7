#include "model/tensor.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#ifdef __F16C__
#include <immintrin.h>
#endif

namespace sluice {
namespace {

TEST(DTypeTest, TableIsConsistent) {
  struct Case {
    DType dtype;
    const char* name;
    size_t size;
  };
  const Case cases[] = {
      {DType::kF64, "F64", 8},   {DType::kF32, "F32", 4},        {DType::kF16, "F16", 2},
      {DType::kBF16, "BF16", 2}, {DType::kI64, "I64", 8},        {DType::kI32, "I32", 4},
      {DType::kI16, "I16", 2},   {DType::kI8, "I8", 1},          {DType::kU8, "U8", 1},
      {DType::kBool, "BOOL", 1}, {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kF8E5M2, "F8_E5M2", 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(DTypeSize(c.dtype), c.size) << c.name;
    EXPECT_EQ(DTypeName(c.dtype), c.name);
    StatusOr<DType> parsed = ParseDType(c.name);
    ASSERT_TRUE(parsed.ok()) << c.name;
    EXPECT_EQ(*parsed, c.dtype);
  }
}

TEST(DTypeTest, UnknownSpellingIsInvalidArgument) {
  for (const char* name : {"f32", "FP16", "", "C64", "F4"}) {
    StatusOr<DType> parsed = ParseDType(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(TensorViewTest, NumelAndShapeString) {
  TensorView t;
  t.shape = {384, 1536};
  EXPECT_EQ(t.numel(), 384 * 1536);
  EXPECT_EQ(t.ShapeString(), "[384, 1536]");
  t.shape = {};
  EXPECT_EQ(t.numel(), 1);  // a scalar
  EXPECT_EQ(t.ShapeString(), "[]");
  t.shape = {3, 0};
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.empty());
}

// Reference values from numpy float16 / torch bfloat16.
TEST(HalfTest, HalfToFloatReferenceValues) {
  struct Case {
    uint16_t half;
    float value;
  };
  const Case cases[] = {
      {0x0000, 0.0f},
      {0x3c00, 1.0f},
      {0xc000, -2.0f},
      {0xc100, -2.5f},
      {0x3555, 0.333251953125f},
      {0x7bff, 65504.0f},               // largest finite
      {0x0400, std::ldexp(1.0f, -14)},  // smallest normal
      {0x0001, std::ldexp(1.0f, -24)},  // smallest subnormal
      {0x03ff, std::ldexp(1023.0f, -24)},
      {0x8001, -std::ldexp(1.0f, -24)},
      {0x00a8, std::ldexp(168.0f, -24)},
      {0x7c00, std::numeric_limits<float>::infinity()},
      {0xfc00, -std::numeric_limits<float>::infinity()},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(HalfToFloat(c.half), c.value) << std::hex << c.half;
  }
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));  // signalling NaN stays NaN
  EXPECT_TRUE(std::isnan(HalfToFloat(0xfe00)));
}

TEST(HalfTest, FloatToHalfRoundsToNearestEven) {
  struct Case {
    float value;
    uint16_t half;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const Case cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.5f, 0xc100},
      {0.1f, 0x2e66},
      {1.0f / 3.0f, 0x3555},
      {1e-5f, 0x00a8},                             // becomes subnormal
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},      // tie -> even (down)
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},  // tie -> even (up)
      {65504.0f, 0x7bff},
      {65519.99f, 0x7bff},  // just under the rounding boundary
      {65520.0f, 0x7c00},   // rounds to inf
      {1e6f, 0x7c00},
      {-1e6f, 0xfc00},
      {inf, 0x7c00},
      {-inf, 0xfc00},
      {std::ldexp(1.0f, -14), 0x0400},
      {std::ldexp(1.0f, -24), 0x0001},
      {std::ldexp(1.0f, -25), 0x0000},     // tie between 0 and the smallest subnormal -> 0
      {std::ldexp(1.5f, -25), 0x0001},     // above the tie
      {std::ldexp(3.0f, -25), 0x0002},     // tie between 1 and 2 -> 2
      {std::ldexp(1.0f, -30), 0x0000},     // underflows
      {std::ldexp(1.0f, -140), 0x0000},    // float32 subnormal input
      {std::ldexp(2047.0f, -25), 0x0400},  // largest subnormal tie carries into the normals
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToHalf(c.value), c.half) << c.value;
  }
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A NaN whose payload lives only in low bits must not turn into infinity.
  const uint16_t low_payload = FloatToHalf(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(HalfToFloat(low_payload)));
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << std::hex << h;
    } else {
      EXPECT_EQ(FloatToHalf(f), h) << std::hex << h;
    }
  }
}

#ifdef __F16C__
// The hardware conversion is the ground truth for rounding; sample the whole float range.
TEST(HalfTest, FloatToHalfMatchesHardware) {
  int checked = 0;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 65521) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const auto expected = static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
    ASSERT_EQ(FloatToHalf(f), expected) << std::hex << bits;
    ++checked;
  }
  EXPECT_GT(checked, 60000);
}

TEST(HalfTest, HalfToFloatMatchesHardware) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float expected = _cvtsh_ss(static_cast<uint16_t>(h));
    EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(static_cast<uint16_t>(h))),
              std::bit_cast<uint32_t>(expected))
        << std::hex << h;
  }
}
#endif

TEST(BFloat16Test, ReferenceValues) {
  struct Case {
    float value;
    uint16_t bf16;
  };
  const Case cases[] = {
      {0.0f, 0x0000},
      {1.0f, 0x3f80},
      {-2.5f, 0xc020},
      {0.1f, 0x3dcd},
      {1.0f / 3.0f, 0x3eab},
      {1.0f + std::ldexp(1.0f, -8), 0x3f80},      // tie -> even (down)
      {1.0f + 3 * std::ldexp(1.0f, -8), 0x3f82},  // tie -> even (up)
      {1e-40f, 0x0001},                           // float32 subnormal
      {3.4e38f, 0x7f80},                          // rounds up to inf, as torch does
      {std::numeric_limits<float>::infinity(), 0x7f80},
      {-std::numeric_limits<float>::infinity(), 0xff80},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToBFloat16(c.value), c.bf16) << c.value;
  }
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0xc020), -2.5f);
  EXPECT_EQ(BFloat16ToFloat(0x0001), std::bit_cast<float>(0x00010000u));
  EXPECT_TRUE(std::isinf(BFloat16ToFloat(0xff80)));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7fc0)));
  // A NaN whose payload sits in the dropped half must stay NaN, not become inf.
  const uint16_t nan = FloatToBFloat16(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(nan)));
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = BFloat16ToFloat(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(FloatToBFloat16(f), b) << std::hex << b;
    }
  }
}

// A view whose data starts one byte into a buffer, so it is misaligned for every dtype.
struct UnalignedTensor {
  std::vector<std::byte> storage;
  TensorView view;

  UnalignedTensor(DType dtype, const std::vector<uint8_t>& bytes, int64_t numel) {
    storage.resize(bytes.size() + 1);
    std::memcpy(storage.data() + 1, bytes.data(), bytes.size());
    view.name = "t";
    view.dtype = dtype;
    view.shape = {numel};
    view.data = storage.data() + 1;
    view.nbytes = bytes.size();
  }
};

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

TEST(ConvertToFloat32Test, ConvertsEachFloatDTypeFromUnalignedData) {
  // 19 values: exercises the 8-wide path and the scalar tail.
  std::vector<float> values;
  for (int i = 0; i < 19; ++i) values.push_back(static_cast<float>(i) * 0.37f - 3.0f);
  std::vector<uint16_t> halves, bf16s;
  for (float v : values) {
    halves.push_back(FloatToHalf(v));
    bf16s.push_back(FloatToBFloat16(v));
  }
  struct Case {
    DType dtype;
    std::vector<uint8_t> bytes;
  };
  const Case cases[] = {
      {DType::kF32, Bytes(values)}, {DType::kF16, Bytes(halves)}, {DType::kBF16, Bytes(bf16s)}};
  for (const Case& c : cases) {
    UnalignedTensor t(c.dtype, c.bytes, 19);
    std::vector<float> out(19, -1.0f);
    ASSERT_TRUE(ConvertToFloat32(t.view, out).ok()) << DTypeName(c.dtype);
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = c.dtype == DType::kF32   ? values[i]
                             : c.dtype == DType::kF16 ? HalfToFloat(halves[i])
                                                      : BFloat16ToFloat(bf16s[i]);
      EXPECT_EQ(out[i], expected) << DTypeName(c.dtype) << " element " << i;
    }
  }
}

TEST(ConvertToFloat32Test, BulkHalfPathAgreesWithScalarForEveryValue) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h <= 0xffff; ++h) all[h] = static_cast<uint16_t>(h);
  UnalignedTensor t(DType::kF16, Bytes(all), 65536);
  std::vector<float> out(65536);
  ASSERT_TRUE(ConvertToFloat32(t.view, out).ok());
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    ASSERT_EQ(std::bit_cast<uint32_t>(out[h]),
              std::bit_cast<uint32_t>(HalfToFloat(static_cast<uint16_t>(h))))
        << std::hex << h;
  }
}

TEST(ConvertToFloat32Test, RejectsBadInput) {
  UnalignedTensor f32(DType::kF32, Bytes(std::vector<float>{1, 2, 3}), 3);
  std::vector<float> out(3);

  std::vector<float> small(2);
  Status s = ConvertToFloat32(f32.view, small);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("destination"), std::string::npos) << s.message();

  UnalignedTensor i8(DType::kI8, {1, 2, 3}, 3);
  s = ConvertToFloat32(i8.view, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("I8"), std::string::npos) << s.message();

  TensorView lying = f32.view;
  lying.nbytes = 8;  // fewer bytes than shape x dtype
  EXPECT_EQ(ConvertToFloat32(lying, out).code(), StatusCode::kInvalidArgument);

  TensorView null_data = f32.view;
  null_data.data = nullptr;
  EXPECT_EQ(ConvertToFloat32(null_data, out).code(), StatusCode::kInvalidArgument);

  TensorView negative = f32.view;
  negative.shape = {-3};
  EXPECT_EQ(ConvertToFloat32(negative, out).code(), StatusCode::kInvalidArgument);

  TensorView empty;
  empty.shape = {0, 4};
  EXPECT_TRUE(ConvertToFloat32(empty, std::span<float>()).ok());
}

}  // namespace
}  // namespace sluice
