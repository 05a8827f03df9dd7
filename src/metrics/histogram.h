// Histogram: a Prometheus histogram with fixed upper bounds (`le`), plus the implicit +Inf
// bucket, a sum and a count. Observing is lock-free: one relaxed increment of the bucket and
// one atomic add to the sum. A scrape racing with Observe may see the sum one observation
// ahead of or behind the buckets; _count is derived from the buckets so that it always equals
// the +Inf bucket.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::metrics {

// InvalidArgument unless `bounds` are finite and strictly increasing (empty is allowed: only
// the +Inf bucket).
Status ValidateBucketBounds(std::span<const double> bounds);
// start, start*factor, ..., `count` bounds. REQUIRES: start > 0, factor > 1, count >= 1.
StatusOr<std::vector<double>> ExponentialBuckets(double start, double factor, int count);
// start, start+width, ..., `count` bounds. REQUIRES: width > 0, count >= 1.
StatusOr<std::vector<double>> LinearBuckets(double start, double width, int count);
// Request latency in seconds, 0.5 ms to 10 s: fits HTTP and per-stage timings.
std::vector<double> DefaultLatencyBuckets();

class alignas(64) Histogram {
 public:
  static constexpr std::string_view kTypeName = "histogram";

  // REQUIRES: ValidateBucketBounds(bounds).ok() (the registry checks before constructing).
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `v` in the first bucket whose bound is >= v (NaN lands in +Inf only).
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // bounds().size() + 1 entries, the last being +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;
  const std::vector<double>& bounds() const { return bounds_; }

  // Appends the _bucket lines (with `le` after `labels`), _sum and _count.
  void AppendSamples(std::string_view name, std::string_view labels, std::string* out) const;

 private:
  const std::vector<double> bounds_;
  // Per bucket, not cumulative; bounds_.size() + 1 slots.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace sluice::metrics
