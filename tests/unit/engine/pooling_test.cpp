#include "engine/pooling.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(PoolingTest, NamesRoundTrip) {
  for (Pooling p :
       {Pooling::kCls, Pooling::kMean, Pooling::kMax, Pooling::kMeanSqrtLen, Pooling::kLastToken}) {
    StatusOr<Pooling> parsed = ParsePooling(PoolingName(p));
    ASSERT_TRUE(parsed.ok()) << PoolingName(p);
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(PoolingName(Pooling::kMeanSqrtLen), "mean_sqrt_len");
  EXPECT_EQ(PoolingName(Pooling::kLastToken), "last_token");
}

// Every spelling ModelDir produces from a sentence-transformers config parses.
TEST(PoolingTest, ParsesSentenceTransformersSpellings) {
  struct Case {
    const char* name;
    Pooling pooling;
  };
  const Case cases[] = {
      {"cls", Pooling::kCls},
      {"mean", Pooling::kMean},
      {"max", Pooling::kMax},
      {"mean_sqrt_len_tokens", Pooling::kMeanSqrtLen},
      {"lasttoken", Pooling::kLastToken},
      {"mean_tokens", Pooling::kMean},
      {"cls_token", Pooling::kCls},
      {"MEAN", Pooling::kMean},
      {"last_token", Pooling::kLastToken},
  };
  for (const Case& c : cases) {
    StatusOr<Pooling> parsed = ParsePooling(c.name);
    ASSERT_TRUE(parsed.ok()) << c.name;
    EXPECT_EQ(*parsed, c.pooling) << c.name;
  }
}

TEST(PoolingTest, UnknownNameIsInvalidArgument) {
  for (const char* name : {"", "weightedmean", "splade", "avg"}) {
    StatusOr<Pooling> parsed = ParsePooling(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("supported: cls, mean"), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice
