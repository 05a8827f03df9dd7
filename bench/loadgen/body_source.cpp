#include "body_source.h"

#include <fmt/format.h>

#include <iterator>

namespace sluice::loadgen {

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

BodySource::BodySource(const LoadgenOptions& options, std::string run_id)
    : unique_(options.unique),
      run_id_(std::move(run_id)),
      from_file_(options.has_body_file),
      file_(options.body_file_contents) {
  if (from_file_) return;
  // {"model":"m","input":"text"}: split before the closing quote of the input so that the
  // unique tag lands inside the string.
  const std::string quoted = JsonQuote(options.text);
  prefix_ = "{";
  if (!options.model.empty()) prefix_ += "\"model\":" + JsonQuote(options.model) + ",";
  prefix_ += "\"input\":" + quoted.substr(0, quoted.size() - 1);
  suffix_ = "\"}";
}

std::string BodySource::Next(uint64_t seq) const {
  const std::string tag = unique_ ? fmt::format("{}-{}", run_id_, seq) : std::string();
  if (from_file_) {
    if (!unique_) return file_;
    std::string out;
    out.reserve(file_.size() + 16);
    size_t from = 0;
    for (size_t at = file_.find("%d"); at != std::string::npos; at = file_.find("%d", from)) {
      out.append(file_, from, at - from);
      out += tag;
      from = at + 2;
    }
    out.append(file_, from);
    return out;
  }
  if (!unique_) return prefix_ + suffix_;
  return prefix_ + " #" + tag + suffix_;
}

}  // namespace sluice::loadgen
