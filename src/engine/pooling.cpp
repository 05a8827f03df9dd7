#include "engine/pooling.h"

#include <array>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace sluice {
namespace {

struct PoolingSpelling {
  std::string_view name;
  Pooling pooling;
};

// Canonical names first, then the spellings sentence-transformers and TEI use.
constexpr std::array<PoolingSpelling, 11> kSpellings = {{
    {"cls", Pooling::kCls},
    {"mean", Pooling::kMean},
    {"max", Pooling::kMax},
    {"mean_sqrt_len", Pooling::kMeanSqrtLen},
    {"last_token", Pooling::kLastToken},
    {"cls_token", Pooling::kCls},
    {"mean_tokens", Pooling::kMean},
    {"max_tokens", Pooling::kMax},
    {"mean_sqrt_len_tokens", Pooling::kMeanSqrtLen},
    {"lasttoken", Pooling::kLastToken},
    {"last", Pooling::kLastToken},
}};

}  // namespace

std::string_view PoolingName(Pooling pooling) {
  for (const PoolingSpelling& s : kSpellings) {
    if (s.pooling == pooling) return s.name;
  }
  SLUICE_CHECK(false) << "unknown Pooling " << static_cast<int>(pooling);
  return {};
}

StatusOr<Pooling> ParsePooling(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  for (const PoolingSpelling& s : kSpellings) {
    if (s.name == lower) return s.pooling;
  }
  return InvalidArgument(fmt::format(
      "unknown pooling \"{}\"; supported: cls, mean, max, mean_sqrt_len, last_token", name));
}

}  // namespace sluice
