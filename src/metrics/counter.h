// Counter: a Prometheus counter, a value that only goes up (requests, errors, bytes).
// Thread-safety: lock-free; Increment and value may be called from any thread.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "common/check.h"
#include "metrics/text_format.h"

namespace sluice::metrics {

// Aligned to a cache line so that hot counters created one after another do not share one.
class alignas(64) Counter {
 public:
  static constexpr std::string_view kTypeName = "counter";

  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // REQUIRES: v >= 0 (a counter that went down would read as a process restart).
  void Increment(double v = 1.0) {
    SLUICE_CHECK(v >= 0) << "Counter::Increment by a negative amount or NaN";
    value_.fetch_add(v, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

  // Appends `name{labels} value\n`; `labels` is the rendered label list without braces.
  void AppendSamples(std::string_view name, std::string_view labels, std::string* out) const;

 private:
  std::atomic<double> value_{0.0};
};

inline void Counter::AppendSamples(std::string_view name, std::string_view labels,
                                   std::string* out) const {
  AppendSampleLine(name, labels, value(), out);
}

}  // namespace sluice::metrics
