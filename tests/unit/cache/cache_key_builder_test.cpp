#include "cache/cache_key_builder.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sluice {
namespace {

CacheKeyOptions MiniLm() {
  CacheKeyOptions o;
  o.model_id = "sentence-transformers/all-MiniLM-L6-v2";
  o.revision = "main";
  o.pooling = "mean";
  o.normalize = true;
  o.truncate = false;
  o.truncation_side = "right";
  return o;
}

// The encoding is shared with every host that reads the PostgreSQL cache, so it is pinned: the
// expected digests come from an independent Python implementation of the documented encoding
// (tag byte, little-endian u64 length, bytes; fields in declaration order).
TEST(CacheKeyBuilderTest, GoldenDigests) {
  EXPECT_EQ(CacheKeyToHex(CacheKeyBuilder(MiniLm()).ForText("hello world")),
            "d8ef910eadf0e7d584adfb98b5ac981f21aef38a82273ed402fcd56b3bd49ab5");
  const std::vector<int32_t> ids = {101, 7592, 2088, 102};
  EXPECT_EQ(CacheKeyToHex(CacheKeyBuilder(MiniLm()).ForTokens(ids)),
            "53415debf37d7bf62aaf815bcd6c78e651abb4f85253c01ca3c28b6903bb3a74");
  CacheKeyOptions o;
  o.model_id = "m";
  o.revision = "r";
  o.pooling = "cls";
  o.normalize = false;
  o.truncate = true;
  o.truncation_side = "left";
  o.max_input_tokens = 128;
  o.dimensions = 256;
  EXPECT_EQ(CacheKeyToHex(CacheKeyBuilder(o).ForText("h\xc3\xa9llo")),
            "c06287a5dc1252a6b0fca28cc3fa39197f851d229f629c19e15fc365c09e58ea");
}

struct DistinctCase {
  std::string name;
  CacheKeyOptions a;
  std::string text_a;
  CacheKeyOptions b;
  std::string text_b;
};

std::vector<DistinctCase> DistinctCases() {
  auto with = [](auto mutate) {
    CacheKeyOptions o = MiniLm();
    mutate(o);
    return o;
  };
  std::vector<DistinctCase> cases;
  cases.push_back({"input_text", MiniLm(), "hello", MiniLm(), "hello "});
  cases.push_back({"empty_vs_space", MiniLm(), "", MiniLm(), " "});
  // Length prefixes keep field boundaries: ("ab","c") and ("a","bc") differ.
  cases.push_back({"model_revision_boundary", with([](auto& o) {
                     o.model_id = "ab";
                     o.revision = "c";
                   }),
                   "x", with([](auto& o) {
                     o.model_id = "a";
                     o.revision = "bc";
                   }),
                   "x"});
  cases.push_back({"revision_pooling_boundary", with([](auto& o) {
                     o.revision = "main";
                     o.pooling = "";
                   }),
                   "x", with([](auto& o) {
                     o.revision = "";
                     o.pooling = "main";
                   }),
                   "x"});
  cases.push_back(
      {"pooling_into_input", with([](auto& o) { o.pooling = "meanx"; }), "", MiniLm(), "x"});
  cases.push_back({"model_id", MiniLm(), "x", with([](auto& o) { o.model_id = "other"; }), "x"});
  cases.push_back({"revision", MiniLm(), "x", with([](auto& o) { o.revision = "abc123"; }), "x"});
  cases.push_back({"pooling", MiniLm(), "x", with([](auto& o) { o.pooling = "cls"; }), "x"});
  cases.push_back({"normalize", MiniLm(), "x", with([](auto& o) { o.normalize = false; }), "x"});
  cases.push_back({"truncate", MiniLm(), "x", with([](auto& o) { o.truncate = true; }), "x"});
  cases.push_back({"truncation_side", with([](auto& o) { o.truncate = true; }), "x",
                   with([](auto& o) {
                     o.truncate = true;
                     o.truncation_side = "left";
                   }),
                   "x"});
  cases.push_back({"max_input_tokens", with([](auto& o) { o.truncate = true; }), "x",
                   with([](auto& o) {
                     o.truncate = true;
                     o.max_input_tokens = 64;
                   }),
                   "x"});
  cases.push_back({"dimensions", MiniLm(), "x", with([](auto& o) { o.dimensions = 128; }), "x"});
  return cases;
}

class CacheKeyDistinctTest : public ::testing::TestWithParam<DistinctCase> {};

TEST_P(CacheKeyDistinctTest, DifferentFieldsGiveDifferentKeys) {
  const DistinctCase& c = GetParam();
  const CacheKey a = CacheKeyBuilder(c.a).ForText(c.text_a);
  const CacheKey b = CacheKeyBuilder(c.b).ForText(c.text_b);
  EXPECT_NE(a, b);
  // And each is reproducible.
  EXPECT_EQ(a, CacheKeyBuilder(c.a).ForText(c.text_a));
  EXPECT_EQ(b, CacheKeyBuilder(c.b).ForText(c.text_b));
}

INSTANTIATE_TEST_SUITE_P(Fields, CacheKeyDistinctTest, ::testing::ValuesIn(DistinctCases()),
                         [](const auto& p) { return p.param.name; });

TEST(CacheKeyBuilderTest, TruncationParametersIgnoredWhenTruncationIsOff) {
  CacheKeyOptions a = MiniLm();
  CacheKeyOptions b = MiniLm();
  b.truncation_side = "left";
  b.max_input_tokens = 7;
  EXPECT_EQ(CacheKeyBuilder(a).ForText("x"), CacheKeyBuilder(b).ForText("x"));
}

TEST(CacheKeyBuilderTest, TextAndTokensNeverCollide) {
  const CacheKeyBuilder builder(MiniLm());
  // "abcd" as bytes is the same 4 bytes as the single token 0x64636261 on little endian.
  const std::vector<int32_t> same_bytes = {0x64636261};
  EXPECT_NE(builder.ForText("abcd"), builder.ForTokens(same_bytes));
  EXPECT_NE(builder.ForText(""), builder.ForTokens({}));
  const std::vector<int32_t> one = {1, 2};
  const std::vector<int32_t> two = {1, 2, 0};
  EXPECT_NE(builder.ForTokens(one), builder.ForTokens(two));
}

TEST(CacheKeyBuilderTest, ManyInputsGiveDistinctKeysAndHashesSpread) {
  const CacheKeyBuilder builder(MiniLm());
  std::unordered_set<CacheKey, CacheKeyHash> keys;
  std::unordered_set<size_t> hashes;
  for (int i = 0; i < 10000; ++i) {
    const CacheKey k = builder.ForText("input #" + std::to_string(i));
    keys.insert(k);
    hashes.insert(CacheKeyHash()(k));
  }
  EXPECT_EQ(keys.size(), 10000u);
  EXPECT_EQ(hashes.size(), 10000u);
}

TEST(CacheKeyBuilderTest, ConcurrentUseOfOneBuilderIsConsistent) {
  const CacheKeyBuilder builder(MiniLm());
  const CacheKey expected = builder.ForText("hello world");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (builder.ForText("hello world") != expected) mismatches.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace sluice
