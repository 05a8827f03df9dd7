// Test helper: parses a JSON literal and keeps its DOM alive for the test's lifetime.
#pragma once

#include <simdjson.h>

#include <string_view>

#include <gtest/gtest.h>

namespace sluice::tokenizer {

class JsonNode {
 public:
  explicit JsonNode(std::string_view json) : text_(json) {
    EXPECT_EQ(parser_.parse(text_).get(root_), simdjson::SUCCESS) << json;
  }
  simdjson::dom::element element() const { return root_; }
  simdjson::dom::object object() const {
    simdjson::dom::object object;
    EXPECT_EQ(root_.get_object().get(object), simdjson::SUCCESS);
    return object;
  }

 private:
  simdjson::padded_string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

}  // namespace sluice::tokenizer
