#include "server/base64.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sluice {
namespace {

std::string Encode(std::string_view s) {
  std::string out;
  AppendBase64(std::as_bytes(std::span<const char>(s.data(), s.size())), &out);
  return out;
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Encode(""), "");
  EXPECT_EQ(Encode("f"), "Zg==");
  EXPECT_EQ(Encode("fo"), "Zm8=");
  EXPECT_EQ(Encode("foo"), "Zm9v");
  EXPECT_EQ(Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Test, FloatsAreLittleEndianFloat32) {
  // 1.0f is 00 00 80 3f; -2.0f is 00 00 00 c0.
  const float values[] = {1.0f, -2.0f};
  std::string out;
  AppendBase64(std::as_bytes(std::span<const float>(values)), &out);
  EXPECT_EQ(out, Encode(std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8)));
  EXPECT_EQ(out, "AACAPwAAAMA=");
}

}  // namespace
}  // namespace sluice
