#include "engine/batch.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(BatchTest, AddBuildsAFlatVarlenBatch) {
  Batch batch;
  EXPECT_EQ(batch.num_sequences(), 0u);
  EXPECT_EQ(batch.num_tokens(), 0u);

  batch.Add({101, 7592, 102}, {}, true);
  batch.Add({101, 2088, 2003, 2204, 102}, {0, 0, 0, 1, 1}, false);
  batch.Add({101}, {}, true);

  EXPECT_EQ(batch.num_sequences(), 3u);
  EXPECT_EQ(batch.num_tokens(), 9u);
  EXPECT_EQ(batch.input_ids,
            (std::vector<int32_t>{101, 7592, 102, 101, 2088, 2003, 2204, 102, 101}));
  EXPECT_EQ(batch.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(batch.position_ids, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(batch.cu_seqlens, (std::vector<int32_t>{0, 3, 8, 9}));
  EXPECT_EQ(batch.max_seqlen, 5);
  EXPECT_EQ(batch.normalize, (std::vector<uint8_t>{1, 0, 1}));
}

TEST(BatchTest, ClearEmptiesForReuse) {
  Batch batch;
  batch.Add({1, 2, 3, 4}, {}, true);
  batch.Clear();
  EXPECT_EQ(batch.num_sequences(), 0u);
  EXPECT_EQ(batch.num_tokens(), 0u);
  EXPECT_TRUE(batch.cu_seqlens.empty());
  EXPECT_TRUE(batch.position_ids.empty());
  EXPECT_TRUE(batch.normalize.empty());
  EXPECT_EQ(batch.max_seqlen, 0);

  batch.Add({5, 6}, {}, false);
  EXPECT_EQ(batch.cu_seqlens, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(batch.max_seqlen, 2);
}

TEST(BatchTest, CheckLayoutAcceptsWhatAddBuildsAndTheEmptyBatch) {
  Batch batch;
  EXPECT_TRUE(batch.CheckLayout().ok());
  batch.Add({1, 2, 3}, {}, true);
  batch.Add({4}, {1}, false);
  EXPECT_TRUE(batch.CheckLayout().ok());
}

TEST(BatchTest, CheckLayoutNamesEachDisagreement) {
  Batch good;
  good.Add({1, 2, 3}, {}, true);
  good.Add({4, 5}, {}, false);
  struct Case {
    const char* what;
    void (*mutate)(Batch&);
    const char* message;
  };
  const Case cases[] = {
      {"short type ids", [](Batch& b) { b.token_type_ids.pop_back(); }, "4 token type ids"},
      {"short position ids", [](Batch& b) { b.position_ids.clear(); }, "0 position ids"},
      {"missing normalize flag", [](Batch& b) { b.normalize.pop_back(); }, "1 normalize flags"},
      {"tokens without cu_seqlens",
       [](Batch& b) {
         b.cu_seqlens.clear();
         b.normalize.clear();
       },
       "no cu_seqlens"},
      {"cu_seqlens not from 0", [](Batch& b) { b.cu_seqlens[0] = 1; }, "got 1 to 5"},
      {"cu_seqlens short of the tokens", [](Batch& b) { b.cu_seqlens.back() = 4; }, "got 0 to 4"},
      {"empty sequence", [](Batch& b) { b.cu_seqlens[1] = 0; }, "sequence 0 has length 0"},
      {"decreasing cu_seqlens", [](Batch& b) { b.cu_seqlens[1] = 7; }, "sequence 1 has length -2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Batch bad = good;
    c.mutate(bad);
    const Status status = bad.CheckLayout();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status.ToString();
  }
}

TEST(BatchDeathTest, MisusedAddAborts) {
  Batch batch;
  EXPECT_DEATH(batch.Add({}, {}, false), "empty sequence");
  EXPECT_DEATH(batch.Add({1, 2}, {0}, false), "type ids");
}

}  // namespace
}  // namespace sluice
