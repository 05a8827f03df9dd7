// PostProcessor: adds the special tokens around an encoded sequence and assigns type ids
// (tokenizer.json "post_processor"). Implementations are immutable and thread-safe.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace sluice::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;

  // Number of ids Process() adds to a single sequence.
  virtual size_t num_added_single() const = 0;
  // Writes `content` with the special tokens around it to `*out` (ids and type ids).
  virtual void ProcessSingle(const std::vector<int32_t>& content, Encoding* out) const = 0;

  // Builds the post-processor a tokenizer.json "post_processor" node describes
  // (TemplateProcessing, BertProcessing, RobertaProcessing). InvalidArgument names an
  // unsupported "type".
  static StatusOr<std::unique_ptr<PostProcessor>> FromJson(simdjson::dom::element node);
};

}  // namespace sluice::tokenizer
