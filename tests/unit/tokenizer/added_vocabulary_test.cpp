#include "tokenizer/added_vocabulary.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/bert_normalizer.h"

namespace sluice::tokenizer {
namespace {

// A segment as "text" or "<id>".
std::vector<std::string> Render(const std::vector<AddedVocabulary::Segment>& segments) {
  std::vector<std::string> out;
  for (const auto& s : segments) {
    out.push_back(s.id >= 0 ? "<" + std::to_string(s.id) + ":" + std::string(s.text) + ">"
                            : std::string(s.text));
  }
  return out;
}

AddedToken Token(std::string content, int32_t id, bool normalized = false) {
  AddedToken token;
  token.content = std::move(content);
  token.id = id;
  token.normalized = normalized;
  token.special = !normalized;
  return token;
}

struct SplitCase {
  std::string name;
  std::string text;
  bool raw;
  std::vector<std::string> segments;
};

class AddedVocabularyTest : public testing::TestWithParam<SplitCase> {};

TEST_P(AddedVocabularyTest, Splits) {
  AddedToken mask = Token("<mask>", 4);
  mask.lstrip = true;
  mask.rstrip = true;
  AddedToken word = Token("ony", 5);
  word.single_word = true;
  BertNormalizer lowercase({false, false, false, true});
  StatusOr<AddedVocabulary> vocab =
      AddedVocabulary::Create({Token("[CLS]", 1), Token("[SEP]", 2), Token("[SEP]]", 3), mask, word,
                               Token("Hello", 6, /*normalized=*/true)},
                              &lowercase);
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  std::vector<AddedVocabulary::Segment> segments;
  vocab->Split(GetParam().text, GetParam().raw, &segments);
  EXPECT_EQ(Render(segments), GetParam().segments);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AddedVocabularyTest,
    testing::Values(
        SplitCase{"none", "plain text", true, {"plain text"}}, SplitCase{"empty", "", true, {}},
        SplitCase{"inside_words", "a[CLS]b [SEP]", true, {"a", "<1:[CLS]>", "b ", "<2:[SEP]>"}},
        SplitCase{"longest_match", "x[SEP]]y", true, {"x", "<3:[SEP]]>", "y"}},
        SplitCase{"case_sensitive", "[cls] [Cls]", true, {"[cls] [Cls]"}},
        SplitCase{"adjacent", "[CLS][CLS]", true, {"<1:[CLS]>", "<1:[CLS]>"}},
        SplitCase{"strips_whitespace", "a  <mask>\tb", true, {"a", "<4:  <mask>\t>", "b"}},
        SplitCase{"single_word", "ony Tony ony.", true, {"<5:ony>", " Tony ", "<5:ony>", "."}},
        SplitCase{"normalized_pass", "say hello", false, {"say ", "<6:hello>"}},
        SplitCase{"raw_pass_skips_normalized_tokens", "say hello", true, {"say hello"}}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(AddedVocabularyLookupTest, FindsTokens) {
  StatusOr<AddedVocabulary> vocab =
      AddedVocabulary::Create({Token("[CLS]", 101), Token("[MASK]", 103)}, nullptr);
  ASSERT_TRUE(vocab.ok());
  EXPECT_EQ(vocab->TokenToId("[MASK]"), 103);
  EXPECT_EQ(vocab->TokenToId("[SEP]"), std::nullopt);
  ASSERT_NE(vocab->FindById(101), nullptr);
  EXPECT_EQ(vocab->FindById(101)->content, "[CLS]");
  EXPECT_EQ(vocab->FindById(102), nullptr);
  EXPECT_TRUE(vocab->IsSpecial(103));
}

}  // namespace
}  // namespace sluice::tokenizer
