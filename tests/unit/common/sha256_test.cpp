#include "common/sha256.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace sluice {
namespace {

struct Vector {
  std::string message;
  std::string hex;
};

// FIPS 180-4 example vectors, plus an embedded NUL (checked with Python hashlib).
const Vector kVectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {std::string("a\0b", 3), "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"},
};

class Sha256VectorTest : public ::testing::TestWithParam<Vector> {};

TEST_P(Sha256VectorTest, OneShotMatches) {
  EXPECT_EQ(DigestToHex(Sha256Of(GetParam().message)), GetParam().hex);
}

TEST_P(Sha256VectorTest, IncrementalMatchesForEverySplit) {
  const std::string& m = GetParam().message;
  // Splitting the message anywhere must not change the digest.
  for (size_t cut : {size_t{0}, m.size() / 3, m.size() / 2, m.size()}) {
    Sha256 hash;
    hash.Update(std::string_view(m).substr(0, cut)).Update(std::string_view(m).substr(cut));
    EXPECT_EQ(DigestToHex(hash.Finish()), GetParam().hex) << "cut at " << cut;
  }
}

INSTANTIATE_TEST_SUITE_P(Nist, Sha256VectorTest, ::testing::ValuesIn(kVectors));

TEST(Sha256Test, ResetReusesTheContext) {
  Sha256 hash;
  hash.Update("abc");
  (void)hash.Finish();
  hash.Reset();
  hash.Update("");
  EXPECT_EQ(DigestToHex(hash.Finish()), kVectors[0].hex);
}

TEST(Sha256Test, MovedObjectKeepsState) {
  Sha256 a;
  a.Update("ab");
  Sha256 b = std::move(a);
  b.Update("c");
  EXPECT_EQ(DigestToHex(b.Finish()), kVectors[1].hex);
  Sha256 c;
  c = std::move(b);
  c.Reset();
  EXPECT_EQ(DigestToHex(c.Finish()), kVectors[0].hex);
}

TEST(Sha256Test, CloneContinuesIndependently) {
  Sha256 prefix;
  prefix.Update("ab");
  Sha256 first = prefix.Clone();
  Sha256 second = prefix.Clone();
  first.Update("c");
  second.Update("cdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  EXPECT_EQ(DigestToHex(first.Finish()), kVectors[1].hex);
  EXPECT_EQ(DigestToHex(second.Finish()), kVectors[2].hex);
  prefix.Update("c");  // the original is untouched by its clones
  EXPECT_EQ(DigestToHex(prefix.Finish()), kVectors[1].hex);
}

TEST(Sha256DeathTest, UpdateAfterFinishIsABug) {
  Sha256 hash;
  (void)hash.Finish();
  EXPECT_DEATH(hash.Update("x"), "after Finish");
}

}  // namespace
}  // namespace sluice
