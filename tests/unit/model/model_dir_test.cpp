#include "model/model_dir.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "safetensors_writer.h"

namespace sluice {
namespace {

using testing::SafetensorsWriter;
using testing::ScopedTempDir;
using testing::WriteFile;

const std::filesystem::path kMiniLm =
    std::filesystem::path(SLUICE_SOURCE_DIR) / "models" / "all-MiniLM-L6-v2";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(ModelDirTest, RealMiniLm) {
  if (!std::filesystem::exists(kMiniLm / "config.json")) GTEST_SKIP() << kMiniLm << " missing";
  StatusOr<ModelDir> model = ModelDir::Open(kMiniLm);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->dir, kMiniLm);
  EXPECT_EQ(model->config.model_type(), "bert");
  EXPECT_EQ(model->tokenizer_path, kMiniLm / "tokenizer.json");
  EXPECT_TRUE(model->sentence_transformers);
  EXPECT_EQ(model->pooling, "mean");
  EXPECT_TRUE(model->normalize);
  EXPECT_EQ(model->max_seq_length, 256);
  EXPECT_EQ(model->embedding_dim, 384);
  EXPECT_EQ(model->name, "all-MiniLM-L6-v2");
  EXPECT_EQ(model->revision.size(), 64u);
  EXPECT_EQ(model->revision.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(model->cache_key(), "all-MiniLM-L6-v2@" + model->revision.substr(0, 16));

  // Same directory, same identity; a trailing slash does not change the name.
  StatusOr<ModelDir> again = ModelDir::Open(kMiniLm.string() + "/");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->cache_key(), model->cache_key());
}

constexpr const char* kConfig = R"({"model_type": "bert", "architectures": ["BertModel"],
  "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
  "max_position_embeddings": 64, "vocab_size": 10})";

constexpr const char* kModules = R"([
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
])";

// A small model directory without sentence-transformers files.
void WritePlainModel(const std::filesystem::path& dir) {
  WriteFile(dir / "config.json", kConfig);
  WriteFile(dir / "tokenizer.json", "{}");
  SafetensorsWriter w;
  w.AddRandom("embeddings.word_embeddings.weight", DType::kF32, {10, 8});
  w.WriteTo(dir / "model.safetensors");
}

void WritePooling(const std::filesystem::path& dir, const std::string& mode_key) {
  WriteFile(dir / "modules.json", kModules);
  WriteFile(dir / "1_Pooling" / "config.json",
            R"({"word_embedding_dimension": 8, ")" + mode_key + R"(": true})");
}

TEST(ModelDirTest, PlainHfModelDefaultsToMeanPooling) {
  ScopedTempDir tmp;
  WritePlainModel(tmp.path());
  StatusOr<ModelDir> model = ModelDir::Open(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE(model->sentence_transformers);
  EXPECT_EQ(model->pooling, "mean");
  EXPECT_FALSE(model->normalize);
  EXPECT_EQ(model->embedding_dim, 8);
  EXPECT_EQ(model->max_seq_length, 64);  // max_position_embeddings

  WriteFile(tmp.path() / "tokenizer_config.json", R"({"model_max_length": 32})");
  EXPECT_EQ(ModelDir::Open(tmp.path())->max_seq_length, 32);
  WriteFile(tmp.path() / "tokenizer_config.json", R"({"model_max_length": 1e30})");
  EXPECT_EQ(ModelDir::Open(tmp.path())->max_seq_length, 64);  // "no limit" sentinel
  WriteFile(tmp.path() / "sentence_bert_config.json", R"({"max_seq_length": 48})");
  EXPECT_EQ(ModelDir::Open(tmp.path())->max_seq_length, 48);
}

TEST(ModelDirTest, PoolingModes) {
  struct Case {
    const char* key;
    const char* pooling;
  };
  const Case cases[] = {
      {"pooling_mode_cls_token", "cls"},
      {"pooling_mode_mean_tokens", "mean"},
      {"pooling_mode_max_tokens", "max"},
      {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
      {"pooling_mode_lasttoken", "lasttoken"},
  };
  for (const Case& c : cases) {
    ScopedTempDir tmp;
    WritePlainModel(tmp.path());
    WritePooling(tmp.path(), c.key);
    StatusOr<ModelDir> model = ModelDir::Open(tmp.path());
    ASSERT_TRUE(model.ok()) << c.key << ": " << model.status().ToString();
    EXPECT_EQ(model->pooling, c.pooling);
    EXPECT_FALSE(model->normalize);
    EXPECT_TRUE(model->sentence_transformers);
  }
}

TEST(ModelDirTest, TransformerInASubfolder) {
  ScopedTempDir tmp;
  WritePlainModel(tmp.path() / "0_Transformer");
  WriteFile(tmp.path() / "modules.json",
            R"([{"path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  WriteFile(tmp.path() / "1_Pooling" / "config.json", R"({"pooling_mode_cls_token": true})");
  StatusOr<ModelDir> model = ModelDir::Open(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->dir, tmp.path() / "0_Transformer");
  EXPECT_EQ(model->pooling, "cls");
  EXPECT_TRUE(model->normalize);
  EXPECT_EQ(model->embedding_dim, 8);  // from hidden_size
}

TEST(ModelDirTest, RevisionTracksConfigAndHeaderButNotWeightBytes) {
  ScopedTempDir tmp;
  WritePlainModel(tmp.path());
  const std::string base = ModelDir::Open(tmp.path())->revision;

  SafetensorsWriter same_shape;  // same header, different values
  same_shape.AddRandom("embeddings.word_embeddings.weight", DType::kF32, {10, 8}, /*seed=*/99);
  same_shape.WriteTo(tmp.path() / "model.safetensors");
  EXPECT_EQ(ModelDir::Open(tmp.path())->revision, base);

  SafetensorsWriter f16;
  f16.AddRandom("embeddings.word_embeddings.weight", DType::kF16, {10, 8});
  f16.WriteTo(tmp.path() / "model.safetensors");
  const std::string f16_revision = ModelDir::Open(tmp.path())->revision;
  EXPECT_NE(f16_revision, base);

  WriteFile(tmp.path() / "config.json", std::string(kConfig) + " ");
  EXPECT_NE(ModelDir::Open(tmp.path())->revision, f16_revision);
}

struct BrokenCase {
  const char* name;
  std::function<void(const std::filesystem::path&)> breakit;
  StatusCode code;
  const char* message;
};

TEST(ModelDirTest, BrokenDirectories) {
  using P = const std::filesystem::path&;
  const BrokenCase cases[] = {
      {"no_config", [](P d) { std::filesystem::remove(d / "config.json"); }, StatusCode::kNotFound,
       "config.json not found"},
      {"corrupt_config", [](P d) { WriteFile(d / "config.json", "{\"model_type\": "); },
       StatusCode::kInvalidArgument, "config.json"},
      {"config_is_array", [](P d) { WriteFile(d / "config.json", "[]"); },
       StatusCode::kInvalidArgument, "not a JSON object"},
      {"no_tokenizer", [](P d) { std::filesystem::remove(d / "tokenizer.json"); },
       StatusCode::kNotFound, "tokenizer.json"},
      {"no_weights", [](P d) { std::filesystem::remove(d / "model.safetensors"); },
       StatusCode::kNotFound, "model.safetensors"},
      {"pytorch_only",
       [](P d) {
         std::filesystem::remove(d / "model.safetensors");
         WriteFile(d / "pytorch_model.bin", "pickle");
       },
       StatusCode::kInvalidArgument, "pytorch_model.bin is not supported"},
      {"corrupt_weights_header", [](P d) { WriteFile(d / "model.safetensors", "abc"); },
       StatusCode::kDataLoss, "too small"},
      {"corrupt_modules", [](P d) { WriteFile(d / "modules.json", "[{"); },
       StatusCode::kInvalidArgument, "modules.json is not valid JSON"},
      {"modules_not_array", [](P d) { WriteFile(d / "modules.json", "{}"); },
       StatusCode::kInvalidArgument, "not a JSON array"},
      {"module_without_type", [](P d) { WriteFile(d / "modules.json", R"([{"path": ""}])"); },
       StatusCode::kInvalidArgument, "no \"type\""},
      {"module_path_escapes",
       [](P d) {
         WriteFile(d / "modules.json",
                   R"([{"path": "../x", "type": "sentence_transformers.models.Transformer"}])");
       },
       StatusCode::kInvalidArgument, "leaves the model directory"},
      {"dense_module",
       [](P d) {
         WriteFile(d / "modules.json",
                   R"([{"path": "", "type": "sentence_transformers.models.Transformer"},
                       {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}])");
       },
       StatusCode::kInvalidArgument, "module Dense (\"2_Dense\") is not supported"},
      {"no_pooling_module",
       [](P d) {
         WriteFile(d / "modules.json",
                   R"([{"path": "", "type": "sentence_transformers.models.Transformer"}])");
       },
       StatusCode::kInvalidArgument, "no Pooling module"},
      {"missing_pooling_config",
       [](P d) { std::filesystem::remove(d / "1_Pooling" / "config.json"); }, StatusCode::kNotFound,
       "1_Pooling/config.json"},
      {"no_pooling_mode",
       [](P d) {
         WriteFile(d / "1_Pooling" / "config.json", R"({"pooling_mode_cls_token": false})");
       },
       StatusCode::kInvalidArgument, "enables no pooling mode"},
      {"two_pooling_modes",
       [](P d) {
         WriteFile(d / "1_Pooling" / "config.json",
                   R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true})");
       },
       StatusCode::kInvalidArgument, "combines pooling modes (cls, mean)"},
      {"weighted_mean",
       [](P d) {
         WriteFile(d / "1_Pooling" / "config.json",
                   R"({"pooling_mode_weightedmean_tokens": true})");
       },
       StatusCode::kInvalidArgument, "weightedmean is not supported"},
      {"dimension_mismatch",
       [](P d) {
         WriteFile(d / "1_Pooling" / "config.json",
                   R"({"word_embedding_dimension": 16, "pooling_mode_mean_tokens": true})");
       },
       StatusCode::kInvalidArgument, "differs from hidden_size 8"},
      {"bad_max_seq_length",
       [](P d) { WriteFile(d / "sentence_bert_config.json", R"({"max_seq_length": -1})"); },
       StatusCode::kInvalidArgument, "max_seq_length"},
      {"no_length_anywhere",
       [](P d) { WriteFile(d / "config.json", R"({"model_type": "bert", "hidden_size": 8})"); },
       StatusCode::kInvalidArgument, "maximum sequence length"},
  };
  for (const BrokenCase& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedTempDir tmp;
    WritePlainModel(tmp.path());
    WritePooling(tmp.path(), "pooling_mode_mean_tokens");
    c.breakit(tmp.path());
    StatusOr<ModelDir> model = ModelDir::Open(tmp.path());
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), c.code) << model.status().ToString();
    EXPECT_TRUE(Contains(model.status().message(), c.message)) << model.status().message();
  }
}

TEST(ModelDirTest, MissingOrNonDirectoryPath) {
  ScopedTempDir tmp;
  StatusOr<ModelDir> missing = ModelDir::Open(tmp.path() / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), "nope")) << missing.status().message();

  WriteFile(tmp.path() / "file", "x");
  EXPECT_EQ(ModelDir::Open(tmp.path() / "file").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
