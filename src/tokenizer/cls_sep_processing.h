// ClsSepProcessing: BertProcessing and RobertaProcessing, which put a classifier token before
// a sequence and a separator after it ([CLS] A [SEP], or <s> A </s>); every type id is 0.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tokenizer/post_processor.h"

namespace sluice::tokenizer {

class ClsSepProcessing final : public PostProcessor {
 public:
  ClsSepProcessing(int32_t cls_id, int32_t sep_id) : cls_id_(cls_id), sep_id_(sep_id) {}

  // Reads {"type": `type`, "cls": ["[CLS]", 101], "sep": ["[SEP]", 102], ...}.
  static StatusOr<std::unique_ptr<ClsSepProcessing>> FromJson(simdjson::dom::object node,
                                                              std::string_view type);

  size_t num_added_single() const override { return 2; }
  void ProcessSingle(const std::vector<int32_t>& content, Encoding* out) const override;

 private:
  int32_t cls_id_;
  int32_t sep_id_;
};

}  // namespace sluice::tokenizer
