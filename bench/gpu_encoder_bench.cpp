// Times the CUDA backend on random encoders of real models' shapes: the fused attention kernel
// alone (CUDA events) and CudaBackend::Embed end to end (host clock; Embed waits for its
// result). Prints one table. Usage: gpu_encoder_bench [--reps N]
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_handles.h"
#include "backends/cuda/device_arena.h"
#include "backends/cuda/kernels/attention.cuh"

namespace sluice::cuda {
namespace {

struct Shape {
  const char* name;
  int hidden, heads, layers, intermediate;
};

// Random F32 weights of `config`'s shapes; the values do not matter for timing, but zeros could
// run faster than real data, so they are uniform noise.
struct RandomWeights {
  std::deque<std::vector<float>> storage;
  EncoderWeights weights;
  std::mt19937 rng{42};

  TensorView Make(std::vector<int64_t> shape, float scale) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    auto& v = storage.emplace_back(static_cast<size_t>(n));
    std::uniform_real_distribution<float> dist(-scale, scale);
    for (float& x : v) x = dist(rng);
    TensorView view;
    view.dtype = DType::kF32;
    view.shape = std::move(shape);
    view.data = reinterpret_cast<const std::byte*>(v.data());
    view.nbytes = v.size() * sizeof(float);
    return view;
  }

  explicit RandomWeights(const EncoderConfig& c) {
    const int64_t h = c.hidden_size, i = c.intermediate_size;
    const float s = 1.0f / std::sqrt(static_cast<float>(h));
    weights.word_embeddings = Make({c.vocab_size, h}, 1);
    weights.position_embeddings = Make({c.max_position_embeddings, h}, 1);
    weights.token_type_embeddings = Make({c.type_vocab_size, h}, 1);
    weights.embeddings_ln_weight = Make({h}, 1);
    weights.embeddings_ln_bias = Make({h}, 0.1f);
    for (int l = 0; l < c.num_layers; ++l) {
      EncoderLayerWeights w;
      w.q_weight = Make({h, h}, s), w.k_weight = Make({h, h}, s), w.v_weight = Make({h, h}, s);
      w.q_bias = Make({h}, 0.1f), w.k_bias = Make({h}, 0.1f), w.v_bias = Make({h}, 0.1f);
      w.attn_out_weight = Make({h, h}, s), w.attn_out_bias = Make({h}, 0.1f);
      w.attn_ln_weight = Make({h}, 1), w.attn_ln_bias = Make({h}, 0.1f);
      w.ffn_in_weight = Make({i, h}, s), w.ffn_in_bias = Make({i}, 0.1f);
      w.ffn_out_weight = Make({h, i}, s), w.ffn_out_bias = Make({h}, 0.1f);
      w.ffn_ln_weight = Make({h}, 1), w.ffn_ln_bias = Make({h}, 0.1f);
      weights.layers.push_back(w);
    }
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(int reps) {
  const Shape shapes[] = {{"MiniLM-L6 (384, d32)", 384, 12, 6, 1536},
                          {"BERT-base (768, d64)", 768, 12, 12, 3072}};
  const int batches[][2] = {{1, 16}, {1, 128}, {32, 128}, {128, 128}, {32, 512}};
  fmt::print("{:<22} {:>5} {:>5} {:>4} {:>11} {:>11} {:>12} {:>10}\n", "model", "seqs", "len", "dt",
             "embed ms", "attn ms", "attn TFLOP/s", "seq/s");
  for (const Shape& shape : shapes) {
    EncoderConfig config;
    config.vocab_size = 30522;
    config.hidden_size = shape.hidden;
    config.num_heads = shape.heads;
    config.num_layers = shape.layers;
    config.intermediate_size = shape.intermediate;
    config.max_position_embeddings = 512;
    config.type_vocab_size = 2;
    RandomWeights random(config);
    for (CudaDType dtype : {CudaDType::kF16, CudaDType::kBF16}) {
      auto backend = CudaBackend::Create(config, random.weights, Pooling::kMean,
                                         {.device = 0, .dtype = dtype, .gpu_memory_limit = 0});
      if (!backend.ok()) {
        fmt::print(stderr, "create: {}\n", backend.status().ToString());
        return 1;
      }
      BatchLimits limits;
      limits.max_batch_tokens = 16384;
      limits.max_batch_requests = 128;
      limits.max_sequence_length = 512;
      if (Status s = (*backend)->Warmup(limits); !s.ok()) {
        fmt::print(stderr, "warmup: {}\n", s.ToString());
        return 1;
      }
      std::mt19937 rng(7);
      for (const auto& b : batches) {
        const int seqs = b[0], len = b[1];
        Batch batch;
        batch.cu_seqlens = {0};
        for (int s = 0; s < seqs; ++s) {
          for (int t = 0; t < len; ++t) {
            batch.input_ids.push_back(static_cast<int32_t>(rng() % config.vocab_size));
            batch.token_type_ids.push_back(0);
            batch.position_ids.push_back(t);
          }
          batch.cu_seqlens.push_back(batch.cu_seqlens.back() + len);
          batch.normalize.push_back(1);
        }
        batch.max_seqlen = len;
        std::vector<float> out;
        std::vector<double> embed_ms;
        for (int r = 0; r < reps + 3; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          if (Status s = (*backend)->Embed(batch, &out); !s.ok()) {
            fmt::print(stderr, "embed: {}\n", s.ToString());
            return 1;
          }
          const auto t1 = std::chrono::steady_clock::now();
          if (r >= 3)
            embed_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        }

        // The attention kernel alone on random Q/K/V of the same batch.
        const int tokens = seqs * len;
        auto arena = DeviceArena::Create(0, 0);
        auto stream = CudaStream::Create();
        auto start = CudaEvent::Create();
        auto stop = CudaEvent::Create();
        if (!arena.ok() || !stream.ok() || !start.ok() || !stop.ok()) return 1;
        auto qkv = (*arena)->Allocate(size_t(tokens) * 3 * shape.hidden * 2);
        auto ctx = (*arena)->Allocate(size_t(tokens) * shape.hidden * 2);
        auto cu = (*arena)->Allocate(batch.cu_seqlens.size() * 4);
        if (!qkv.ok() || !ctx.ok() || !cu.ok()) return 1;
        std::vector<uint16_t> noise(size_t(tokens) * 3 * shape.hidden);
        // Small positive values in both fp16 and bf16 encodings; never zeros.
        for (uint16_t& x : noise) x = static_cast<uint16_t>(0x3000 + rng() % 0x0800);
        if (cudaMemcpy(qkv->data(), noise.data(), noise.size() * 2, cudaMemcpyHostToDevice) !=
                cudaSuccess ||
            cudaMemcpy(cu->data(), batch.cu_seqlens.data(), batch.cu_seqlens.size() * 4,
                       cudaMemcpyHostToDevice) != cudaSuccess) {
          return 1;
        }
        AttentionArgs args;
        args.dtype = dtype;
        args.num_sequences = seqs;
        args.max_seqlen = len;
        args.num_heads = shape.heads;
        args.head_dim = shape.hidden / shape.heads;
        args.qkv = qkv->data();
        args.cu_seqlens = static_cast<const int32_t*>(cu->data());
        args.scale = 1.0f / std::sqrt(static_cast<float>(args.head_dim));
        args.out = ctx->data();
        std::vector<double> attn_ms;
        for (int r = 0; r < reps + 3; ++r) {
          if (!start->Record(stream->get()).ok() || !FusedAttention(args, stream->get()).ok() ||
              !stop->Record(stream->get()).ok()) {
            return 1;
          }
          auto ms = stop->ElapsedMsSince(*start);
          if (!ms.ok()) return 1;
          if (r >= 3) attn_ms.push_back(*ms);
        }
        const double attn = Median(attn_ms);
        const double flops = 4.0 * seqs * shape.heads * double(len) * len * args.head_dim;
        const double embed = Median(embed_ms);
        fmt::print("{:<22} {:>5} {:>5} {:>4} {:>11.3f} {:>11.4f} {:>12.1f} {:>10.0f}\n", shape.name,
                   seqs, len, CudaDTypeName(dtype), embed, attn, flops / attn / 1e9,
                   seqs / embed * 1e3);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace sluice::cuda

int main(int argc, char** argv) {
  int reps = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  return sluice::cuda::Run(reps);
}
