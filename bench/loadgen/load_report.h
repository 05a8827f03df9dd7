// LoadReport: what one run measured, and its two renderings (a table for people, JSON for
// scripts). Latencies are nanoseconds from each request's intended send time to its response.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sluice::loadgen {

struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};

// Nearest-rank percentiles of `latencies_ns`, which it sorts in place.
LatencySummary Summarize(std::vector<uint64_t>& latencies_ns);

struct LoadReport {
  std::string target;  // host:port/path
  std::string mode;    // "open" or "closed"
  int threads = 0;
  int connections = 0;
  double duration_s = 0;
  double offered_rps = 0;   // requested rate (0 in closed loop)
  double achieved_rps = 0;  // responses that arrived during the window / its duration
  uint64_t sent = 0;        // requests written in the window
  uint64_t responses = 0;   // responses to requests due in the window (any status)
  std::map<int, uint64_t> status_counts;
  // Failures without an HTTP status: "connect", "io", "timeout", "unsent" (still queued when
  // the run ended: the target fell behind the offered rate).
  std::map<std::string, uint64_t> errors;
  LatencySummary latency;  // over responses with a 2xx status

  uint64_t non_2xx() const;
  uint64_t error_count() const;  // non-2xx responses plus failures without a status
};

std::string FormatTable(const LoadReport& report);
std::string FormatJson(const LoadReport& report);

}  // namespace sluice::loadgen
