// Batch: the flat, padding-free input every Backend takes. Sequences are concatenated; the
// i-th sequence is tokens [cu_seqlens[i], cu_seqlens[i+1]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace sluice {

struct Batch {
  std::vector<int32_t> input_ids;       // num_tokens
  std::vector<int32_t> token_type_ids;  // num_tokens (all 0 for single-segment inputs)
  std::vector<int32_t> position_ids;    // num_tokens, 0-based within each sequence
  std::vector<int32_t> cu_seqlens;      // num_sequences + 1, starts at 0
  int32_t max_seqlen = 0;               // longest sequence in the batch
  // Per sequence: 1 when the pooled vector is to be L2-normalised by the backend.
  std::vector<uint8_t> normalize;

  size_t num_sequences() const { return cu_seqlens.empty() ? 0 : cu_seqlens.size() - 1; }
  size_t num_tokens() const { return input_ids.size(); }

  // Appends one sequence; position ids are generated from 0, empty `type_ids` means all 0.
  // REQUIRES: ids non-empty; type_ids empty or ids.size() long.
  void Add(const std::vector<int32_t>& ids, const std::vector<int32_t>& type_ids, bool norm);
  // Empties the batch, keeping the vectors' capacity for the next one.
  void Clear();
  // InvalidArgument unless the arrays agree: type and position ids one per token, one normalize
  // flag per sequence, cu_seqlens from 0 to num_tokens() with every sequence at least one token
  // long. Says nothing of the values' ranges or a backend's limits.
  Status CheckLayout() const;
};

}  // namespace sluice
