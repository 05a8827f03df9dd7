#include "engine/encoder_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "safetensors_writer.h"

namespace sluice {
namespace {

using testing::SafetensorsWriter;
using testing::ScopedTempDir;

const std::filesystem::path kMiniLm =
    std::filesystem::path(SLUICE_SOURCE_DIR) / "models" / "all-MiniLM-L6-v2";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(EncoderWeightsTest, BindsRealMiniLm) {
  if (!std::filesystem::exists(kMiniLm / "model.safetensors")) {
    GTEST_SKIP() << kMiniLm << " missing";
  }
  StatusOr<HfConfig> hf = HfConfig::Load(kMiniLm / "config.json");
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  StatusOr<EncoderConfig> config = EncoderConfig::FromHf(*hf);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(kMiniLm);
  ASSERT_TRUE(store.ok()) << store.status().ToString();

  StatusOr<EncoderWeights> weights = EncoderWeights::Bind(**store, *config);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  EXPECT_EQ(weights->word_embeddings.name, "embeddings.word_embeddings.weight");
  EXPECT_EQ(weights->word_embeddings.shape, (std::vector<int64_t>{30522, 384}));
  EXPECT_EQ(weights->word_embeddings.dtype, DType::kF32);
  EXPECT_EQ(weights->position_embeddings.shape, (std::vector<int64_t>{512, 384}));
  EXPECT_EQ(weights->token_type_embeddings.shape, (std::vector<int64_t>{2, 384}));
  ASSERT_EQ(weights->layers.size(), 6u);
  const EncoderLayerWeights& last = weights->layers[5];
  EXPECT_EQ(last.ffn_in_weight.name, "encoder.layer.5.intermediate.dense.weight");
  EXPECT_EQ(last.ffn_in_weight.shape, (std::vector<int64_t>{1536, 384}));
  EXPECT_EQ(last.ffn_out_weight.shape, (std::vector<int64_t>{384, 1536}));
  EXPECT_EQ(last.ffn_ln_bias.name, "encoder.layer.5.output.LayerNorm.bias");

  // LayerNorm weights of a trained model sit near 1: a sanity check that the views hold data.
  std::vector<float> ln(384);
  ASSERT_TRUE(ConvertToFloat32(weights->embeddings_ln_weight, ln).ok());
  float mean = 0;
  for (float v : ln) mean += v / 384;
  EXPECT_GT(mean, 0.5f);
  EXPECT_LT(mean, 1.5f);
}

// A tiny BERT: every tensor name and shape the encoder needs, in one list tests can edit.
struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;
};

EncoderConfig TinyConfig() {
  EncoderConfig c;
  c.model_type = "bert";
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 16;
  c.max_position_embeddings = 12;
  c.type_vocab_size = 2;
  return c;
}

std::vector<Spec> TinyBert(const EncoderConfig& c, const std::string& prefix = "") {
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  std::vector<Spec> specs = {
      {prefix + "embeddings.word_embeddings.weight", {c.vocab_size, h}},
      {prefix + "embeddings.position_embeddings.weight", {c.max_position_embeddings, h}},
      {prefix + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}},
      {prefix + "embeddings.LayerNorm.weight", {h}},
      {prefix + "embeddings.LayerNorm.bias", {h}},
      {prefix + "embeddings.position_ids", {1, c.max_position_embeddings}, DType::kI64},
      {prefix + "pooler.dense.weight", {h, h}},
  };
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = prefix + "encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"query", "key", "value"}) {
      specs.push_back({p + "attention.self." + m + ".weight", {h, h}});
      specs.push_back({p + "attention.self." + m + ".bias", {h}});
    }
    specs.push_back({p + "attention.output.dense.weight", {h, h}});
    specs.push_back({p + "attention.output.dense.bias", {h}});
    specs.push_back({p + "attention.output.LayerNorm.weight", {h}});
    specs.push_back({p + "attention.output.LayerNorm.bias", {h}});
    specs.push_back({p + "intermediate.dense.weight", {i, h}});
    specs.push_back({p + "intermediate.dense.bias", {i}});
    specs.push_back({p + "output.dense.weight", {h, i}});
    specs.push_back({p + "output.dense.bias", {h}});
    specs.push_back({p + "output.LayerNorm.weight", {h}});
    specs.push_back({p + "output.LayerNorm.bias", {h}});
  }
  return specs;
}

Spec* FindSpec(std::vector<Spec>& specs, const std::string& name) {
  for (Spec& s : specs) {
    if (s.name == name) return &s;
  }
  ADD_FAILURE() << "no spec " << name;
  return &specs[0];
}

std::unique_ptr<WeightStore> Store(const ScopedTempDir& tmp, const std::vector<Spec>& specs) {
  SafetensorsWriter w;
  uint32_t seed = 1;
  for (const Spec& s : specs) w.AddRandom(s.name, s.dtype, s.shape, seed++);
  w.WriteTo(tmp.path() / "model.safetensors");
  StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(tmp.path());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

TEST(EncoderWeightsTest, BindsEveryPrefixAndFloatDType) {
  for (const char* prefix : {"", "bert.", "roberta.", "model."}) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(std::string(prefix) + " " + std::string(DTypeName(dtype)));
      ScopedTempDir tmp;
      std::vector<Spec> specs = TinyBert(TinyConfig(), prefix);
      for (Spec& s : specs) {
        if (s.dtype == DType::kF32) s.dtype = dtype;
      }
      std::unique_ptr<WeightStore> store = Store(tmp, specs);
      ASSERT_NE(store, nullptr);
      StatusOr<EncoderWeights> weights = EncoderWeights::Bind(*store, TinyConfig());
      ASSERT_TRUE(weights.ok()) << weights.status().ToString();
      EXPECT_EQ(weights->layers[1].v_bias.name,
                std::string(prefix) + "encoder.layer.1.attention.self.value.bias");
      EXPECT_EQ(weights->layers[1].v_bias.dtype, dtype);
      EXPECT_EQ(weights->word_embeddings.shape, (std::vector<int64_t>{10, 8}));
    }
  }
}

TEST(EncoderWeightsTest, AcceptsGammaBetaLayerNormNames) {
  ScopedTempDir tmp;
  std::vector<Spec> specs = TinyBert(TinyConfig());
  for (Spec& s : specs) {
    const size_t w = s.name.find("LayerNorm.weight");
    if (w != std::string::npos) s.name.replace(w, 16, "LayerNorm.gamma");
    const size_t b = s.name.find("LayerNorm.bias");
    if (b != std::string::npos) s.name.replace(b, 14, "LayerNorm.beta");
  }
  std::unique_ptr<WeightStore> store = Store(tmp, specs);
  ASSERT_NE(store, nullptr);
  StatusOr<EncoderWeights> weights = EncoderWeights::Bind(*store, TinyConfig());
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  EXPECT_EQ(weights->layers[0].attn_ln_weight.name,
            "encoder.layer.0.attention.output.LayerNorm.gamma");
}

TEST(EncoderWeightsTest, NoTokenTypesWhenTypeVocabIsZero) {
  ScopedTempDir tmp;
  EncoderConfig config = TinyConfig();
  std::vector<Spec> specs = TinyBert(config);
  std::erase_if(specs, [](const Spec& s) { return Contains(s.name, "token_type"); });
  config.type_vocab_size = 0;
  std::unique_ptr<WeightStore> store = Store(tmp, specs);
  ASSERT_NE(store, nullptr);
  StatusOr<EncoderWeights> weights = EncoderWeights::Bind(*store, config);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  EXPECT_TRUE(weights->token_type_embeddings.empty());
}

TEST(EncoderWeightsTest, BadWeights) {
  struct Case {
    const char* name;
    void (*edit)(std::vector<Spec>& specs);
    StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"missing_tensor",
       [](std::vector<Spec>& s) {
         std::erase_if(
             s, [](const Spec& x) { return x.name == "encoder.layer.1.attention.self.key.bias"; });
       },
       StatusCode::kDataLoss,
       "lack 1 tensor the encoder needs: encoder.layer.1.attention.self.key.bias"},
      {"missing_layer",
       [](std::vector<Spec>& s) {
         std::erase_if(s, [](const Spec& x) { return Contains(x.name, "layer.1."); });
       },
       StatusCode::kDataLoss,
       "lack 16 tensors the encoder needs: encoder.layer.1.attention.self.query.weight"},
      {"no_embeddings",
       [](std::vector<Spec>& s) {
         std::erase_if(s, [](const Spec& x) { return Contains(x.name, "word_embeddings"); });
       },
       StatusCode::kDataLoss, "no embeddings.word_embeddings.weight"},
      {"wrong_shape",
       [](std::vector<Spec>& s) {
         FindSpec(s, "encoder.layer.0.intermediate.dense.weight")->shape = {8, 16};
       },
       StatusCode::kDataLoss,
       "tensor encoder.layer.0.intermediate.dense.weight has shape [8, 16], but config.json "
       "implies [16, 8]"},
      {"wrong_vocab",
       [](std::vector<Spec>& s) {
         FindSpec(s, "embeddings.word_embeddings.weight")->shape = {11, 8};
       },
       StatusCode::kDataLoss, "embeddings.word_embeddings.weight has shape [11, 8]"},
      {"wrong_rank",
       [](std::vector<Spec>& s) {
         FindSpec(s, "embeddings.LayerNorm.bias")->shape = {1, 8};
       },
       StatusCode::kDataLoss,
       "embeddings.LayerNorm.bias has shape [1, 8], but config.json implies [8]"},
      {"int8_weight",
       [](std::vector<Spec>& s) {
         FindSpec(s, "encoder.layer.1.output.dense.weight")->dtype = DType::kI8;
       },
       StatusCode::kInvalidArgument,
       "unsupported dtype I8 for tensor encoder.layer.1.output.dense.weight"},
      {"f64_weight",
       [](std::vector<Spec>& s) {
         FindSpec(s, "embeddings.position_embeddings.weight")->dtype = DType::kF64;
       },
       StatusCode::kInvalidArgument,
       "unsupported dtype F64 for tensor embeddings.position_embeddings.weight"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedTempDir tmp;
    std::vector<Spec> specs = TinyBert(TinyConfig());
    c.edit(specs);
    std::unique_ptr<WeightStore> store = Store(tmp, specs);
    ASSERT_NE(store, nullptr);
    StatusOr<EncoderWeights> weights = EncoderWeights::Bind(*store, TinyConfig());
    ASSERT_FALSE(weights.ok());
    EXPECT_EQ(weights.status().code(), c.code) << weights.status().ToString();
    EXPECT_TRUE(Contains(weights.status().message(), c.message)) << weights.status().message();
  }
}

TEST(EncoderWeightsTest, ConfigDisagreeingWithWeights) {
  ScopedTempDir tmp;
  std::unique_ptr<WeightStore> store = Store(tmp, TinyBert(TinyConfig()));
  ASSERT_NE(store, nullptr);
  EncoderConfig more_layers = TinyConfig();
  more_layers.num_layers = 3;
  StatusOr<EncoderWeights> weights = EncoderWeights::Bind(*store, more_layers);
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(weights.status().message(), "encoder.layer.2."))
      << weights.status().message();
}

}  // namespace
}  // namespace sluice
