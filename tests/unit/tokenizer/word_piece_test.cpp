#include "tokenizer/word_piece.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_node.h"
#include "tokenizer/model.h"

namespace sluice::tokenizer {
namespace {

constexpr std::string_view kModel = R"({
  "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
  "max_input_chars_per_word": 10,
  "vocab": {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "a": 4, "##a": 5, "aff": 6,
            "\u00e9": 7, "##\u00e9t\u00e9": 8, "##": 9, "unaff": 10}
})";

struct WordCase {
  std::string name;
  std::string word;
  std::vector<int32_t> ids;
};

class WordPieceTest : public testing::TestWithParam<WordCase> {};

TEST_P(WordPieceTest, Tokenizes) {
  JsonNode node(kModel);
  StatusOr<std::unique_ptr<Model>> model = Model::FromJson(node.element());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<int32_t> ids = {42};  // appends after what is there
  (*model)->Tokenize(GetParam().word, &ids);
  std::vector<int32_t> expected = {42};
  expected.insert(expected.end(), GetParam().ids.begin(), GetParam().ids.end());
  EXPECT_EQ(ids, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, WordPieceTest,
    testing::Values(WordCase{"whole_word", "aff", {6}},
                    WordCase{"longest_prefix_first", "unaffable", {10, 3}},
                    WordCase{"continuations", "aaa", {4, 5, 5}},
                    WordCase{"multibyte_pieces", "\xC3\xA9\xC3\xA9t\xC3\xA9", {7, 8}},
                    WordCase{"uncoverable_is_unk", "unx", {0}},
                    WordCase{"partial_cover_is_one_unk", "aab", {0}},
                    WordCase{"at_char_limit", "aaaaaaaaaa", {4, 5, 5, 5, 5, 5, 5, 5, 5, 5}},
                    WordCase{"over_char_limit", "aaaaaaaaaaa", {0}},
                    WordCase{"limit_counts_characters_not_bytes",
                             "\xC3\xA9\xC3\xA9t\xC3\xA9\xC3\xA9t\xC3\xA9",
                             {7, 8, 8}},
                    WordCase{"empty_word", "", {}}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(WordPieceModelTest, LooksUpTokens) {
  JsonNode node(kModel);
  StatusOr<std::unique_ptr<Model>> model = Model::FromJson(node.element());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->vocab_size(), 11u);
  EXPECT_EQ((*model)->TokenToId("##able"), 3);
  EXPECT_EQ((*model)->TokenToId("able"), std::nullopt);
  ASSERT_NE((*model)->IdToToken(2), nullptr);
  EXPECT_EQ(*(*model)->IdToToken(2), "##aff");
  EXPECT_EQ((*model)->IdToToken(11), nullptr);
  EXPECT_EQ((*model)->IdToToken(-1), nullptr);
}

TEST(WordPieceModelTest, CustomPrefix) {
  JsonNode node(R"({"type": "WordPiece", "unk_token": "<unk>", "continuing_subword_prefix": "@@",
                    "vocab": {"<unk>": 0, "ab": 1, "@@c": 2, "##c": 3}})");
  StatusOr<std::unique_ptr<Model>> model = Model::FromJson(node.element());
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> ids;
  (*model)->Tokenize("abc", &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2}));
}

struct BadModelCase {
  std::string name;
  std::string json;
  std::string message;
};

class BadWordPieceTest : public testing::TestWithParam<BadModelCase> {};

TEST_P(BadWordPieceTest, IsInvalidArgument) {
  JsonNode node(GetParam().json);
  StatusOr<std::unique_ptr<Model>> model = Model::FromJson(node.element());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find(GetParam().message), std::string::npos)
      << model.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadWordPieceTest,
    testing::Values(
        BadModelCase{"unsupported_type", R"({"type": "BPE", "vocab": {}})", "\"BPE\""},
        BadModelCase{"missing_vocab", R"({"type": "WordPiece"})", "\"vocab\" is missing"},
        BadModelCase{"vocab_not_object", R"({"type": "WordPiece", "vocab": [1]})",
                     "\"vocab\" must be an object"},
        BadModelCase{"unk_not_in_vocab", R"({"type": "WordPiece", "vocab": {"a": 0}})",
                     "unk_token \"[UNK]\" is not in the vocab"},
        BadModelCase{"negative_id", R"({"type": "WordPiece", "vocab": {"[UNK]": -1}})",
                     "token ids"},
        BadModelCase{"string_id", R"({"type": "WordPiece", "vocab": {"[UNK]": "0"}})", "token ids"},
        BadModelCase{"duplicate_id", R"({"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 0}})",
                     "used twice"},
        BadModelCase{"huge_id", R"({"type": "WordPiece", "vocab": {"[UNK]": 2000000000}})",
                     "too large"},
        BadModelCase{"bad_max_chars",
                     R"({"type": "WordPiece", "max_input_chars_per_word": "x", "vocab": {}})",
                     "max_input_chars_per_word"},
        BadModelCase{"not_an_object", R"([1, 2])", "must be a JSON object"}),
    [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace sluice::tokenizer
