#include "engine/encoder_config.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

HfConfig Parse(const std::string& json) {
  StatusOr<HfConfig> config = HfConfig::Parse(json);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : HfConfig();
}

// The all-MiniLM-L6-v2 config with `extra` fields appended (later keys override earlier ones
// in our parser, as JSON objects with duplicate keys are read in order).
std::string MiniLm(const std::string& extra = "") {
  return R"({"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
    "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
    "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
    "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": 30522)" +
         extra + "}";
}

TEST(EncoderConfigTest, MapsBert) {
  StatusOr<EncoderConfig> config = EncoderConfig::FromHf(Parse(MiniLm()));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->family, EncoderFamily::kBert);
  EXPECT_EQ(config->model_type, "bert");
  EXPECT_EQ(config->vocab_size, 30522);
  EXPECT_EQ(config->hidden_size, 384);
  EXPECT_EQ(config->num_layers, 6);
  EXPECT_EQ(config->num_heads, 12);
  EXPECT_EQ(config->head_dim(), 32);
  EXPECT_EQ(config->intermediate_size, 1536);
  EXPECT_EQ(config->max_position_embeddings, 512);
  EXPECT_EQ(config->type_vocab_size, 2);
  EXPECT_EQ(config->pad_token_id, 0);
  EXPECT_FLOAT_EQ(config->layer_norm_eps, 1e-12f);
  EXPECT_EQ(config->activation, Activation::kGelu);
  EXPECT_EQ(config->position_offset, 0);
  EXPECT_EQ(config->max_sequence_length(), 512);
}

TEST(EncoderConfigTest, MapsRobertaFamilyWithPositionOffset) {
  struct Case {
    const char* model_type;
    const char* architecture;
    int pad_token_id;
  };
  const Case cases[] = {
      {"roberta", "RobertaModel", 1},
      {"xlm-roberta", "XLMRobertaModel", 1},
      {"xlm-roberta", "XLMRobertaForMaskedLM", 1},
      {"camembert", "CamembertModel", 1},
      {"roberta", "RobertaForMaskedLM", 3},
  };
  for (const Case& c : cases) {
    const std::string json = R"({"model_type": ")" + std::string(c.model_type) +
                             R"(", "architectures": [")" + c.architecture + R"("],
      "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 514,
      "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 1,
      "vocab_size": 250002, "layer_norm_eps": 1e-05, "pad_token_id": )" +
                             std::to_string(c.pad_token_id) + "}";
    StatusOr<EncoderConfig> config = EncoderConfig::FromHf(Parse(json));
    ASSERT_TRUE(config.ok()) << c.architecture << ": " << config.status().ToString();
    EXPECT_EQ(config->family, EncoderFamily::kRoberta);
    EXPECT_EQ(config->model_type, c.model_type);
    EXPECT_EQ(config->pad_token_id, c.pad_token_id);
    EXPECT_EQ(config->position_offset, c.pad_token_id + 1);
    EXPECT_EQ(config->max_sequence_length(), 514 - c.pad_token_id - 1);
    EXPECT_EQ(config->type_vocab_size, 1);
    EXPECT_FLOAT_EQ(config->layer_norm_eps, 1e-5f);
  }
}

TEST(EncoderConfigTest, Defaults) {
  // Without pad_token_id, type_vocab_size, hidden_act or layer_norm_eps, transformers' defaults.
  const std::string bert = R"({"model_type": "bert", "hidden_size": 64, "intermediate_size": 256,
    "max_position_embeddings": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
    "vocab_size": 100})";
  StatusOr<EncoderConfig> config = EncoderConfig::FromHf(Parse(bert));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->pad_token_id, 0);
  EXPECT_EQ(config->type_vocab_size, 2);
  EXPECT_EQ(config->activation, Activation::kGelu);
  EXPECT_FLOAT_EQ(config->layer_norm_eps, 1e-12f);

  std::string roberta = bert;
  roberta.replace(roberta.find("\"bert\""), 6, "\"roberta\"");
  config = EncoderConfig::FromHf(Parse(roberta));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->pad_token_id, 1);
  EXPECT_EQ(config->position_offset, 2);

  // model_type may be inferred from the architecture alone.
  std::string no_type = bert;
  no_type.replace(no_type.find("\"model_type\": \"bert\""), 20,
                  "\"architectures\": [\"BertForMaskedLM\"]");
  config = EncoderConfig::FromHf(Parse(no_type));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->model_type, "bert");

  config = EncoderConfig::FromHf(Parse(MiniLm(R"(, "type_vocab_size": 0)")));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->type_vocab_size, 0);
}

TEST(EncoderConfigTest, Activations) {
  struct Case {
    const char* name;
    Activation activation;
  };
  const Case cases[] = {
      {"gelu", Activation::kGelu},
      {"gelu_new", Activation::kGeluTanh},
      {"gelu_pytorch_tanh", Activation::kGeluTanh},
      {"relu", Activation::kRelu},
      {"silu", Activation::kSilu},
      {"swish", Activation::kSilu},
  };
  for (const Case& c : cases) {
    StatusOr<EncoderConfig> config =
        EncoderConfig::FromHf(Parse(MiniLm(R"(, "hidden_act": ")" + std::string(c.name) + "\"")));
    ASSERT_TRUE(config.ok()) << c.name << ": " << config.status().ToString();
    EXPECT_EQ(config->activation, c.activation) << c.name;
  }
}

TEST(EncoderConfigTest, InvalidConfigs) {
  struct Case {
    const char* name;
    std::string json;
    const char* message;
  };
  const Case cases[] = {
      {"unknown_architecture", R"({"model_type": "bert", "architectures": ["MPNetModel"]})",
       "unsupported architecture \"MPNetModel\"; supported encoder architectures: BertModel"},
      {"unknown_model_type", MiniLm(R"(, "model_type": "distilbert", "architectures": [])"),
       "unsupported model_type \"distilbert\"; supported encoder model types: bert, roberta"},
      {"no_type_at_all", R"({"hidden_size": 8})", "no model_type or architectures"},
      {"unknown_activation", MiniLm(R"(, "hidden_act": "quick_gelu")"),
       "unsupported hidden_act \"quick_gelu\"; supported activations: gelu, gelu_new"},
      {"relative_positions", MiniLm(R"(, "position_embedding_type": "relative_key")"),
       "position_embedding_type \"relative_key\""},
      {"heads_do_not_divide", MiniLm(R"(, "num_attention_heads": 7)"),
       "hidden_size 384 is not a multiple of num_attention_heads 7"},
      {"missing_hidden_size",
       R"({"model_type": "bert", "intermediate_size": 4, "max_position_embeddings": 4,
           "num_attention_heads": 1, "num_hidden_layers": 1, "vocab_size": 4})",
       "\"hidden_size\" is missing"},
      {"hidden_size_string", MiniLm(R"(, "hidden_size": "384")"), "\"hidden_size\""},
      {"zero_layers", MiniLm(R"(, "num_hidden_layers": 0)"), "\"num_hidden_layers\" is 0"},
      {"negative_vocab", MiniLm(R"(, "vocab_size": -5)"), "\"vocab_size\" is -5"},
      {"huge_hidden", MiniLm(R"(, "hidden_size": 4294967296)"), "\"hidden_size\" is 4294967296"},
      {"negative_type_vocab", MiniLm(R"(, "type_vocab_size": -1)"), "type_vocab_size"},
      {"pad_outside_vocab", MiniLm(R"(, "pad_token_id": 30522)"),
       "pad_token_id 30522 is outside vocab_size 30522"},
      {"pad_not_integer", MiniLm(R"(, "pad_token_id": "0")"), "pad_token_id"},
      {"bad_eps", MiniLm(R"(, "layer_norm_eps": -1.0)"), "layer_norm_eps"},
      {"roberta_without_positions",
       MiniLm(R"(, "model_type": "roberta", "architectures": [], "pad_token_id": 1,
                 "max_position_embeddings": 2)"),
       "leaves no positions"},
  };
  for (const Case& c : cases) {
    StatusOr<EncoderConfig> config = EncoderConfig::FromHf(Parse(c.json));
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << c.name << ": " << config.status().message();
  }
}

}  // namespace
}  // namespace sluice
