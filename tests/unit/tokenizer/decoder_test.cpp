#include "tokenizer/decoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_node.h"

namespace sluice::tokenizer {
namespace {

struct DecodeCase {
  std::string name;
  bool cleanup;
  std::vector<std::string> tokens;
  std::string text;
};

class WordPieceDecoderTest : public testing::TestWithParam<DecodeCase> {};

TEST_P(WordPieceDecoderTest, Joins) {
  JsonNode node(GetParam().cleanup ? R"({"type": "WordPiece", "prefix": "##", "cleanup": true})"
                                   : R"({"type": "WordPiece", "prefix": "##", "cleanup": false})");
  StatusOr<std::unique_ptr<Decoder>> decoder = Decoder::FromJson(node.element());
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  std::vector<std::string> tokens = GetParam().tokens;
  (*decoder)->DecodeChain(&tokens);
  std::string text;
  for (const std::string& piece : tokens) text += piece;
  EXPECT_EQ(text, GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, WordPieceDecoderTest,
    testing::Values(
        DecodeCase{"continuations_glue", true, {"un", "##aff", "##able", "day"}, "unaffable day"},
        DecodeCase{"punctuation_cleanup",
                   true,
                   {"hello", ",", "world", "!", "ok", "?", "."},
                   "hello, world! ok?."},
        DecodeCase{
            "contractions_per_token", true, {"don", "'", "t", "it", "'", "s"}, "don ' t it ' s"},
        DecodeCase{"no_cleanup", true, {"a", "##b"}, "ab"},
        DecodeCase{"cleanup_off", false, {"hello", ",", "world", "."}, "hello , world ."},
        DecodeCase{"leading_continuation_kept", true, {"##ing", "x"}, "##ing x"},
        DecodeCase{"empty", true, {}, ""}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(DecoderTest, UnsupportedTypeIsNamed) {
  JsonNode node(R"({"type": "ByteLevel"})");
  StatusOr<std::unique_ptr<Decoder>> decoder = Decoder::FromJson(node.element());
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decoder.status().message(), "unsupported decoder type \"ByteLevel\"");
}

}  // namespace
}  // namespace sluice::tokenizer
