// BodySource: the request bodies of a run: one fixed body (cache hits after the first), or a
// unique body per request (cache misses), generated from a text or from a body file's "%d"
// placeholders.
// Thread-safety: Next() is const and may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "loadgen_options.h"

namespace sluice::loadgen {

class BodySource {
 public:
  // `run_id` keeps unique bodies unique across runs against a long-lived cache.
  BodySource(const LoadgenOptions& options, std::string run_id);

  // The body of request number `seq` (any numbering that is unique within the run).
  std::string Next(uint64_t seq) const;

 private:
  bool unique_;
  std::string run_id_;
  // Generated bodies: prefix + [" #" + tag] + suffix, where the text sits at the end of prefix.
  // Body files: the file split at each "%d".
  std::string prefix_;
  std::string suffix_;
  bool from_file_;
  std::string file_;
};

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

}  // namespace sluice::loadgen
