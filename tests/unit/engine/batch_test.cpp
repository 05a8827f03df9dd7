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

TEST(BatchDeathTest, MisusedAddAborts) {
  Batch batch;
  EXPECT_DEATH(batch.Add({}, {}, false), "empty sequence");
  EXPECT_DEATH(batch.Add({1, 2}, {0}, false), "type ids");
}

}  // namespace
}  // namespace sluice
