// cpu_encoder_bench: throughput and latency of the CPU backend on a real model directory
// (default models/all-MiniLM-L6-v2) at sequence lengths x batch sizes, random token ids.
//
//   cpu_encoder_bench [--model DIR] [--threads N] [--seconds S] [--csv] [--seq L --batch B]
//
// Prints one row per shape: sentences/s and per-batch latency (median, p90).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/model_loader.h"

namespace sluice {
namespace {

struct Result {
  double sentences_per_s, median_ms, p90_ms;
};

Result Measure(Backend& backend, int seq_len, int batch_size, double seconds) {
  std::mt19937 rng(seq_len * 1000 + batch_size);
  std::uniform_int_distribution<int32_t> id(1000, 29999);
  Batch batch;
  for (int s = 0; s < batch_size; ++s) {
    std::vector<int32_t> ids(static_cast<size_t>(seq_len));
    for (auto& t : ids) t = id(rng);
    ids.front() = 101;  // [CLS] ... [SEP], as a tokenizer would produce
    ids.back() = 102;
    batch.Add(ids, std::vector<int32_t>(ids.size(), 0), true);
  }
  std::vector<float> out;
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 2; ++i) {
    const Status s = backend.Embed(batch, &out);
    if (!s.ok()) {
      std::fprintf(stderr, "embed failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  std::vector<double> ms;
  const auto start = Clock::now();
  while (ms.size() < 5 || std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    const auto t0 = Clock::now();
    (void)backend.Embed(batch, &out);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p90 = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  return {batch_size * 1000.0 / median, median, p90};
}

int Main(int argc, char** argv) {
  std::string model_dir = "models/all-MiniLM-L6-v2";
  int threads = 2;
  double seconds = 2.0;
  bool csv = false;
  std::vector<int> seq_lens = {16, 128, 512};
  std::vector<int> batches = {1, 32};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
      model_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--seq") == 0 && i + 1 < argc) {
      seq_lens = {std::atoi(argv[++i])};
    } else if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
      batches = {std::atoi(argv[++i])};
    } else if (std::strcmp(argv[i], "--csv") == 0) {
      csv = true;
    } else {
      std::fprintf(stderr,
                   "usage: cpu_encoder_bench [--model DIR] [--threads N] [--seconds S] [--csv] "
                   "[--seq L --batch B]\n");
      return 2;
    }
  }
  LoadOptions load;
  load.model_dir = model_dir;
  load.cpu_threads = threads;
  load.limits.max_batch_tokens = 512 * 32;
  load.limits.max_batch_requests = 32;
  load.limits.max_sequence_length = 512;
  StatusOr<LoadedModel> model = LoadModel(load);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  if (csv) {
    std::printf("seq_len,batch,sentences_per_s,median_ms,p90_ms\n");
  } else {
    std::printf("%s (fp32, random token ids), %d threads\n", model->dir.name.c_str(), threads);
    std::printf("%7s %5s %14s %11s %11s\n", "seq_len", "batch", "sentences/s", "median ms",
                "p90 ms");
  }
  for (int seq_len : seq_lens) {
    for (int batch : batches) {
      const Result r = Measure(*model->backend, seq_len, batch, seconds);
      if (csv) {
        std::printf("%d,%d,%.2f,%.3f,%.3f\n", seq_len, batch, r.sentences_per_s, r.median_ms,
                    r.p90_ms);
      } else {
        std::printf("%7d %5d %14.1f %11.3f %11.3f\n", seq_len, batch, r.sentences_per_s,
                    r.median_ms, r.p90_ms);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) { return sluice::Main(argc, argv); }
