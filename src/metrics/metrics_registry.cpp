#include "metrics/metrics_registry.h"

#include <fmt/format.h>

#include <set>
#include <utility>

namespace sluice::metrics {
namespace {

Status CheckNames(std::string_view name, const std::vector<std::string>& label_names,
                  bool histogram) {
  if (!IsValidMetricName(name)) {
    return InvalidArgument(fmt::format("invalid metric name \"{}\"", name));
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      return InvalidArgument(fmt::format("metric {}: invalid label name \"{}\"", name, label));
    }
    if (histogram && label == "le") {
      return InvalidArgument(fmt::format("histogram {} may not use the label \"le\"", name));
    }
    if (!seen.insert(label).second) {
      return InvalidArgument(fmt::format("metric {}: label \"{}\" given twice", name, label));
    }
  }
  return Status::Ok();
}

// A family of one unlabelled sample read at scrape time.
class CallbackFamily final : public MetricFamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, std::string_view type_name,
                 std::function<double()> read)
      : MetricFamilyBase(std::move(name), std::move(help), type_name), read_(std::move(read)) {}

 protected:
  void AppendSamples(std::string* out) const override {
    AppendSampleLine(name(), "", read_(), out);
  }

 private:
  const std::function<double()> read_;
};

}  // namespace

void MetricFamilyBase::AppendTo(std::string* out) const {
  out->append("# HELP ");
  out->append(name_);
  out->push_back(' ');
  AppendEscapedHelp(help_, out);
  out->append("\n# TYPE ");
  out->append(name_);
  out->push_back(' ');
  out->append(type_name_);
  out->push_back('\n');
  AppendSamples(out);
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Status MetricsRegistry::CheckNameFreeLocked(std::string_view name) const {
  if (families_.find(name) != families_.end()) {
    return AlreadyExists(fmt::format("metric {} is already registered", name));
  }
  return Status::Ok();
}

void MetricsRegistry::InsertLocked(std::unique_ptr<MetricFamilyBase> family) {
  std::string key = family->name();
  families_.emplace(std::move(key), std::move(family));
}

template <typename Metric>
StatusOr<MetricFamily<Metric>*> MetricsRegistry::AddFamily(
    std::string_view name, std::string_view help, std::vector<std::string> label_names,
    std::function<std::unique_ptr<Metric>()> make) {
  SLUICE_RETURN_IF_ERROR(CheckNames(name, label_names, Metric::kTypeName == Histogram::kTypeName));
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(CheckNameFreeLocked(name));
  auto family = std::make_unique<MetricFamily<Metric>>(std::string(name), std::string(help),
                                                       std::move(label_names), std::move(make));
  MetricFamily<Metric>* raw = family.get();
  InsertLocked(std::move(family));
  return raw;
}

StatusOr<CounterFamily*> MetricsRegistry::AddCounterFamily(std::string_view name,
                                                           std::string_view help,
                                                           std::vector<std::string> label_names) {
  return AddFamily<Counter>(name, help, std::move(label_names),
                            [] { return std::make_unique<Counter>(); });
}

StatusOr<GaugeFamily*> MetricsRegistry::AddGaugeFamily(std::string_view name, std::string_view help,
                                                       std::vector<std::string> label_names) {
  return AddFamily<Gauge>(name, help, std::move(label_names),
                          [] { return std::make_unique<Gauge>(); });
}

StatusOr<HistogramFamily*> MetricsRegistry::AddHistogramFamily(std::string_view name,
                                                               std::string_view help,
                                                               std::vector<std::string> label_names,
                                                               std::vector<double> bounds) {
  SLUICE_RETURN_IF_ERROR(ValidateBucketBounds(bounds).WithContext(std::string(name)));
  return AddFamily<Histogram>(name, help, std::move(label_names), [bounds = std::move(bounds)] {
    return std::make_unique<Histogram>(bounds);
  });
}

StatusOr<Counter*> MetricsRegistry::AddCounter(std::string_view name, std::string_view help) {
  SLUICE_ASSIGN_OR_RETURN(CounterFamily * family, AddCounterFamily(name, help, {}));
  return &family->WithLabels({});
}

StatusOr<Gauge*> MetricsRegistry::AddGauge(std::string_view name, std::string_view help) {
  SLUICE_ASSIGN_OR_RETURN(GaugeFamily * family, AddGaugeFamily(name, help, {}));
  return &family->WithLabels({});
}

StatusOr<Histogram*> MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                                   std::vector<double> bounds) {
  SLUICE_ASSIGN_OR_RETURN(HistogramFamily * family,
                          AddHistogramFamily(name, help, {}, std::move(bounds)));
  return &family->WithLabels({});
}

Status MetricsRegistry::AddCallback(std::string_view name, std::string_view help,
                                    std::string_view type_name, std::function<double()> read) {
  SLUICE_RETURN_IF_ERROR(CheckNames(name, {}, false));
  if (!read) return InvalidArgument(fmt::format("metric {}: empty callback", name));
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(CheckNameFreeLocked(name));
  InsertLocked(std::make_unique<CallbackFamily>(std::string(name), std::string(help), type_name,
                                                std::move(read)));
  return Status::Ok();
}

Status MetricsRegistry::AddCallbackCounter(std::string_view name, std::string_view help,
                                           std::function<double()> read) {
  return AddCallback(name, help, Counter::kTypeName, std::move(read));
}

Status MetricsRegistry::AddCallbackGauge(std::string_view name, std::string_view help,
                                         std::function<double()> read) {
  return AddCallback(name, help, Gauge::kTypeName, std::move(read));
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, family] : families_) family->AppendTo(&out);
  return out;
}

}  // namespace sluice::metrics
