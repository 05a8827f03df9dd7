#include "tokenizer/bert_normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::tokenizer {
namespace {

struct NormalizerCase {
  std::string name;
  BertNormalizer::Options options;
  std::string input;
  std::string expected;
};

BertNormalizer::Options Opts(bool clean, bool chinese, std::optional<bool> strip, bool lower) {
  return {clean, chinese, strip, lower};
}

class BertNormalizerTest : public testing::TestWithParam<NormalizerCase> {};

TEST_P(BertNormalizerTest, Normalizes) {
  const NormalizerCase& c = GetParam();
  BertNormalizer normalizer(c.options);
  std::string out = "kept:";
  normalizer.Normalize(c.input, &out);
  EXPECT_EQ(out, "kept:" + c.expected);
}

const auto kDefault = Opts(true, true, std::nullopt, true);

INSTANTIATE_TEST_SUITE_P(
    Cases, BertNormalizerTest,
    testing::Values(
        NormalizerCase{"lowercase_ascii", kDefault, "Hello WORLD", "hello world"},
        NormalizerCase{"strip_follows_lowercase", kDefault, "Héllo Café", "hello cafe"},
        NormalizerCase{"cased_keeps_accents", Opts(true, true, std::nullopt, false), "Héllo",
                       "Héllo"},
        NormalizerCase{"cased_strip", Opts(true, true, true, false), "Héllo Ö", "Hello O"},
        NormalizerCase{"lower_keep_accents", Opts(true, true, false, true), "HÉLLO", "héllo"},
        NormalizerCase{"dotted_capital_i_full_mapping", Opts(true, true, false, true), "\xC4\xB0",
                       "i\xCC\x87"},
        NormalizerCase{"dotted_capital_i_stripped_first", kDefault, "\xC4\xB0stanbul", "istanbul"},
        NormalizerCase{"combining_marks_dropped", kDefault, "e\xCC\x81\xCC\xA7", "e"},
        NormalizerCase{"controls_dropped", kDefault,
                       std::string("a\0b\x07"
                                   "c\x7F"
                                   "d",
                                   7),
                       "abcd"},
        NormalizerCase{"tab_newline_become_spaces", kDefault, "a\tb\nc\rd", "a b c d"},
        NormalizerCase{"vertical_tab_is_control", kDefault,
                       "a\x0B"
                       "b\x0C"
                       "c",
                       "abc"},
        NormalizerCase{"unicode_spaces", kDefault,
                       "a\xC2\xA0"
                       "b\xE3\x80\x80"
                       "c",
                       "a b c"},
        NormalizerCase{"format_chars_dropped", kDefault,
                       "a\xE2\x80\x8B"
                       "b\xC2\xAD"
                       "c",
                       "abc"},
        NormalizerCase{"replacement_char_dropped", kDefault,
                       "a\xEF\xBF\xBD"
                       "b",
                       "ab"},
        NormalizerCase{"no_clean_text", Opts(false, true, false, false), "a\tb\x07", "a\tb\x07"},
        NormalizerCase{"cjk_spaced", kDefault,
                       "ab\xE6\x9D\xB1\xE4\xBA\xAC"
                       "c",
                       "ab \xE6\x9D\xB1  \xE4\xBA\xAC c"},
        NormalizerCase{"kana_not_spaced", kDefault, "\xE3\x81\x82\xE3\x81\x84",
                       "\xE3\x81\x82\xE3\x81\x84"},
        NormalizerCase{"no_chinese_chars", Opts(true, false, false, false), "a\xE6\x9D\xB1",
                       "a\xE6\x9D\xB1"},
        NormalizerCase{"final_sigma_not_contextual", kDefault, "\xCE\xA3\xCE\xA3",
                       "\xCF\x83\xCF\x83"},
        NormalizerCase{"hangul_decomposes", Opts(true, true, true, false), "\xEA\xB0\x81",
                       "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"},
        NormalizerCase{"empty", kDefault, "", ""}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(BertNormalizerTest, ReordersKeptMarksByCombiningClass) {
  // U+1D165 (class 216, Mc) after U+1D16D (class 226, Mc): NFD orders them by class.
  BertNormalizer normalizer(Opts(false, false, true, false));
  std::string out;
  normalizer.Normalize("a\xF0\x9D\x85\xAD\xF0\x9D\x85\xA5", &out);
  EXPECT_EQ(out, "a\xF0\x9D\x85\xA5\xF0\x9D\x85\xAD");
}

}  // namespace
}  // namespace sluice::tokenizer
