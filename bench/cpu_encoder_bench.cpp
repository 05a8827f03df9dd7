// cpu_encoder_bench: throughput and latency of the CPU backend on an all-MiniLM-L6-v2-shaped
// encoder (random fp32 weights with the model's config) at sequence lengths x batch sizes.
//
//   cpu_encoder_bench [--threads N] [--seconds S] [--csv] [--seq L --batch B]
//
// Prints one row per shape: sentences/s and per-batch latency (median, p90).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"

namespace sluice {
namespace {

EncoderConfig MiniLmConfig() {
  EncoderConfig c;
  c.model_type = "bert";
  c.vocab_size = 30522;
  c.hidden_size = 384;
  c.num_layers = 6;
  c.num_heads = 12;
  c.intermediate_size = 1536;
  c.max_position_embeddings = 512;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12f;
  c.activation = Activation::kGelu;
  return c;
}

// Random fp32 tensors and the views onto them.
class RandomWeights {
 public:
  explicit RandomWeights(const EncoderConfig& c) {
    const int64_t h = c.hidden_size, inter = c.intermediate_size;
    w_.word_embeddings = Make({c.vocab_size, h}, 0.0f);
    w_.position_embeddings = Make({c.max_position_embeddings, h}, 0.0f);
    w_.token_type_embeddings = Make({c.type_vocab_size, h}, 0.0f);
    w_.embeddings_ln_weight = Make({h}, 1.0f);
    w_.embeddings_ln_bias = Make({h}, 0.0f);
    for (int l = 0; l < c.num_layers; ++l) {
      EncoderLayerWeights lw;
      for (TensorView* v : {&lw.q_weight, &lw.k_weight, &lw.v_weight, &lw.attn_out_weight}) {
        *v = Make({h, h}, 0.0f);
      }
      for (TensorView* v : {&lw.q_bias, &lw.k_bias, &lw.v_bias, &lw.attn_out_bias, &lw.attn_ln_bias,
                            &lw.ffn_out_bias, &lw.ffn_ln_bias}) {
        *v = Make({h}, 0.0f);
      }
      lw.attn_ln_weight = Make({h}, 1.0f);
      lw.ffn_ln_weight = Make({h}, 1.0f);
      lw.ffn_in_weight = Make({inter, h}, 0.0f);
      lw.ffn_in_bias = Make({inter}, 0.0f);
      lw.ffn_out_weight = Make({h, inter}, 0.0f);
      w_.layers.push_back(std::move(lw));
    }
  }
  const EncoderWeights& weights() const { return w_; }

 private:
  TensorView Make(std::vector<int64_t> shape, float offset) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    auto& buf = storage_.emplace_back(n);
    std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
    for (float& v : buf) v = offset + dist(rng_);
    TensorView view;
    view.dtype = DType::kF32;
    view.shape = std::move(shape);
    view.data = reinterpret_cast<const std::byte*>(buf.data());
    view.nbytes = n * sizeof(float);
    return view;
  }

  std::mt19937 rng_{42};
  std::vector<std::vector<float>> storage_;
  EncoderWeights w_;
};

struct Result {
  double sentences_per_s, median_ms, p90_ms;
};

Result Measure(CpuBackend& backend, int seq_len, int batch_size, double seconds) {
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
  int threads = 2;
  double seconds = 2.0;
  bool csv = false;
  std::vector<int> seq_lens = {16, 128, 512};
  std::vector<int> batches = {1, 32};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
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
      std::fprintf(
          stderr,
          "usage: cpu_encoder_bench [--threads N] [--seconds S] [--csv] [--seq L --batch B]\n");
      return 2;
    }
  }
  const EncoderConfig config = MiniLmConfig();
  const RandomWeights weights(config);
  auto backend = CpuBackend::Create(config, weights.weights(), Pooling::kMean, {threads});
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  BatchLimits limits;
  limits.max_batch_tokens = 512 * 32;
  limits.max_batch_requests = 32;
  limits.max_sequence_length = 512;
  if (const Status s = (*backend)->Warmup(limits); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  if (csv) {
    std::printf("seq_len,batch,sentences_per_s,median_ms,p90_ms\n");
  } else {
    std::printf("all-MiniLM-L6-v2 shape, random fp32 weights, %d threads\n", threads);
    std::printf("%7s %5s %14s %11s %11s\n", "seq_len", "batch", "sentences/s", "median ms",
                "p90 ms");
  }
  for (int seq_len : seq_lens) {
    for (int batch : batches) {
      const Result r = Measure(**backend, seq_len, batch, seconds);
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
