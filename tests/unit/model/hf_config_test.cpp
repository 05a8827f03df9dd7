#include "model/hf_config.h"

#include <gtest/gtest.h>

#include <string>

#include "safetensors_writer.h"

namespace sluice {
namespace {

using testing::ScopedTempDir;
using testing::WriteFile;

constexpr const char* kMiniLmConfig = R"({
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
  "architectures": ["BertModel"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_size": 384,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "pad_token_id": 0,
  "use_cache": true,
  "id2label": {"0": "LABEL_0"},
  "bad_words_ids": null,
  "huge": 18446744073709551615
})";

TEST(HfConfigTest, ParsesTypedScalars) {
  StatusOr<HfConfig> config = HfConfig::Parse(kMiniLmConfig);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->model_type(), "bert");
  EXPECT_EQ(config->architectures(), (std::vector<std::string>{"BertModel"}));
  EXPECT_EQ(config->GetInt("hidden_size"), 384);
  EXPECT_EQ(config->GetDouble("hidden_size"), 384.0);  // integers read as doubles too
  EXPECT_EQ(config->GetDouble("layer_norm_eps"), 1e-12);
  EXPECT_EQ(config->GetInt("layer_norm_eps"), std::nullopt);  // a double is not an int
  EXPECT_EQ(config->GetString("hidden_act"), "gelu");
  EXPECT_EQ(config->GetString("model_type"), "bert");
  EXPECT_EQ(config->GetBool("use_cache"), true);
  EXPECT_EQ(config->GetString("hidden_size"), std::nullopt);
  EXPECT_EQ(config->GetInt("missing"), std::nullopt);
  EXPECT_EQ(config->GetInt("id2label"), std::nullopt);       // objects are not scalars
  EXPECT_EQ(config->GetInt("bad_words_ids"), std::nullopt);  // null is absent
  EXPECT_EQ(config->GetInt("huge"), std::nullopt);           // above INT64_MAX
  EXPECT_TRUE(config->GetDouble("huge").has_value());
}

TEST(HfConfigTest, EmptyObjectHasNoModelType) {
  StatusOr<HfConfig> config = HfConfig::Parse("{}");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->model_type(), "");
  EXPECT_TRUE(config->architectures().empty());
}

TEST(HfConfigTest, ParseErrors) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{\"hidden_size\": 384", "not valid JSON"},
      {"{\"a\": 1,}", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"\"bert\"", "not a JSON object"},
      {R"({"model_type": 5})", "model_type"},
      {R"({"architectures": "BertModel"})", "architectures"},
      {R"({"architectures": [1]})", "architectures"},
  };
  for (const Case& c : cases) {
    StatusOr<HfConfig> config = HfConfig::Parse(c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << config.status().message();
  }
}

TEST(HfConfigTest, LoadReadsFilesAndNamesThemInErrors) {
  ScopedTempDir tmp;
  WriteFile(tmp.path() / "config.json", kMiniLmConfig);
  StatusOr<HfConfig> config = HfConfig::Load(tmp.path() / "config.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->GetInt("num_attention_heads"), 12);

  EXPECT_EQ(HfConfig::Load(tmp.path() / "missing.json").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(HfConfig::Load(tmp.path()).status().code(), StatusCode::kInvalidArgument);

  WriteFile(tmp.path() / "bad.json", "{oops");
  StatusOr<HfConfig> bad = HfConfig::Load(tmp.path() / "bad.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace sluice
