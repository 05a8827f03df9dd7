#include "backends/model_loader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(DeviceSpecTest, GpuListsNameEachOrdinalOnce) {
  auto two = DeviceSpec::ParseGpuList("0,1");
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].ToString(), "cuda:0");
  EXPECT_EQ((*two)[1].ToString(), "cuda:1");
  auto one = DeviceSpec::ParseGpuList("3");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)[0].index, 3);
}

TEST(DeviceSpecTest, MalformedGpuListsAreInvalidArguments) {
  for (const char* text : {"", ",", "0,", ",1", "0,,1", "a", "-1", "0,0", "1, 2", "cuda:0"}) {
    EXPECT_EQ(DeviceSpec::ParseGpuList(text).status().code(), StatusCode::kInvalidArgument)
        << "'" << text << "'";
  }
}

#ifndef SLUICE_TEST_WITH_CUDA
TEST(DeviceSpecTest, AllGpusWithoutTheCudaBackendIsUnavailable) {
  EXPECT_EQ(DeviceSpec::ParseGpuList("all").status().code(), StatusCode::kUnavailable);
}
#endif

TEST(LoadReplicasTest, OneBackendPerDeviceAndNoneIsAnError) {
  LoadOptions options;
  options.model_dir = std::string(SLUICE_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
  options.cpu_threads = 1;
  options.limits.max_sequence_length = 256;
  EXPECT_EQ(LoadReplicas(options, {}).status().code(), StatusCode::kInvalidArgument);
  std::vector<DeviceSpec> devices(2);  // two CPU replicas
  auto loaded = LoadReplicas(options, devices);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->backends.size(), 2u);
  EXPECT_NE(loaded->backends[0].get(), loaded->backends[1].get());
  EXPECT_EQ(loaded->backends[1]->embedding_dim(), 384);
  EXPECT_NE(loaded->tokenizer, nullptr);
  EXPECT_EQ(loaded->dir.name, "all-MiniLM-L6-v2");
}

}  // namespace
}  // namespace sluice
