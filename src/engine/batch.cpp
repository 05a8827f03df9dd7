#include "engine/batch.h"

#include <algorithm>

#include "common/check.h"
#include "fmt/format.h"

namespace sluice {

void Batch::Add(const std::vector<int32_t>& ids, const std::vector<int32_t>& type_ids, bool norm) {
  SLUICE_CHECK(!ids.empty()) << "Batch::Add of an empty sequence";
  SLUICE_CHECK(type_ids.empty() || type_ids.size() == ids.size())
      << "Batch::Add: " << type_ids.size() << " type ids for " << ids.size() << " tokens";
  if (cu_seqlens.empty()) cu_seqlens.push_back(0);
  const auto len = static_cast<int32_t>(ids.size());
  input_ids.insert(input_ids.end(), ids.begin(), ids.end());
  if (type_ids.empty()) {
    token_type_ids.insert(token_type_ids.end(), ids.size(), 0);
  } else {
    token_type_ids.insert(token_type_ids.end(), type_ids.begin(), type_ids.end());
  }
  for (int32_t i = 0; i < len; ++i) position_ids.push_back(i);
  cu_seqlens.push_back(cu_seqlens.back() + len);
  max_seqlen = std::max(max_seqlen, len);
  normalize.push_back(norm ? 1 : 0);
}

void Batch::Clear() {
  input_ids.clear();
  token_type_ids.clear();
  position_ids.clear();
  cu_seqlens.clear();
  max_seqlen = 0;
  normalize.clear();
}

Status Batch::CheckLayout() const {
  const size_t tokens = num_tokens();
  const size_t sequences = num_sequences();
  if (token_type_ids.size() != tokens || position_ids.size() != tokens) {
    return InvalidArgument(
        fmt::format("batch has {} input ids but {} token type ids and {} position ids", tokens,
                    token_type_ids.size(), position_ids.size()));
  }
  if (normalize.size() != sequences) {
    return InvalidArgument(
        fmt::format("batch has {} sequences but {} normalize flags", sequences, normalize.size()));
  }
  if (sequences == 0) {
    return tokens == 0 ? Status::Ok() : InvalidArgument("batch has tokens but no cu_seqlens");
  }
  if (cu_seqlens.front() != 0 || static_cast<size_t>(cu_seqlens.back()) != tokens) {
    return InvalidArgument(fmt::format("cu_seqlens must run from 0 to {} (got {} to {})", tokens,
                                       cu_seqlens.front(), cu_seqlens.back()));
  }
  for (size_t s = 0; s < sequences; ++s) {
    const int64_t length = int64_t{cu_seqlens[s + 1]} - cu_seqlens[s];
    if (length <= 0) {
      return InvalidArgument(
          fmt::format("cu_seqlens must increase strictly: sequence {} has length {}", s, length));
    }
  }
  return Status::Ok();
}

}  // namespace sluice
