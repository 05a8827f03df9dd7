#include "tokenizer/bert_pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::tokenizer {
namespace {

struct SplitCase {
  std::string name;
  std::string input;
  std::vector<std::string> words;
};

class BertPreTokenizerTest : public testing::TestWithParam<SplitCase> {};

TEST_P(BertPreTokenizerTest, Splits) {
  BertPreTokenizer pre_tokenizer;
  WordList words;
  pre_tokenizer.PreTokenize(GetParam().input, &words);
  std::vector<std::string> got(words.words().begin(), words.words().end());
  EXPECT_EQ(got, GetParam().words);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BertPreTokenizerTest,
    testing::Values(
        SplitCase{"words", "hello world", {"hello", "world"}},
        SplitCase{"runs_of_spaces", "  a \t\n b  ", {"a", "b"}},
        SplitCase{"punctuation_isolated", "don't stop!!", {"don", "'", "t", "stop", "!", "!"}},
        SplitCase{"ascii_symbols_are_punctuation", "a$b+c", {"a", "$", "b", "+", "c"}},
        SplitCase{"unicode_punctuation",
                  "a\xE2\x80\x94"
                  "b\xE3\x80\x82",
                  {"a", "\xE2\x80\x94", "b", "\xE3\x80\x82"}},
        SplitCase{"unicode_whitespace",
                  "a\xC2\xA0"
                  "b\xE3\x80\x80"
                  "c",
                  {"a", "b", "c"}},
        SplitCase{"symbols_stay_in_words", "5\xE2\x82\xAC", {"5\xE2\x82\xAC"}},
        SplitCase{"zero_width_space_is_not_whitespace",
                  "a\xE2\x80\x8B"
                  "b",
                  {"a\xE2\x80\x8B"
                   "b"}},
        SplitCase{"empty", "", {}}, SplitCase{"only_spaces", "   ", {}}),
    [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace sluice::tokenizer
