#include "model/weight_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "safetensors_writer.h"

namespace sluice {
namespace {

using testing::SafetensorsWriter;
using testing::ScopedTempDir;
using testing::WriteFile;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Two shards, "a" and "b" in the first, "c" in the second, and their index.
void WriteShardedModel(const std::filesystem::path& dir) {
  SafetensorsWriter first;
  first.AddFloats("a", DType::kF32, {2}, {1.0f, 2.0f});
  first.AddFloats("b", DType::kBF16, {1}, {3.0f});
  first.WriteTo(dir / "model-00001-of-00002.safetensors");
  SafetensorsWriter second;
  second.AddFloats("c", DType::kF16, {3}, {4.0f, 5.0f, 6.0f});
  second.WriteTo(dir / "model-00002-of-00002.safetensors");
  WriteFile(dir / "model.safetensors.index.json", R"({"metadata":{"total_size":18},"weight_map":{)"
                                                  R"("a":"model-00001-of-00002.safetensors",)"
                                                  R"("b":"model-00001-of-00002.safetensors",)"
                                                  R"("c":"model-00002-of-00002.safetensors"}})");
}

TEST(WeightStoreTest, OpensASingleFile) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.AddFloats("z.weight", DType::kF32, {2}, {1.0f, 2.0f});
  w.AddFloats("a.weight", DType::kF16, {1}, {3.0f});
  w.WriteTo(tmp.path() / "model.safetensors");

  StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"a.weight", "z.weight"}));
  const TensorView* z = (*store)->Find("z.weight");
  ASSERT_NE(z, nullptr);
  std::vector<float> out(2);
  ASSERT_TRUE(ConvertToFloat32(*z, out).ok());
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ((*store)->Find("nope"), nullptr);
}

TEST(WeightStoreTest, OpensShardedModels) {
  ScopedTempDir tmp;
  WriteShardedModel(tmp.path());
  StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"a", "b", "c"}));
  std::vector<float> c(3);
  ASSERT_TRUE(ConvertToFloat32(*(*store)->Find("c"), c).ok());
  EXPECT_EQ(c, (std::vector<float>{4.0f, 5.0f, 6.0f}));

  StatusOr<std::vector<std::filesystem::path>> files = WeightStore::WeightFiles(tmp.path());
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files,
            (std::vector<std::filesystem::path>{tmp.path() / "model-00001-of-00002.safetensors",
                                                tmp.path() / "model-00002-of-00002.safetensors"}));
}

TEST(WeightStoreTest, SingleFileWinsOverIndex) {
  ScopedTempDir tmp;
  WriteShardedModel(tmp.path());
  SafetensorsWriter w;
  w.AddFloats("only", DType::kF32, {1}, {1.0f});
  w.WriteTo(tmp.path() / "model.safetensors");
  StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"only"}));
}

struct BrokenCase {
  const char* name;
  // Breaks a good sharded model in `dir`.
  void (*breakit)(const std::filesystem::path& dir);
  StatusCode code;
  const char* message;
};

TEST(WeightStoreTest, BrokenShardedModels) {
  const BrokenCase cases[] = {
      {"missing_shard",
       [](const std::filesystem::path& dir) {
         std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
       },
       StatusCode::kDataLoss, "model-00002-of-00002.safetensors listed in"},
      {"tensor_missing_from_shard",
       [](const std::filesystem::path& dir) {
         SafetensorsWriter w;
         w.AddFloats("a", DType::kF32, {2}, {1.0f, 2.0f});
         w.WriteTo(dir / "model-00001-of-00002.safetensors");
       },
       StatusCode::kDataLoss, "tensor \"b\" is listed in model.safetensors.index.json"},
      {"tensor_in_two_shards",
       [](const std::filesystem::path& dir) {
         SafetensorsWriter w;
         w.AddFloats("c", DType::kF32, {1}, {1.0f});
         w.AddFloats("a", DType::kF32, {1}, {1.0f});
         w.WriteTo(dir / "model-00002-of-00002.safetensors");
       },
       StatusCode::kDataLoss, "more than one shard"},
      {"corrupt_shard",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model-00002-of-00002.safetensors", "garbage");
       },
       StatusCode::kDataLoss, "model-00002-of-00002.safetensors"},
      {"index_not_json",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model.safetensors.index.json", "{\"weight_map\": ");
       },
       StatusCode::kInvalidArgument, "not valid JSON"},
      {"index_without_weight_map",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model.safetensors.index.json", R"({"metadata":{}})");
       },
       StatusCode::kDataLoss, "weight_map"},
      {"index_empty_weight_map",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model.safetensors.index.json", R"({"weight_map":{}})");
       },
       StatusCode::kDataLoss, "empty"},
      {"shard_outside_dir",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model.safetensors.index.json",
                   R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})");
       },
       StatusCode::kDataLoss, "invalid shard file name"},
      {"shard_name_not_string",
       [](const std::filesystem::path& dir) {
         WriteFile(dir / "model.safetensors.index.json", R"({"weight_map":{"a":1}})");
       },
       StatusCode::kDataLoss, "invalid shard file name"},
  };
  for (const BrokenCase& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedTempDir tmp;
    WriteShardedModel(tmp.path());
    c.breakit(tmp.path());
    StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), c.code) << store.status().ToString();
    EXPECT_TRUE(Contains(store.status().message(), c.message)) << store.status().message();
  }
}

TEST(WeightStoreTest, RefusesPytorchBin) {
  for (const char* name : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    ScopedTempDir tmp;
    WriteFile(tmp.path() / name, "not a pickle");
    StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(store.status().message(), "pytorch_model.bin is not supported (pickle)"))
        << store.status().message();
    EXPECT_TRUE(Contains(store.status().message(), "save_file")) << store.status().message();
    EXPECT_EQ(store.status().message().find('\n'), std::string::npos);
  }
}

TEST(WeightStoreTest, MissingWeightsAndDirectories) {
  ScopedTempDir tmp;
  StatusOr<std::unique_ptr<WeightStore>> none = WeightStore::Open(tmp.path());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(none.status().message(), "model.safetensors")) << none.status().message();

  EXPECT_EQ(WeightStore::Open(tmp.path() / "missing").status().code(), StatusCode::kNotFound);

  WriteFile(tmp.path() / "file", "x");
  EXPECT_EQ(WeightStore::Open(tmp.path() / "file").status().code(), StatusCode::kInvalidArgument);

  // model.safetensors that is a directory.
  std::filesystem::create_directory(tmp.path() / "sub");
  std::filesystem::create_directory(tmp.path() / "sub" / "model.safetensors");
  EXPECT_EQ(WeightStore::Open(tmp.path() / "sub").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
