// MetricsRegistry: owns every metric of a process and renders them for /metrics in the
// Prometheus text format 0.0.4. Registration validates names, label names and bucket bounds
// and returns pointers that stay valid for the registry's lifetime; callers keep them (or the
// children they look up) and update them lock-free. Families are exposed sorted by name and
// children by label values, so the text is deterministic.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "metrics/counter.h"
#include "metrics/gauge.h"
#include "metrics/histogram.h"
#include "metrics/metric_family.h"

namespace sluice::metrics {

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each Add* returns InvalidArgument for a bad metric or label name (or bounds), and
  // AlreadyExists when the name is taken. Label names must be distinct; histograms may not use
  // "le".
  StatusOr<CounterFamily*> AddCounterFamily(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names);
  StatusOr<GaugeFamily*> AddGaugeFamily(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names);
  StatusOr<HistogramFamily*> AddHistogramFamily(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds);

  // Unlabelled metrics: a family with no labels and its single child, exposed from the start.
  StatusOr<Counter*> AddCounter(std::string_view name, std::string_view help);
  StatusOr<Gauge*> AddGauge(std::string_view name, std::string_view help);
  StatusOr<Histogram*> AddHistogram(std::string_view name, std::string_view help,
                                    std::vector<double> bounds);

  // Metrics read at scrape time from `read`, for values another component already counts
  // (cache statistics, pool sizes). `read` runs under the registry's lock while rendering: it
  // must be cheap and must not call back into the registry.
  Status AddCallbackCounter(std::string_view name, std::string_view help,
                            std::function<double()> read);
  Status AddCallbackGauge(std::string_view name, std::string_view help,
                          std::function<double()> read);

  // The whole registry in text format 0.0.4 (serve with kTextContentType).
  std::string Exposition() const;

 private:
  template <typename Metric>
  StatusOr<MetricFamily<Metric>*> AddFamily(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::function<std::unique_ptr<Metric>()> make);
  Status AddCallback(std::string_view name, std::string_view help, std::string_view type_name,
                     std::function<double()> read);
  // Takes ownership of `family`. REQUIRES: mu_ held and the name free.
  void InsertLocked(std::unique_ptr<MetricFamilyBase> family);
  Status CheckNameFreeLocked(std::string_view name) const;

  mutable std::mutex mu_;
  // Keyed by name; sorted so that Exposition is deterministic. GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<MetricFamilyBase>, std::less<>> families_;
};

}  // namespace sluice::metrics
