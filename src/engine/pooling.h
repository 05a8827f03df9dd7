// Pooling: how token states become one vector per sequence, per the model's
// sentence-transformers pooling config.
#pragma once

#include <string_view>

#include "common/status.h"

namespace sluice {

enum class Pooling {
  kCls,          // the first token's state
  kMean,         // mean over the sequence's tokens
  kMax,          // element-wise max over the tokens
  kMeanSqrtLen,  // sum / sqrt(length)
  kLastToken,    // the last token's state (decoder embedders)
};

// The canonical name: "cls", "mean", "max", "mean_sqrt_len", "last_token".
std::string_view PoolingName(Pooling pooling);
// Parses a canonical name or a sentence-transformers / TEI spelling ("mean_tokens",
// "mean_sqrt_len_tokens", "lasttoken", ...), case-insensitively; InvalidArgument otherwise.
StatusOr<Pooling> ParsePooling(std::string_view name);

}  // namespace sluice
