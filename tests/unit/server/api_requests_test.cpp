#include "server/api_requests.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

struct BadBody {
  const char* name;
  std::string body;
  const char* message_part;  // a piece of the error message that tells the client what to fix
};

TEST(ApiRequestsTest, OpenAiAcceptsEveryInputShape) {
  auto text = ParseOpenAiEmbeddingsRequest(R"({"model":"m","input":"hello"})");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text->model, "m");
  EXPECT_FALSE(text->input.is_tokens);
  EXPECT_EQ(text->input.texts, (std::vector<std::string>{"hello"}));
  EXPECT_EQ(text->encoding_format, EncodingFormat::kFloat);
  EXPECT_FALSE(text->dimensions);

  auto texts = ParseOpenAiEmbeddingsRequest(R"({"input":["a","b\u00e9\n"]})");
  ASSERT_TRUE(texts.ok());
  EXPECT_FALSE(texts->model);
  EXPECT_EQ(texts->input.texts, (std::vector<std::string>{"a", "b\xc3\xa9\n"}));

  auto ids = ParseOpenAiEmbeddingsRequest(R"({"input":[101,2023,102]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(ids->input.is_tokens);
  EXPECT_EQ(ids->input.token_ids, (std::vector<std::vector<int32_t>>{{101, 2023, 102}}));

  auto id_lists = ParseOpenAiEmbeddingsRequest(R"({"input":[[101,102],[7]]})");
  ASSERT_TRUE(id_lists.ok());
  EXPECT_EQ(id_lists->input.token_ids, (std::vector<std::vector<int32_t>>{{101, 102}, {7}}));
  EXPECT_EQ(id_lists->input.size(), 2u);

  auto options = ParseOpenAiEmbeddingsRequest(
      R"({"input":"x","encoding_format":"base64","dimensions":64,"user":"u","model":null})");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->encoding_format, EncodingFormat::kBase64);
  EXPECT_EQ(*options->dimensions, 64);
  EXPECT_FALSE(options->model);
}

TEST(ApiRequestsTest, OpenAiRejectsBadBodiesWithAClearMessage) {
  const BadBody cases[] = {
      {"not JSON", "hello", "not valid JSON"},
      {"truncated JSON", R"({"input":"x")", "not valid JSON"},
      {"empty body", "", "empty"},
      {"not an object", R"(["x"])", "JSON object"},
      {"invalid UTF-8", "{\"input\":\"\xff\xfe\"}", "UTF-8"},
      {"missing input", R"({"model":"m"})", "'input' is required"},
      {"null input", R"({"input":null})", "'input' is required"},
      {"number input", R"({"input":42})", "'input' must be"},
      {"object input", R"({"input":{"a":1}})", "'input' must be"},
      {"empty array", R"({"input":[]})", "empty array"},
      {"mixed strings and ids", R"({"input":["a",1]})", "input[1]"},
      {"mixed ids and strings", R"({"input":[1,"a"]})", "input[1]"},
      {"negative id", R"({"input":[1,-5]})", "input[1]"},
      {"float id", R"({"input":[1,2.5]})", "input[1]"},
      {"id over int32", R"({"input":[4294967296]})", "input[0]"},
      {"bad nested id", R"({"input":[[1],[2,"x"]]})", "input[1][1]"},
      {"array of bools", R"({"input":[true]})", "input[0]"},
      {"model not a string", R"({"input":"x","model":3})", "'model' must be a string"},
      {"unknown encoding", R"({"input":"x","encoding_format":"hex"})", "encoding_format"},
      {"zero dimensions", R"({"input":"x","dimensions":0})", "dimensions"},
      {"string dimensions", R"({"input":"x","dimensions":"8"})", "dimensions"},
  };
  for (const BadBody& c : cases) {
    auto r = ParseOpenAiEmbeddingsRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << r.status().message();
  }
}

TEST(ApiRequestsTest, TeiEmbedReadsItsOptions) {
  auto r = ParseTeiEmbedRequest(
      R"({"inputs":["a","b"],"normalize":false,"truncate":true,"truncation_direction":"Left"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inputs.texts.size(), 2u);
  EXPECT_EQ(r->normalize, std::optional<bool>(false));
  EXPECT_EQ(r->truncate, std::optional<bool>(true));
  EXPECT_EQ(r->truncation_direction, TruncationSide::kLeft);

  auto defaults = ParseTeiEmbedRequest(R"({"inputs":"a"})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->normalize);
  EXPECT_FALSE(defaults->truncate);
  EXPECT_EQ(defaults->truncation_direction, TruncationSide::kRight);
}

TEST(ApiRequestsTest, TeiEmbedRejectsBadBodies) {
  const BadBody cases[] = {
      {"missing inputs", R"({"input":"x"})", "'inputs' is required"},
      {"normalize not bool", R"({"inputs":"x","normalize":"yes"})", "'normalize'"},
      {"truncate not bool", R"({"inputs":"x","truncate":1})", "'truncate'"},
      {"bad direction", R"({"inputs":"x","truncation_direction":"Up"})", "truncation_direction"},
  };
  for (const BadBody& c : cases) {
    auto r = ParseTeiEmbedRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << r.status().message();
  }
}

TEST(ApiRequestsTest, TeiTokenizeTakesTextsOnly) {
  auto r = ParseTeiTokenizeRequest(R"({"inputs":["a b"],"add_special_tokens":false})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->inputs, (std::vector<std::string>{"a b"}));
  EXPECT_FALSE(r->add_special_tokens);
  EXPECT_EQ(ParseTeiTokenizeRequest(R"({"inputs":[1,2]})").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
