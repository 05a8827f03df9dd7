#include "load_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

namespace sluice::loadgen {
namespace {

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// Nearest rank: the smallest sample with at least p of the samples at or below it.
uint64_t Percentile(const std::vector<uint64_t>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  size_t rank = static_cast<size_t>(std::ceil(p * n));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(*out), "\\u{:04x}", c);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

LatencySummary Summarize(std::vector<uint64_t>& latencies_ns) {
  LatencySummary s;
  s.count = latencies_ns.size();
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.p50_ms = Ms(Percentile(latencies_ns, 0.50));
  s.p90_ms = Ms(Percentile(latencies_ns, 0.90));
  s.p99_ms = Ms(Percentile(latencies_ns, 0.99));
  s.p999_ms = Ms(Percentile(latencies_ns, 0.999));
  s.max_ms = Ms(latencies_ns.back());
  const long double total =
      std::accumulate(latencies_ns.begin(), latencies_ns.end(), static_cast<long double>(0));
  s.mean_ms = static_cast<double>(total / latencies_ns.size() / 1e6L);
  return s;
}

uint64_t LoadReport::non_2xx() const {
  uint64_t n = 0;
  for (const auto& [status, count] : status_counts) {
    if (status < 200 || status >= 300) n += count;
  }
  return n;
}

uint64_t LoadReport::error_count() const {
  uint64_t n = non_2xx();
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

std::string FormatTable(const LoadReport& r) {
  std::string out;
  auto line = [&](std::string_view key, const std::string& value) {
    fmt::format_to(std::back_inserter(out), "{:<14}{}\n", key, value);
  };
  line("target", r.target);
  line("mode", fmt::format("{}-loop, {} threads, {} connections, {:.1f} s", r.mode, r.threads,
                           r.connections, r.duration_s));
  line("offered", r.mode == "open" ? fmt::format("{:.1f} req/s", r.offered_rps)
                                   : std::string("max (closed loop)"));
  line("achieved", fmt::format("{:.1f} req/s", r.achieved_rps));
  line("requests",
       fmt::format("{} sent, {} responses, {} errors", r.sent, r.responses, r.error_count()));
  std::string statuses;
  for (const auto& [status, count] : r.status_counts) {
    fmt::format_to(std::back_inserter(statuses), "{}{}: {}", statuses.empty() ? "" : "  ", status,
                   count);
  }
  for (const auto& [kind, count] : r.errors) {
    fmt::format_to(std::back_inserter(statuses), "{}{}: {}", statuses.empty() ? "" : "  ", kind,
                   count);
  }
  line("by status", statuses.empty() ? std::string("-") : statuses);
  const LatencySummary& l = r.latency;
  fmt::format_to(std::back_inserter(out), "latency (ms, 2xx, from intended send time)\n");
  fmt::format_to(std::back_inserter(out), "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "p50",
                 "p90", "p99", "p99.9", "max", "mean");
  fmt::format_to(std::back_inserter(out),
                 "  {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n", l.p50_ms,
                 l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms);
  return out;
}

std::string FormatJson(const LoadReport& r) {
  std::string out = "{";
  out += "\"target\":";
  AppendJsonString(r.target, &out);
  out += ",\"mode\":";
  AppendJsonString(r.mode, &out);
  fmt::format_to(std::back_inserter(out),
                 ",\"threads\":{},\"connections\":{},\"duration_s\":{},\"offered_rps\":{},"
                 "\"achieved_rps\":{},\"sent\":{},\"responses\":{},\"errors_total\":{}",
                 r.threads, r.connections, r.duration_s, r.offered_rps, r.achieved_rps, r.sent,
                 r.responses, r.error_count());
  out += ",\"status\":{";
  bool first = true;
  for (const auto& [status, count] : r.status_counts) {
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", first ? "" : ",", status, count);
    first = false;
  }
  out += "},\"errors\":{";
  first = true;
  for (const auto& [kind, count] : r.errors) {
    if (!first) out += ",";
    AppendJsonString(kind, &out);
    fmt::format_to(std::back_inserter(out), ":{}", count);
    first = false;
  }
  const LatencySummary& l = r.latency;
  fmt::format_to(std::back_inserter(out),
                 "}},\"latency_ms\":{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},"
                 "\"p99.9\":{},\"max\":{},\"mean\":{}}}}}\n",
                 l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms);
  return out;
}

}  // namespace sluice::loadgen
