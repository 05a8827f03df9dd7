#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace sluice::tokenizer {
namespace {

struct Utf8Case {
  std::string name;
  std::string bytes;
  std::optional<size_t> invalid_at;
};

class FindInvalidUtf8Test : public testing::TestWithParam<Utf8Case> {};

TEST_P(FindInvalidUtf8Test, ReportsFirstBadByte) {
  EXPECT_EQ(FindInvalidUtf8(GetParam().bytes), GetParam().invalid_at);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FindInvalidUtf8Test,
    testing::Values(Utf8Case{"empty", "", std::nullopt},
                    Utf8Case{"ascii", "hello world, a longer ascii run", std::nullopt},
                    Utf8Case{"two_three_four_bytes", "\xC3\xA9 \xE6\x9D\xB1 \xF0\x9F\x98\x80",
                             std::nullopt},
                    Utf8Case{"max_code_point", "\xF4\x8F\xBF\xBF", std::nullopt},
                    Utf8Case{"lone_continuation", "abc\x80", 3},
                    Utf8Case{"invalid_lead_ff", "abcdefghij\xFF", 10},
                    Utf8Case{"overlong_two_bytes", "\xC0\xAF", 0},
                    Utf8Case{"overlong_three_bytes", "x\xE0\x80\xAF", 1},
                    Utf8Case{"overlong_four_bytes", "\xF0\x80\x80\xAF", 0},
                    Utf8Case{"surrogate", "ok\xED\xA0\x80", 2},
                    Utf8Case{"past_max", "\xF4\x90\x80\x80", 0},
                    Utf8Case{"lead_f5", "\xF5\x80\x80\x80", 0},
                    Utf8Case{"truncated_at_end", "abcdefgh\xE6\x9D", 8},
                    Utf8Case{"bad_third_byte", "\xE6\x9D\x41", 0},
                    Utf8Case{"nul_is_valid", std::string("a\0b", 3), std::nullopt}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(UnicodeTest, DecodeAndAppendRoundTrip) {
  for (char32_t cp : {0x41u, 0xE9u, 0x6771u, 0x1F600u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, &s);
    size_t pos = 0;
    EXPECT_EQ(DecodeUtf8(s, &pos), cp);
    EXPECT_EQ(pos, s.size());
  }
  EXPECT_EQ(CountCodePoints("a\xC3\xA9\xF0\x9F\x98\x80"), 3u);
}

TEST(UnicodeTest, CharacterClasses) {
  // Rust's White_Space: NBSP and the ideographic space are whitespace, ZWSP and U+180E are not.
  EXPECT_TRUE(IsWhitespace(0xA0));
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_TRUE(IsWhitespace(0x0B));
  EXPECT_FALSE(IsWhitespace(0x200B));
  EXPECT_FALSE(IsWhitespace(0x180E));
  EXPECT_FALSE(IsWhitespace(0x1C));
  // ASCII symbols count as punctuation; other symbols do not.
  EXPECT_TRUE(IsBertPunctuation('$'));
  EXPECT_TRUE(IsBertPunctuation('~'));
  EXPECT_TRUE(IsBertPunctuation(0x3002));   // ideographic full stop
  EXPECT_TRUE(IsBertPunctuation(0xFF01));   // fullwidth !
  EXPECT_FALSE(IsBertPunctuation(0x20AC));  // euro sign
  EXPECT_FALSE(IsBertPunctuation(0x2E43));  // newer than the categories tokenizers uses
  EXPECT_TRUE(IsBertPunctuation(0x166D));   // punctuation in those older categories
  EXPECT_TRUE(IsChineseChar(0x6771));
  EXPECT_TRUE(IsChineseChar(0x20000));
  EXPECT_FALSE(IsChineseChar(0x3042));  // hiragana
  EXPECT_FALSE(IsChineseChar(0xAC00));  // hangul
  EXPECT_TRUE(IsOther(0x200B));
  EXPECT_TRUE(IsOther(0xE000));
  EXPECT_FALSE(IsOther(0x0378));  // unassigned code points are kept
  EXPECT_FALSE(IsOther(0x0890));
  EXPECT_TRUE(IsNonspacingMark(0x301));
  EXPECT_FALSE(IsNonspacingMark(0x1AC0));
}

TEST(UnicodeTest, FullLowercaseMapping) {
  struct Case {
    char32_t cp;
    std::string lower;
  };
  for (const Case& c :
       {Case{'A', "a"}, Case{0x130, "i\xCC\x87"}, Case{0x1E9E, "\xC3\x9F"}, Case{0x3A3, "\xCF\x83"},
        Case{0xA7DC, "\xC6\x9B"}, Case{0x6771, "\xE6\x9D\xB1"}}) {
    std::string out;
    AppendLowercase(c.cp, &out);
    EXPECT_EQ(out, c.lower) << std::hex << static_cast<uint32_t>(c.cp);
  }
}

TEST(UnicodeTest, CanonicalDecomposition) {
  char32_t out[kMaxCanonicalDecomposition];
  ASSERT_EQ(DecomposeCanonical(0xE9, out), 2u);  // é
  EXPECT_EQ(out[0], U'e');
  EXPECT_EQ(out[1], 0x301u);
  ASSERT_EQ(DecomposeCanonical(0x1E69, out), 3u);  // ṩ: s + dot below + dot above
  EXPECT_EQ(out[1], 0x323u);
  ASSERT_EQ(DecomposeCanonical(0xAC01, out), 3u);  // hangul syllable into jamo
  EXPECT_EQ(DecomposeCanonical(0xFB01, out), 1u);  // ﬁ is a compatibility decomposition only
  EXPECT_EQ(DecomposeCanonical(0x11938, out), 1u);
  EXPECT_EQ(CombiningClass(0x301), 230);
  EXPECT_EQ(CombiningClass(0x323), 220);
  EXPECT_EQ(CombiningClass(0x1AC1), 0);
}

}  // namespace
}  // namespace sluice::tokenizer
