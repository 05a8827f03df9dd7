// Gauge: a Prometheus gauge, a value that goes up and down (in-flight requests, queue depth).
// Thread-safety: lock-free; every method may be called from any thread.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "metrics/counter.h"

namespace sluice::metrics {

class alignas(64) Gauge {
 public:
  static constexpr std::string_view kTypeName = "gauge";

  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Sub(double v) { value_.fetch_sub(v, std::memory_order_relaxed); }
  void Increment() { Add(1.0); }
  void Decrement() { Sub(1.0); }
  double value() const { return value_.load(std::memory_order_relaxed); }

  void AppendSamples(std::string_view name, std::string_view labels, std::string* out) const {
    AppendSampleLine(name, labels, value(), out);
  }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace sluice::metrics
