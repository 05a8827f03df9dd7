// EmbedInputs: what a client asked to embed, after JSON parsing: either texts or sequences of
// token ids, never a mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

struct EmbedInputs {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_ids;
  bool is_tokens = false;  // token_ids is used, texts is empty

  size_t size() const { return is_tokens ? token_ids.size() : texts.size(); }
};

}  // namespace sluice
