// TemplateProcessing: lays out a single sequence by the "single" template of tokenizer.json,
// e.g. [CLS]:0 $A:0 [SEP]:0, where each special token may stand for several ids.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "tokenizer/post_processor.h"

namespace sluice::tokenizer {

class TemplateProcessing final : public PostProcessor {
 public:
  // One element of a template: the sequence itself, or fixed ids.
  struct Piece {
    bool is_sequence = false;
    std::vector<int32_t> ids;  // the special token's ids when !is_sequence
    int32_t type_id = 0;
  };

  explicit TemplateProcessing(std::vector<Piece> single);

  // Reads {"type": "TemplateProcessing", "single": [...], "special_tokens": {...}}.
  // InvalidArgument when the template names an undefined special token or sequence "B".
  static StatusOr<std::unique_ptr<TemplateProcessing>> FromJson(simdjson::dom::object node);

  size_t num_added_single() const override { return num_added_single_; }
  void ProcessSingle(const std::vector<int32_t>& content, Encoding* out) const override;

 private:
  std::vector<Piece> single_;
  size_t num_added_single_ = 0;
};

}  // namespace sluice::tokenizer
