// tokenizer_bench: single-thread Tokenizer::Encode throughput on JSON-lines corpora.
//   tokenizer_bench --model DIR --corpus short=short.jsonl --corpus long=long.jsonl [--json]
// Each corpus line is a JSON string. Prints texts/s, MB/s and tokens/s per corpus.
#include <simdjson.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

struct Result {
  std::string name;
  size_t texts = 0;
  size_t bytes = 0;
  size_t tokens = 0;  // per pass, special tokens included
  double seconds = 0;
  size_t passes = 0;
};

sluice::StatusOr<std::vector<std::string>> ReadCorpus(const std::string& path) {
  simdjson::padded_string contents;
  if (simdjson::padded_string::load(path).get(contents) != simdjson::SUCCESS) {
    return sluice::NotFound("cannot read " + path);
  }
  std::vector<std::string> texts;
  simdjson::dom::parser parser;
  simdjson::dom::document_stream stream;
  if (parser.parse_many(contents).get(stream) != simdjson::SUCCESS) {
    return sluice::InvalidArgument(path + ": not JSON lines");
  }
  for (auto doc : stream) {
    std::string_view text;
    if (doc.get_string().get(text) != simdjson::SUCCESS) {
      return sluice::InvalidArgument(path + ": every line must be a JSON string");
    }
    texts.emplace_back(text);
  }
  return texts;
}

sluice::StatusOr<Result> Measure(const sluice::Tokenizer& tokenizer, const std::string& name,
                                 const std::vector<std::string>& texts, double min_seconds) {
  Result result;
  result.name = name;
  result.texts = texts.size();
  for (const std::string& text : texts) {
    result.bytes += text.size();
    SLUICE_ASSIGN_OR_RETURN(sluice::Encoding encoding, tokenizer.Encode(text, {}));
    result.tokens += encoding.ids.size();  // also the warm-up pass
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  size_t sink = 0;
  do {
    for (const std::string& text : texts) {
      SLUICE_ASSIGN_OR_RETURN(sluice::Encoding encoding, tokenizer.Encode(text, {}));
      sink += encoding.ids.size();
    }
    ++result.passes;
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (result.seconds < min_seconds);
  if (sink != result.tokens * result.passes) return sluice::Internal("encoding is not stable");
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Single-thread tokenizer throughput", "tokenizer_bench"};
  std::string model_dir;
  std::vector<std::string> corpora;
  double min_seconds = 2.0;
  bool json = false;
  app.add_option("--model", model_dir, "Model directory holding tokenizer.json")->required();
  app.add_option("--corpus", corpora, "NAME=FILE.jsonl (repeatable)")->required();
  app.add_option("--min-seconds", min_seconds, "Measure each corpus at least this long");
  app.add_flag("--json", json, "One JSON object per corpus instead of a table");
  CLI11_PARSE(app, argc, argv);

  auto tokenizer = sluice::Tokenizer::FromFile(std::filesystem::path(model_dir) / "tokenizer.json");
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", tokenizer.status().message().c_str());
    return 1;
  }
  if (!json) {
    std::printf("%-10s %8s %12s %10s %14s\n", "corpus", "texts", "texts/s", "MB/s", "tokens/s");
  }
  for (const std::string& spec : corpora) {
    size_t eq = spec.find('=');
    std::string name = eq == std::string::npos ? spec : spec.substr(0, eq);
    std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    auto texts = ReadCorpus(path);
    if (!texts.ok()) {
      std::fprintf(stderr, "tokenizer_bench: %s\n", texts.status().message().c_str());
      return 1;
    }
    auto result = Measure(**tokenizer, name, *texts, min_seconds);
    if (!result.ok()) {
      std::fprintf(stderr, "tokenizer_bench: %s\n", result.status().message().c_str());
      return 1;
    }
    const Result& r = *result;
    double per_second = static_cast<double>(r.passes) / r.seconds;
    double texts_s = static_cast<double>(r.texts) * per_second;
    double mb_s = static_cast<double>(r.bytes) * per_second / 1e6;
    double tokens_s = static_cast<double>(r.tokens) * per_second;
    if (json) {
      std::printf(
          "{\"corpus\":\"%s\",\"texts\":%zu,\"bytes\":%zu,\"tokens\":%zu,\"texts_per_s\":%.1f,"
          "\"mb_per_s\":%.3f,\"tokens_per_s\":%.1f}\n",
          r.name.c_str(), r.texts, r.bytes, r.tokens, texts_s, mb_s, tokens_s);
    } else {
      std::printf("%-10s %8zu %12.0f %10.2f %14.0f\n", r.name.c_str(), r.texts, texts_s, mb_s,
                  tokens_s);
    }
  }
  return 0;
}
