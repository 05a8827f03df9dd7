// LoadgenOptions: what one sluice-loadgen run does, and the checks that turn command-line
// values into a runnable configuration (loopback targets only).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::loadgen {

// A parsed http://host:port/path target.
struct Target {
  std::string host;
  uint16_t port = 80;
  std::string path = "/";
};

// Accepts "host:port/path", "http://host:port/path" (port defaults to 80, path to "/").
// InvalidArgument for https, user info, a bad port, or a host other than localhost or a
// loopback address literal (this tool must not be pointed at other machines).
StatusOr<Target> ParseTarget(std::string_view url);

struct LoadgenOptions {
  Target target;
  // Requests per second over all connections, sent on schedule whatever the responses (open
  // loop). Zero with closed_loop: every connection sends back to back.
  double rate = 0;
  bool closed_loop = false;
  double duration_s = 10;  // measured window
  double warmup_s = 0;     // sent before the window, not recorded
  int connections = 16;
  int threads = 1;
  double timeout_s = 10;  // per request, from the intended send time
  // Body: the bytes of --body-file, or generated {"input": text} (with "model" when set).
  std::string body_file_contents;
  bool has_body_file = false;
  std::string text = "The quick brown fox jumps over the lazy dog.";
  std::string model;
  // Make every body unique (forces cache misses): generated bodies append " #<run>-<seq>" to
  // the text; a body file has each "%d" replaced by "<run>-<seq>".
  bool unique = false;
  std::string content_type = "application/json";
  bool json = false;  // print the report as JSON instead of a table
};

// InvalidArgument unless exactly one of rate > 0 and closed_loop is chosen, durations are
// positive (warmup non-negative), 1 <= threads <= connections <= 10000, and timeout > 0.
Status ValidateOptions(const LoadgenOptions& options);

}  // namespace sluice::loadgen
