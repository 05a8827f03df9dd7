// MetricFamily: one metric name with its help text and label names, holding one child metric
// per tuple of label values (sluice_requests_total{route="/v1/embeddings",status="200"}).
// Children are created on first use and live as long as the family, so a reference obtained
// once can be kept and used lock-free on the hot path; looking one up takes a shared lock and
// does not allocate once the child exists.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/check.h"
#include "metrics/text_format.h"

namespace sluice::metrics {

// What the registry needs from a family of any metric type.
class MetricFamilyBase {
 public:
  MetricFamilyBase(std::string name, std::string help, std::string_view type_name)
      : name_(std::move(name)), help_(std::move(help)), type_name_(type_name) {}
  virtual ~MetricFamilyBase() = default;
  MetricFamilyBase(const MetricFamilyBase&) = delete;
  MetricFamilyBase& operator=(const MetricFamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }

  // Appends the HELP and TYPE lines and every sample of the family.
  void AppendTo(std::string* out) const;

 protected:
  virtual void AppendSamples(std::string* out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const std::string_view type_name_;  // a static string of the metric type
};

template <typename Metric>
class MetricFamily final : public MetricFamilyBase {
 public:
  // REQUIRES: names already validated by the registry.
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::function<std::unique_ptr<Metric>()> make)
      : MetricFamilyBase(std::move(name), std::move(help), Metric::kTypeName),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  const std::vector<std::string>& label_names() const { return label_names_; }

  // The child for `values` (in label_names() order), created on first use. The reference stays
  // valid for the family's lifetime. REQUIRES: values.size() == label_names().size(); label
  // sets are fixed in code, so a mismatch is a bug, not input.
  Metric& WithLabels(std::span<const std::string_view> values) {
    SLUICE_CHECK(values.size() == label_names_.size())
        << name() << " has " << label_names_.size() << " labels, got " << values.size();
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = children_.find(values);
      if (it != children_.end()) return *it->second.metric;
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second.metric;
    std::vector<std::string> key(values.begin(), values.end());
    Child child{RenderLabels(values), make_()};
    return *children_.emplace(std::move(key), std::move(child)).first->second.metric;
  }
  Metric& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }

 protected:
  void AppendSamples(std::string* out) const override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [values, child] : children_) {
      child.metric->AppendSamples(name(), child.labels, out);
    }
  }

 private:
  struct Child {
    std::string labels;  // rendered once: a="x",b="y"
    std::unique_ptr<Metric> metric;
  };

  // Orders label tuples and lets a span of string_view find a vector<string> key without
  // building one.
  struct TupleLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(
          a.begin(), a.end(), b.begin(), b.end(),
          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };

  std::string RenderLabels(std::span<const std::string_view> values) const {
    std::string out;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(label_names_[i]);
      out.append("=\"");
      AppendEscapedLabelValue(values[i], &out);
      out.push_back('"');
    }
    return out;
  }

  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_;
  mutable std::shared_mutex mu_;
  // Sorted by label values, which makes the exposition deterministic. GUARDED_BY(mu_)
  std::map<std::vector<std::string>, Child, TupleLess> children_;
};

}  // namespace sluice::metrics
