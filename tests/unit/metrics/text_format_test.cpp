#include "metrics/text_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace sluice::metrics {
namespace {

struct EscapeCase {
  std::string in;
  std::string help;
  std::string label;
};

class EscapeTest : public ::testing::TestWithParam<EscapeCase> {};

TEST_P(EscapeTest, EscapesPerFormat) {
  std::string help;
  AppendEscapedHelp(GetParam().in, &help);
  EXPECT_EQ(help, GetParam().help);
  std::string label;
  AppendEscapedLabelValue(GetParam().in, &label);
  EXPECT_EQ(label, GetParam().label);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EscapeTest,
    ::testing::Values(EscapeCase{"plain /v1/embeddings", "plain /v1/embeddings",
                                 "plain /v1/embeddings"},
                      EscapeCase{"", "", ""},
                      // HELP keeps double quotes; label values escape them.
                      EscapeCase{"say \"hi\"", "say \"hi\"", "say \\\"hi\\\""},
                      EscapeCase{"C:\\path", "C:\\\\path", "C:\\\\path"},
                      EscapeCase{"two\nlines", "two\\nlines", "two\\nlines"},
                      EscapeCase{"tab\tand \xc3\xa9", "tab\tand \xc3\xa9", "tab\tand \xc3\xa9"}));

struct NumberCase {
  double value;
  std::string text;
};

class NumberTest : public ::testing::TestWithParam<NumberCase> {};

TEST_P(NumberTest, SpellsValues) { EXPECT_EQ(FormatNumber(GetParam().value), GetParam().text); }

INSTANTIATE_TEST_SUITE_P(
    Cases, NumberTest,
    ::testing::Values(NumberCase{0, "0"}, NumberCase{1, "1"}, NumberCase{-2, "-2"},
                      NumberCase{0.25, "0.25"}, NumberCase{0.005, "0.005"},
                      NumberCase{0.1 + 0.2, "0.30000000000000004"},
                      NumberCase{123456789, "123456789"}, NumberCase{1e-6, "1e-06"},
                      NumberCase{std::numeric_limits<double>::infinity(), "+Inf"},
                      NumberCase{-std::numeric_limits<double>::infinity(), "-Inf"},
                      NumberCase{std::nan(""), "NaN"}));

struct NameCase {
  std::string name;
  bool metric_ok;
  bool label_ok;
};

class NameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(NameTest, ValidatesNames) {
  EXPECT_EQ(IsValidMetricName(GetParam().name), GetParam().metric_ok) << GetParam().name;
  EXPECT_EQ(IsValidLabelName(GetParam().name), GetParam().label_ok) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NameTest,
    ::testing::Values(NameCase{"sluice_requests_total", true, true}, NameCase{"_x", true, true},
                      NameCase{"a1", true, true}, NameCase{"ns:sub", true, false},
                      NameCase{"__reserved", true, false}, NameCase{"", false, false},
                      NameCase{"1abc", false, false}, NameCase{"with-dash", false, false},
                      NameCase{"with space", false, false}, NameCase{"caf\xc3\xa9", false, false}));

TEST(TextFormatTest, SampleLines) {
  std::string out;
  AppendSampleLine("up", "", 1, &out);
  AppendSampleLine("x_total", "a=\"b\"", 2.5, &out);
  EXPECT_EQ(out, "up 1\nx_total{a=\"b\"} 2.5\n");
}

}  // namespace
}  // namespace sluice::metrics
