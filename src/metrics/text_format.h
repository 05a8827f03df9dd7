// Pieces of the Prometheus text exposition format, version 0.0.4: escaping and number
// spelling. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace sluice::metrics {

// The Content-Type a /metrics response carries.
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// HELP text: backslash and newline escaped.
void AppendEscapedHelp(std::string_view help, std::string* out);
// A label value inside double quotes: backslash, double quote and newline escaped.
void AppendEscapedLabelValue(std::string_view value, std::string* out);
// A sample value or bucket bound: shortest round-trip decimal ("1", "0.25", "1e-06"), or
// "+Inf", "-Inf", "NaN".
void AppendNumber(double value, std::string* out);
std::string FormatNumber(double value);
// One sample line: `name{labels} value\n`, or `name value\n` when `labels` (the rendered list
// without braces) is empty.
void AppendSampleLine(std::string_view name, std::string_view labels, double value,
                      std::string* out);

// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
bool IsValidMetricName(std::string_view name);
// Whether `name` is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", which
// Prometheus reserves).
bool IsValidLabelName(std::string_view name);

}  // namespace sluice::metrics
