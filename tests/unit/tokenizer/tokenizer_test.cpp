#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

const std::filesystem::path kModelDir =
    std::filesystem::path(SLUICE_SOURCE_DIR) / "models" / "all-MiniLM-L6-v2";

class MiniLmTokenizerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::FromFile(kModelDir / "tokenizer.json");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    tokenizer_ = std::move(loaded).value().release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }

  static std::vector<int32_t> Ids(std::string_view text, const EncodeOptions& options = {}) {
    StatusOr<Encoding> encoding = tokenizer_->Encode(text, options);
    EXPECT_TRUE(encoding.ok()) << encoding.status().ToString();
    return encoding.ok() ? encoding->ids : std::vector<int32_t>{};
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* MiniLmTokenizerTest::tokenizer_ = nullptr;

const std::string kFox = "The quick brown fox jumps over the lazy dog.";

// Expected ids from Hugging Face tokenizers 0.23.3 on the same tokenizer.json.
TEST_F(MiniLmTokenizerTest, EncodesAsHuggingFace) {
  struct Case {
    std::string text;
    std::vector<int32_t> ids;
  };
  for (const Case& c : {
           Case{kFox, {101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102}},
           Case{"H\xC3\xA9llo W\xC3\x96RLD, na\xC3\xAFve caf\xC3\xA9!",
                {101, 7592, 2088, 1010, 15743, 7668, 999, 102}},
           Case{"\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83\xAF\xE3\x83\xBC",
                {101, 1879, 1755, 1709, 30262, 30265, 102}},
           Case{"unaffable [MASK] tokenization", {101, 14477, 20961, 3468, 103, 19204, 3989, 102}},
           Case{"PostgreSQL keeps the data.",
                {101, 2695, 17603, 2015, 4160, 2140, 7906, 1996, 2951, 1012, 102}},
           Case{"", {101, 102}},
           Case{std::string(101, 'x'), {101, 100, 102}},
       }) {
    EXPECT_EQ(Ids(c.text), c.ids) << c.text;
  }
}

TEST_F(MiniLmTokenizerTest, TypeIdsAreZero) {
  StatusOr<Encoding> encoding = tokenizer_->Encode(kFox, {});
  ASSERT_TRUE(encoding.ok());
  EXPECT_EQ(encoding->type_ids, std::vector<int32_t>(encoding->ids.size(), 0));
}

TEST_F(MiniLmTokenizerTest, Truncation) {
  struct Case {
    std::string name;
    EncodeOptions options;
    std::vector<int32_t> ids;
  };
  EncodeOptions right;
  right.max_length = 6;
  EncodeOptions left = right;
  left.side = TruncationSide::kLeft;
  EncodeOptions exact;
  exact.max_length = 12;
  EncodeOptions only_specials;
  only_specials.max_length = 2;
  EncodeOptions no_specials;
  no_specials.add_special_tokens = false;
  no_specials.max_length = 4;
  for (const Case& c : {
           Case{"right", right, {101, 1996, 4248, 2829, 4419, 102}},
           Case{"left", left, {101, 1996, 13971, 3899, 1012, 102}},
           Case{"fits_exactly",
                exact,
                {101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102}},
           Case{"only_specials", only_specials, {101, 102}},
           Case{"without_specials", no_specials, {1996, 4248, 2829, 4419}},
       }) {
    EXPECT_EQ(Ids(kFox, c.options), c.ids) << c.name;
  }
}

TEST_F(MiniLmTokenizerTest, LimitRefusesLongTextsWithoutMaxLength) {
  EncodeOptions options;
  options.limit = 11;
  StatusOr<Encoding> encoding = tokenizer_->Encode(kFox, options);
  ASSERT_FALSE(encoding.ok());
  EXPECT_EQ(encoding.status().code(), StatusCode::kTooLarge);

  options.limit = 12;
  EXPECT_TRUE(tokenizer_->Encode(kFox, options).ok());

  options.limit = 1;  // not even room for [CLS] and [SEP]
  encoding = tokenizer_->Encode("", options);
  ASSERT_FALSE(encoding.ok());
  EXPECT_EQ(encoding.status().code(), StatusCode::kTooLarge);

  options.limit = 11;
  options.max_length = 5;  // truncation wins over the limit
  EXPECT_EQ(Ids(kFox, options), (std::vector<int32_t>{101, 1996, 4248, 2829, 102}));
}

TEST_F(MiniLmTokenizerTest, MaxLengthBelowSpecialTokensIsInvalid) {
  EncodeOptions options;
  options.max_length = 1;
  StatusOr<Encoding> encoding = tokenizer_->Encode(kFox, options);
  ASSERT_FALSE(encoding.ok());
  EXPECT_EQ(encoding.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(MiniLmTokenizerTest, InvalidUtf8IsInvalidArgument) {
  for (std::string bad : {"abc\xFF", "\xC0\xAF", "ok \xED\xA0\x80 surrogate", "cut \xE6\x9D"}) {
    StatusOr<Encoding> encoding = tokenizer_->Encode(bad, {});
    ASSERT_FALSE(encoding.ok());
    EXPECT_EQ(encoding.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(encoding.status().message().find("UTF-8"), std::string::npos);
  }
}

TEST_F(MiniLmTokenizerTest, Decodes) {
  StatusOr<std::string> text = tokenizer_->Decode(Ids(kFox));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "the quick brown fox jumps over the lazy dog.");
  text = tokenizer_->Decode({101, 2123, 1005, 1056, 2175, 1010, 2009, 1005, 1055, 2307, 999, 102});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "don ' t go, it ' s great!");
  text = tokenizer_->Decode(Ids("unaffable [MASK] tokenization"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "unaffable tokenization");
}

TEST_F(MiniLmTokenizerTest, DecodeOfUnknownIdIsInvalidArgument) {
  for (int32_t id : {-1, 30522, 1 << 30}) {
    StatusOr<std::string> text = tokenizer_->Decode({101, id});
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(MiniLmTokenizerTest, Vocabulary) {
  EXPECT_EQ(tokenizer_->vocab_size(), 30522u);
  EXPECT_EQ(tokenizer_->num_special_tokens_single(), 2u);
  EXPECT_EQ(tokenizer_->TokenToId("[CLS]"), 101);
  EXPECT_EQ(tokenizer_->TokenToId("hello"), 7592);
  EXPECT_EQ(tokenizer_->TokenToId("Hello"), std::nullopt);
  EXPECT_EQ(tokenizer_->IdToToken(102), "[SEP]");
  EXPECT_EQ(tokenizer_->IdToToken(3468), "##ble");
  EXPECT_EQ(tokenizer_->IdToToken(30522), std::nullopt);
}

TEST_F(MiniLmTokenizerTest, EncodeIsThreadSafe) {
  std::vector<std::string> texts = {kFox, "H\xC3\xA9llo W\xC3\x96RLD", "[CLS] x [SEP]",
                                    std::string(5000, 'a') + " b"};
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : texts) expected.push_back(Ids(text));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        size_t i = static_cast<size_t>(round + t) % texts.size();
        StatusOr<Encoding> encoding = tokenizer_->Encode(texts[i], {});
        if (!encoding.ok() || encoding->ids != expected[i]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

struct BadJsonCase {
  std::string name;
  std::string json;
  std::string message;
};

class BadTokenizerJsonTest : public testing::TestWithParam<BadJsonCase> {};

TEST_P(BadTokenizerJsonTest, IsInvalidArgumentNamingTheProblem) {
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(GetParam().json);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find(GetParam().message), std::string::npos)
      << tokenizer.status().message();
}

constexpr char kModel[] = R"("model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}})";

INSTANTIATE_TEST_SUITE_P(
    Cases, BadTokenizerJsonTest,
    testing::Values(
        BadJsonCase{"not_json", "this is not json", "not valid JSON"},
        BadJsonCase{"truncated_json", R"({"model": {"type": "WordPiece", "vocab": {)",
                    "not valid JSON"},
        BadJsonCase{"not_an_object", "[1, 2, 3]", "must be a JSON object"},
        BadJsonCase{"no_model", R"({"normalizer": null})", "no \"model\""},
        BadJsonCase{"missing_vocab", R"({"model": {"type": "WordPiece"}})", "\"vocab\" is missing"},
        BadJsonCase{"unsupported_model", R"({"model": {"type": "Unigram", "vocab": []}})",
                    "unsupported model type \"Unigram\""},
        BadJsonCase{"unsupported_normalizer",
                    std::string(R"({"normalizer": {"type": "NFKC"}, )") + kModel + "}",
                    "unsupported normalizer type \"NFKC\""},
        BadJsonCase{"unsupported_in_sequence",
                    std::string(R"({"normalizer": {"type": "Sequence", "normalizers": [
                                      {"type": "BertNormalizer"}, {"type": "Precompiled"}]}, )") +
                        kModel + "}",
                    "unsupported normalizer type \"Precompiled\""},
        BadJsonCase{"unsupported_pre_tokenizer",
                    std::string(R"({"pre_tokenizer": {"type": "ByteLevel"}, )") + kModel + "}",
                    "unsupported pre_tokenizer type \"ByteLevel\""},
        BadJsonCase{"unsupported_post_processor",
                    std::string(R"({"post_processor": {"type": "ByteLevel"}, )") + kModel + "}",
                    "unsupported post_processor type \"ByteLevel\""},
        BadJsonCase{"unsupported_decoder",
                    std::string(R"({"decoder": {"type": "Metaspace"}, )") + kModel + "}",
                    "unsupported decoder type \"Metaspace\""},
        BadJsonCase{
            "bad_normalizer_field",
            std::string(R"({"normalizer": {"type": "BertNormalizer", "lowercase": "yes"}, )") +
                kModel + "}",
            "\"lowercase\" must be a boolean"},
        BadJsonCase{"added_token_without_id",
                    std::string(R"({"added_tokens": [{"content": "[X]"}], )") + kModel + "}",
                    "\"id\" is missing"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(TokenizerFileTest, MinimalFileWorks) {
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromJson(std::string("{") + kModel + "}");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  StatusOr<Encoding> encoding = (*tokenizer)->Encode("a b A", {});
  ASSERT_TRUE(encoding.ok());
  // No normalizer, pre-tokenizer or post-processor: the whole text is one unknown word.
  EXPECT_EQ(encoding->ids, (std::vector<int32_t>{0}));
  EXPECT_EQ((*tokenizer)->num_special_tokens_single(), 0u);
}

TEST(TokenizerFileTest, MissingFileIsNotFound) {
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromFile(kModelDir / "no-such-tokenizer.json");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tokenizer.status().message().find("no-such-tokenizer.json"), std::string::npos);
}

TEST(TokenizerFileTest, DirectoryIsInvalidArgument) {
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(kModelDir);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerFileTest, CorruptFileNamesThePath) {
  std::filesystem::path path = std::filesystem::path(testing::TempDir()) / "corrupt.json";
  std::ofstream(path) << "{\"model\": ";
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(path);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find(path.string()), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sluice
