#include "tokenizer/post_processor.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "json_node.h"

namespace sluice::tokenizer {
namespace {

struct ProcessCase {
  std::string name;
  std::string json;
  size_t added;
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

class PostProcessorTest : public testing::TestWithParam<ProcessCase> {};

TEST_P(PostProcessorTest, WrapsSequence) {
  JsonNode node(GetParam().json);
  StatusOr<std::unique_ptr<PostProcessor>> processor = PostProcessor::FromJson(node.element());
  ASSERT_TRUE(processor.ok()) << processor.status().ToString();
  EXPECT_EQ((*processor)->num_added_single(), GetParam().added);
  Encoding encoding;
  (*processor)->ProcessSingle({7, 8, 9}, &encoding);
  EXPECT_EQ(encoding.ids, GetParam().ids);
  EXPECT_EQ(encoding.type_ids, GetParam().type_ids);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PostProcessorTest,
    testing::Values(
        ProcessCase{"template_bert",
                    R"({"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                   {"Sequence": {"id": "A", "type_id": 0}},
                                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                        "pair": [],
                        "special_tokens": {
                          "[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]},
                          "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}})",
                    2,
                    {101, 7, 8, 9, 102},
                    {0, 0, 0, 0, 0}},
        ProcessCase{"template_multi_id_token_and_type_ids",
                    R"({"type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": "<bos>", "type_id": 2}},
                                   {"Sequence": {"id": "A", "type_id": 1}}],
                        "special_tokens": {"<bos>": {"id": "<bos>", "ids": [1, 2],
                                                     "tokens": ["<", "bos>"]}}})",
                    2,
                    {1, 2, 7, 8, 9},
                    {2, 2, 1, 1, 1}},
        ProcessCase{"template_sequence_only",
                    R"({"type": "TemplateProcessing",
                        "single": [{"Sequence": {"id": "A", "type_id": 0}}]})",
                    0,
                    {7, 8, 9},
                    {0, 0, 0}},
        ProcessCase{"bert_processing",
                    R"({"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]})",
                    2,
                    {101, 7, 8, 9, 102},
                    {0, 0, 0, 0, 0}},
        ProcessCase{"roberta_processing",
                    R"({"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                        "trim_offsets": true, "add_prefix_space": true})",
                    2,
                    {0, 7, 8, 9, 2},
                    {0, 0, 0, 0, 0}}),
    [](const auto& test_info) { return test_info.param.name; });

struct BadCase {
  std::string name;
  std::string json;
  std::string message;
};

class BadPostProcessorTest : public testing::TestWithParam<BadCase> {};

TEST_P(BadPostProcessorTest, IsInvalidArgument) {
  JsonNode node(GetParam().json);
  StatusOr<std::unique_ptr<PostProcessor>> processor = PostProcessor::FromJson(node.element());
  ASSERT_FALSE(processor.ok());
  EXPECT_EQ(processor.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(processor.status().message().find(GetParam().message), std::string::npos)
      << processor.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadPostProcessorTest,
    testing::Values(
        BadCase{"unsupported_type", R"({"type": "ByteLevel"})",
                "unsupported post_processor type \"ByteLevel\""},
        BadCase{"missing_type", R"({"single": []})", "\"type\" is missing"},
        BadCase{"undefined_special_token",
                R"({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}]})",
                "\"[CLS]\" is not defined"},
        BadCase{"sequence_b_in_single",
                R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "B"}}]})",
                "only use sequence A"},
        BadCase{"unknown_piece", R"({"type": "TemplateProcessing", "single": [{"Other": {}}]})",
                "Sequence or SpecialToken"},
        BadCase{"bert_bad_pair", R"({"type": "BertProcessing", "sep": ["[SEP]"], "cls": ["a", 1]})",
                "[token, id] pair"}),
    [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace sluice::tokenizer
