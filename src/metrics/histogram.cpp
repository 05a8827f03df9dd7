#include "metrics/histogram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "metrics/counter.h"
#include "metrics/text_format.h"

namespace sluice::metrics {

Status ValidateBucketBounds(std::span<const double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return InvalidArgument(fmt::format("histogram bound {} is not finite (+Inf is implicit)", i));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return InvalidArgument(fmt::format("histogram bounds must increase strictly: {} then {}",
                                         bounds[i - 1], bounds[i]));
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<double>> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    return InvalidArgument(
        fmt::format("exponential buckets need start > 0, factor > 1 and count >= 1; got {}, {}, {}",
                    start, factor, count));
  }
  std::vector<double> bounds;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) bounds.push_back(b);
  SLUICE_RETURN_IF_ERROR(ValidateBucketBounds(bounds));
  return bounds;
}

StatusOr<std::vector<double>> LinearBuckets(double start, double width, int count) {
  if (!(width > 0) || count < 1 || !std::isfinite(start)) {
    return InvalidArgument(
        fmt::format("linear buckets need a finite start, width > 0 and count >= 1; got {}, {}, {}",
                    start, width, count));
  }
  std::vector<double> bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  SLUICE_RETURN_IF_ERROR(ValidateBucketBounds(bounds));
  return bounds;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  SLUICE_CHECK(ValidateBucketBounds(bounds_).ok()) << "Histogram built from unchecked bounds";
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v; NaN compares false everywhere and falls through to +Inf.
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void Histogram::AppendSamples(std::string_view name, std::string_view labels,
                              std::string* out) const {
  const Snapshot s = Snap();
  const std::string bucket_name = fmt::format("{}_bucket", name);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    std::string with_le(labels);
    if (!with_le.empty()) with_le.push_back(',');
    with_le.append("le=\"");
    AppendNumber(i < bounds_.size() ? bounds_[i] : HUGE_VAL, &with_le);
    with_le.push_back('"');
    AppendSampleLine(bucket_name, with_le, static_cast<double>(s.cumulative[i]), out);
  }
  AppendSampleLine(fmt::format("{}_sum", name), labels, s.sum, out);
  AppendSampleLine(fmt::format("{}_count", name), labels, static_cast<double>(s.count), out);
}

}  // namespace sluice::metrics
