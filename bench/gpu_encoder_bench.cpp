// Times the CUDA backend on a Hugging Face model directory (a BERT-family encoder, e.g. one
// written by tools/make_random_model.py), loaded as the server loads it (ModelDir, WeightStore,
// EncoderWeights::Bind), over random token ids, for every (batch, length) asked for. Per shape,
// after warm-up calls, it prints one JSON line: median wall time of Embed() end to end (pack,
// upload, forward, pooled vectors back), median GPU time of the forward pass (CUDA events), and
// the wall time per batch when batches are pipelined two at a time through Submit()/Collect().
//
// --profile adds, per shape, the GPU time of each kind of op (events between ops) as a JSON
// line; --gemm-sweep N times the heuristic's first N cuBLASLt algorithms on each linear layer's
// shape at that token count and prints one JSON line per algorithm.
//
// Usage: gpu_encoder_bench --model DIR [--dtype f16|bf16] [--seqs 1,32,256]
//                          [--lens 32,128,512] [--seconds S] [--graph-max-tokens N]
//                          [--tune-candidates N] [--tune-custom 0|1] [--tune-custom-rows N]
//                          [--residual-in-gemm 0|1]
//                          [--out-bias-in-ln 0|1] [--qkv-bias-in-attention 0|1]
//                          [--hopper-attention 0|1]
//                          [--profile 0|1] [--gemm-sweep N] [--fp8 0|1] [--fp8-fast 0|1]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/device_arena.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"
#include "engine/pooling.h"
#include "model/model_dir.h"
#include "model/weight_store.h"

namespace sluice::cuda {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int> ParseList(const char* text) {
  std::vector<int> out;
  for (const char* p = text; *p != '\0';) {
    out.push_back(std::atoi(p));
    p = std::strchr(p, ',');
    if (p == nullptr) break;
    ++p;
  }
  return out;
}

Batch RandomBatch(int seqs, int len, int vocab, std::mt19937& rng) {
  Batch batch;
  batch.cu_seqlens = {0};
  for (int s = 0; s < seqs; ++s) {
    for (int t = 0; t < len; ++t) {
      batch.input_ids.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab)));
      batch.token_type_ids.push_back(0);
      batch.position_ids.push_back(t);
    }
    batch.cu_seqlens.push_back(batch.cu_seqlens.back() + len);
    batch.normalize.push_back(1);
  }
  batch.max_seqlen = len;
  return batch;
}

int Fail(const Status& s, const char* what) {
  fmt::print(stderr, "{}: {}\n", what, s.ToString());
  return 1;
}

// Device buffers of random 16-bit values for the GEMM sweep.
class SweepBuffers {
 public:
  static StatusOr<SweepBuffers> Create(int device, size_t max_elements, CudaDType dtype) {
    SweepBuffers b;
    SLUICE_ASSIGN_OR_RETURN(b.arena_, DeviceArena::Create(device, 0));
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> host(max_elements);
    for (int i = 0; i < 4; ++i) {
      // x ~ N(0, 1) as after a LayerNorm; weights ~ N(0, 0.02) as BERT initialises them.
      const float scale = i == 1 ? 0.02f : 1.0f;
      for (uint16_t& v : host) {
        const float f = normal(rng) * scale;
        v = dtype == CudaDType::kF16 ? static_cast<__half_raw>(__float2half_rn(f)).x
                                     : static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(f)).x;
      }
      SLUICE_ASSIGN_OR_RETURN(DeviceBuffer buffer, b.arena_->Allocate(max_elements * 2));
      if (cudaMemcpy(buffer.data(), host.data(), max_elements * 2, cudaMemcpyHostToDevice) !=
          cudaSuccess) {
        return Internal("upload of sweep operands failed");
      }
      b.buffers_.push_back(std::move(buffer));
    }
    return b;
  }
  void* x() const { return buffers_[0].data(); }
  void* w() const { return buffers_[1].data(); }
  void* residual() const { return buffers_[2].data(); }
  void* y() const { return buffers_[3].data(); }

 private:
  std::unique_ptr<DeviceArena> arena_;
  std::vector<DeviceBuffer> buffers_;
};

// Times cuBLASLt's candidates for each linear layer of the encoder at `rows` tokens.
Status SweepGemms(CudaBackend& b, const EncoderConfig& c, CudaDType dtype, int rows, int candidates,
                  int seqs, int len) {
  const int h = c.hidden_size;
  const int inter = c.intermediate_size;
  const size_t widest = std::max<size_t>(3 * static_cast<size_t>(h), static_cast<size_t>(inter));
  SLUICE_ASSIGN_OR_RETURN(SweepBuffers buf,
                          SweepBuffers::Create(0, static_cast<size_t>(rows) * widest, dtype));
  SLUICE_ASSIGN_OR_RETURN(CudaStream stream, CudaStream::Create());
  static const char* kEpilogues[] = {"none", "bias", "bias_gelu", "bias_relu"};
  struct Layer {
    const char* name;
    int in, out;
    GemmEpilogue epilogue;
    bool residual;
  };
  const Layer layers[] = {
      {"qkv", h, 3 * h, GemmEpilogue::kBias, false},
      {"qkv", h, 3 * h, GemmEpilogue::kNone, false},
      {"attn_out", h, h, GemmEpilogue::kNone, false},
      {"attn_out", h, h, GemmEpilogue::kBias, false},
      {"attn_out", h, h, GemmEpilogue::kBias, true},
      {"ffn_in", h, inter, GemmEpilogue::kBiasGelu, false},
      {"ffn_in", h, inter, GemmEpilogue::kBias, false},
      {"ffn_in", h, inter, GemmEpilogue::kNone, false},
      {"ffn_out", inter, h, GemmEpilogue::kNone, false},
      {"ffn_out", inter, h, GemmEpilogue::kBias, false},
      {"ffn_out", inter, h, GemmEpilogue::kBias, true},
  };
  for (const Layer& l : layers) {
    LinearArgs args;
    args.dtype = dtype;
    args.rows = rows;
    args.in_features = l.in;
    args.out_features = l.out;
    args.x = buf.x();
    args.w = buf.w();
    args.bias = l.epilogue == GemmEpilogue::kNone ? nullptr : buf.w();
    args.y = buf.y();
    args.epilogue = l.epilogue;
    args.residual = l.residual ? buf.residual() : nullptr;
    const int reps = std::clamp(static_cast<int>(2e9 / (2.0 * rows * l.in * l.out)), 2, 50);
    SLUICE_ASSIGN_OR_RETURN(std::vector<GemmCandidate> found,
                            b.gemm().TimeCandidates(args, stream.get(), candidates, reps));
    const double flop = 2.0 * rows * l.in * l.out;
    for (const GemmCandidate& g : found) {
      fmt::print(
          "{{\"gemm\": \"{}\", \"epilogue\": \"{}\", \"seqs\": {}, \"len\": {}, \"m\": {}, "
          "\"k\": {}, \"n\": {}, \"residual\": {}, \"rank\": {}, \"ms\": {:.4f}, \"tflops\": "
          "{:.0f}, "
          "\"chosen\": {}, \"algo\": \"{}\"}}\n",
          l.name, kEpilogues[static_cast<int>(l.epilogue)], seqs, len, rows, l.in, l.out,
          l.residual ? 1 : 0, g.index, g.ms, g.ms > 0 ? flop / (g.ms * 1e-3) / 1e12 : 0.0,
          g.chosen ? 1 : 0, g.config);
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

int Run(int argc, char** argv) {
  std::string model_dir;
  CudaDType dtype = CudaDType::kF16;
  std::vector<int> seqs_list = {1, 32, 256};
  std::vector<int> lens = {32, 128, 512};
  double seconds = 1.0;
  bool profile = false;
  int sweep = 0;
  CudaBackendOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--model") model_dir = value;
    if (flag == "--dtype") dtype = std::strcmp(value, "bf16") == 0 ? CudaDType::kBF16 : dtype;
    if (flag == "--seqs") seqs_list = ParseList(value);
    if (flag == "--lens") lens = ParseList(value);
    if (flag == "--seconds") seconds = std::atof(value);
    if (flag == "--graph-max-tokens") options.graph_max_tokens = std::strtoul(value, nullptr, 10);
    if (flag == "--tune-candidates") options.gemm_tune_candidates = std::atoi(value);
    if (flag == "--tune-custom") options.gemm_tune_custom_options = std::atoi(value) != 0;
    if (flag == "--tune-custom-rows") options.gemm_tune_custom_min_rows = std::atoll(value);
    if (flag == "--fp8") options.fp8_gemms = std::atoi(value) != 0;
    if (flag == "--fp8-fast") options.fp8_fast_accum = std::atoi(value) != 0;
    if (flag == "--residual-in-gemm") options.residual_in_gemm = std::atoi(value) != 0;
    if (flag == "--out-bias-in-ln") options.out_bias_in_layernorm = std::atoi(value) != 0;
    if (flag == "--qkv-bias-in-attention") options.qkv_bias_in_attention = std::atoi(value) != 0;
    if (flag == "--hopper-attention") options.hopper_attention = std::atoi(value) != 0;
    if (flag == "--profile") profile = std::atoi(value) != 0;
    if (flag == "--gemm-sweep") sweep = std::atoi(value);
  }
  if (model_dir.empty()) {
    fmt::print(stderr,
               "usage: gpu_encoder_bench --model DIR [--dtype f16|bf16] [--seqs 1,32,256] "
               "[--lens 32,128,512] [--seconds S] [--graph-max-tokens N] [--tune-candidates N] "
               "[--tune-custom 0|1] [--tune-custom-rows N] "
               "[--residual-in-gemm 0|1] [--out-bias-in-ln 0|1] [--qkv-bias-in-attention 0|1] "
               "[--hopper-attention 0|1] "
               "[--profile 0|1] [--gemm-sweep N] [--fp8 0|1] [--fp8-fast 0|1]\n");
    return 2;
  }
  auto dir = ModelDir::Open(model_dir);
  if (!dir.ok()) return Fail(dir.status(), "model directory");
  auto config = EncoderConfig::FromHf(dir->config);
  if (!config.ok()) return Fail(config.status(), "config");
  auto store = WeightStore::Open(dir->dir);
  if (!store.ok()) return Fail(store.status(), "weights");
  auto weights = EncoderWeights::Bind(**store, *config);
  if (!weights.ok()) return Fail(weights.status(), "bind");
  auto pooling = ParsePooling(dir->pooling);
  if (!pooling.ok()) return Fail(pooling.status(), "pooling");
  options.dtype = dtype;
  auto backend = CudaBackend::Create(*config, *weights, *pooling, options);
  if (!backend.ok()) return Fail(backend.status(), "create");
  CudaBackend& b = **backend;

  BatchLimits limits;
  limits.max_batch_requests =
      static_cast<size_t>(*std::max_element(seqs_list.begin(), seqs_list.end()));
  limits.max_sequence_length = static_cast<size_t>(*std::max_element(lens.begin(), lens.end()));
  limits.max_batch_tokens = limits.max_batch_requests * limits.max_sequence_length;
  const auto w0 = Clock::now();
  if (Status s = b.Warmup(limits); !s.ok()) return Fail(s, "warmup");
  fmt::print(stderr, "warmup {:.0f} ms, graph buckets {}, device memory {:.0f} MiB\n",
             Ms(w0, Clock::now()), b.graph_buckets().size(),
             static_cast<double>(b.device_bytes_in_use()) / (1 << 20));

  std::mt19937 rng(1234);
  for (int len : lens) {
    for (int seqs : seqs_list) {
      const Batch batch = RandomBatch(seqs, len, config->vocab_size, rng);
      const Batch other = RandomBatch(seqs, len, config->vocab_size, rng);
      std::vector<float> out;
      // Warm-up: also plans and tunes a shape no bucket covers.
      double estimate = 0;
      for (int r = 0; r < 3; ++r) {
        const auto t0 = Clock::now();
        if (Status s = b.Embed(r % 2 ? other : batch, &out); !s.ok()) return Fail(s, "embed");
        estimate = Ms(t0, Clock::now());
      }
      const int reps =
          std::clamp(static_cast<int>(seconds * 1e3 / std::max(estimate, 1e-3)), 5, 200);
      std::vector<double> wall, gpu;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        if (Status s = b.Embed(r % 2 ? other : batch, &out); !s.ok()) return Fail(s, "embed");
        wall.push_back(Ms(t0, Clock::now()));
        gpu.push_back(b.last_forward_ms());
      }
      // Pipelined: batch r + 1 is packed and uploaded while batch r runs.
      const auto p0 = Clock::now();
      auto first = b.Submit(batch);
      if (!first.ok()) return Fail(first.status(), "submit");
      uint64_t pending = *first;
      for (int r = 1; r <= reps; ++r) {
        StatusOr<uint64_t> next = uint64_t{0};
        if (r < reps) {
          next = b.Submit(r % 2 ? other : batch);
          if (!next.ok()) return Fail(next.status(), "submit");
        }
        if (Status s = b.Collect(pending, &out); !s.ok()) return Fail(s, "collect");
        pending = *next;
      }
      const double pipelined = Ms(p0, Clock::now()) / reps;
      fmt::print(
          "{{\"seqs\": {}, \"len\": {}, \"reps\": {}, \"wall_ms\": {:.4f}, "
          "\"gpu_ms\": {:.4f}, \"pipelined_ms\": {:.4f}}}\n",
          seqs, len, reps, Median(wall), Median(gpu), pipelined);
      std::fflush(stdout);
      if (profile) {
        auto ops = b.ProfileForward(batch, 5);
        if (!ops.ok()) return Fail(ops.status(), "profile");
        std::string line =
            fmt::format("{{\"profile\": 1, \"seqs\": {}, \"len\": {}, \"ops\": [", seqs, len);
        for (size_t i = 0; i < ops->size(); ++i) {
          const OpTime& op = (*ops)[i];
          line += fmt::format("{}{{\"op\": \"{}\", \"calls\": {}, \"ms\": {:.4f}}}",
                              i == 0 ? "" : ", ", op.op, op.calls, op.ms);
        }
        fmt::print("{}]}}\n", line);
        for (const std::string& plan : b.gemm().DescribePlans()) {
          fmt::print(stderr, "plan {}\n", plan);
        }
        std::fflush(stdout);
      }
      if (sweep > 0) {
        if (Status s = SweepGemms(b, *config, dtype, seqs * len, sweep, seqs, len); !s.ok()) {
          return Fail(s, "gemm sweep");
        }
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace sluice::cuda

int main(int argc, char** argv) { return sluice::cuda::Run(argc, argv); }
