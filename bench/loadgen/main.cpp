// sluice-loadgen: open- and closed-loop HTTP load against a loopback sluice server.
//   sluice-loadgen --url 127.0.0.1:8080/v1/embeddings --rate 500 --duration 30 --connections 64
//   sluice-loadgen --url localhost:8080/embed --closed --connections 8 --unique --json
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "load_report.h"
#include "load_runner.h"
#include "loadgen_options.h"

namespace {

using sluice::Status;
using sluice::StatusOr;
using sluice::loadgen::LoadgenOptions;

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return sluice::NotFound(fmt::format("cannot open body file {}", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

int Run(int argc, char** argv) {
  CLI::App app{"sluice-loadgen: HTTP load generator for loopback sluice servers", "sluice-loadgen"};
  LoadgenOptions options;
  std::string url;
  std::string body_file;
  app.add_option("--url", url, "Target: host:port/path or http://host:port/path (loopback)")
      ->required();
  app.add_option("--rate", options.rate, "Open loop: requests per second, sent on schedule");
  app.add_flag("--closed", options.closed_loop,
               "Closed loop: each connection sends back to back (max throughput)");
  app.add_option("--duration", options.duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", options.warmup_s, "Seconds of load before measuring")
      ->capture_default_str();
  app.add_option("--connections", options.connections, "Keep-alive connections")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Client threads")->capture_default_str();
  app.add_option("--timeout", options.timeout_s, "Per-request timeout in seconds")
      ->capture_default_str();
  app.add_option("--body-file", body_file, "Send this file as the body ('%d' -> unique tag)");
  app.add_option("--text", options.text, "Input text of the generated {\"input\": ...} body")
      ->capture_default_str();
  app.add_option("--model", options.model, "Add \"model\" to the generated body");
  app.add_flag("--unique", options.unique,
               "Make every body unique to force cache misses (default: identical bodies)");
  app.add_option("--content-type", options.content_type, "Content-Type header")
      ->capture_default_str();
  app.add_flag("--json", options.json, "Print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  StatusOr<sluice::loadgen::Target> target = sluice::loadgen::ParseTarget(url);
  if (!target.ok()) {
    fmt::print(stderr, "sluice-loadgen: {}\n", target.status().ToString());
    return 2;
  }
  options.target = *target;
  if (!body_file.empty()) {
    StatusOr<std::string> body = ReadFile(body_file);
    if (!body.ok()) {
      fmt::print(stderr, "sluice-loadgen: {}\n", body.status().ToString());
      return 2;
    }
    options.body_file_contents = std::move(body).value();
    options.has_body_file = true;
  }
  StatusOr<sluice::loadgen::LoadReport> report = sluice::loadgen::LoadRunner::Run(options);
  if (!report.ok()) {
    fmt::print(stderr, "sluice-loadgen: {}\n", report.status().ToString());
    return report.status().code() == sluice::StatusCode::kInvalidArgument ? 2 : 1;
  }
  const std::string text =
      options.json ? sluice::loadgen::FormatJson(*report) : sluice::loadgen::FormatTable(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Boost and the standard library may throw (allocation, system errors); report instead of
  // terminating without a word.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice-loadgen: {}\n", e.what());
    return 1;
  }
}
