// Times the CUDA backend on a Hugging Face model directory (config.json + model.safetensors of
// a BERT-family encoder, e.g. one written by bench/bench_gpu.py) over random token ids, for
// every (batch, length) asked for. Per shape, after warm-up calls, it prints one JSON line:
// median wall time of Embed() end to end (pack, upload, forward, pooled vectors back), median
// GPU time of the forward pass (CUDA events), and the wall time per batch when batches are
// pipelined two at a time through Submit()/Collect().
//
// Usage: gpu_encoder_bench --model DIR [--dtype f16|bf16] [--seqs 1,32,256]
//                          [--lens 32,128,512] [--seconds S] [--graph-max-tokens N]
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.h"

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

StatusOr<EncoderConfig> ReadConfig(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.load(path).get(doc) != simdjson::SUCCESS) {
    return InvalidArgument("cannot parse " + path);
  }
  EncoderConfig c;
  auto get_int = [&](const char* key, int fallback) {
    int64_t v = 0;
    return doc[key].get_int64().get(v) == simdjson::SUCCESS ? static_cast<int>(v) : fallback;
  };
  c.model_type = "bert";
  c.vocab_size = get_int("vocab_size", 0);
  c.hidden_size = get_int("hidden_size", 0);
  c.num_layers = get_int("num_hidden_layers", 0);
  c.num_heads = get_int("num_attention_heads", 0);
  c.intermediate_size = get_int("intermediate_size", 0);
  c.max_position_embeddings = get_int("max_position_embeddings", 512);
  c.type_vocab_size = get_int("type_vocab_size", 2);
  c.pad_token_id = get_int("pad_token_id", 0);
  double eps = 1e-12;
  if (doc["layer_norm_eps"].get_double().get(eps) == simdjson::SUCCESS) {
    c.layer_norm_eps = static_cast<float>(eps);
  }
  std::string_view act;
  if (doc["hidden_act"].get_string().get(act) == simdjson::SUCCESS && act != "gelu") {
    c.activation = act == "relu" ? Activation::kRelu : Activation::kGeluTanh;
  }
  return c;
}

// model.safetensors read whole into memory; views point into `bytes`.
struct SafeTensors {
  std::vector<std::byte> bytes;
  std::map<std::string, TensorView> tensors;

  static StatusOr<SafeTensors> Read(const std::string& path) {
    SafeTensors st;
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return NotFound("cannot open " + path);
    st.bytes.resize(static_cast<size_t>(in.tellg()));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(st.bytes.data()),
            static_cast<std::streamsize>(st.bytes.size()));
    uint64_t header = 0;
    std::memcpy(&header, st.bytes.data(), sizeof(header));
    simdjson::dom::parser parser;
    simdjson::dom::object root;
    if (parser
            .parse(reinterpret_cast<const char*>(st.bytes.data()) + 8, static_cast<size_t>(header))
            .get(root) != simdjson::SUCCESS) {
      return DataLoss("bad safetensors header in " + path);
    }
    const std::byte* data = st.bytes.data() + 8 + header;
    for (auto [key, value] : root) {
      if (key == "__metadata__") continue;
      TensorView view;
      view.name = std::string(key);
      std::string_view dtype;
      if (value["dtype"].get_string().get(dtype) != simdjson::SUCCESS) return DataLoss("dtype");
      view.dtype = dtype == "F16" ? DType::kF16 : dtype == "BF16" ? DType::kBF16 : DType::kF32;
      for (auto dim : value["shape"].get_array()) view.shape.push_back(dim.get_int64().value());
      simdjson::dom::array offsets = value["data_offsets"].get_array().value();
      const auto begin = static_cast<size_t>(offsets.at(0).get_int64().value());
      const auto end = static_cast<size_t>(offsets.at(1).get_int64().value());
      view.data = data + begin;
      view.nbytes = end - begin;
      st.tensors[view.name] = view;
    }
    return st;
  }

  StatusOr<TensorView> Get(const std::string& name) const {
    for (const char* prefix : {"", "bert."}) {
      auto it = tensors.find(prefix + name);
      if (it != tensors.end()) return it->second;
    }
    return NotFound("tensor " + name);
  }
};

StatusOr<EncoderWeights> BindWeights(const SafeTensors& st, const EncoderConfig& config) {
  EncoderWeights w;
  SLUICE_ASSIGN_OR_RETURN(w.word_embeddings, st.Get("embeddings.word_embeddings.weight"));
  SLUICE_ASSIGN_OR_RETURN(w.position_embeddings, st.Get("embeddings.position_embeddings.weight"));
  SLUICE_ASSIGN_OR_RETURN(w.token_type_embeddings,
                          st.Get("embeddings.token_type_embeddings.weight"));
  SLUICE_ASSIGN_OR_RETURN(w.embeddings_ln_weight, st.Get("embeddings.LayerNorm.weight"));
  SLUICE_ASSIGN_OR_RETURN(w.embeddings_ln_bias, st.Get("embeddings.LayerNorm.bias"));
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string p = fmt::format("encoder.layer.{}.", l);
    EncoderLayerWeights x;
    SLUICE_ASSIGN_OR_RETURN(x.q_weight, st.Get(p + "attention.self.query.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.q_bias, st.Get(p + "attention.self.query.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.k_weight, st.Get(p + "attention.self.key.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.k_bias, st.Get(p + "attention.self.key.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.v_weight, st.Get(p + "attention.self.value.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.v_bias, st.Get(p + "attention.self.value.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.attn_out_weight, st.Get(p + "attention.output.dense.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.attn_out_bias, st.Get(p + "attention.output.dense.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.attn_ln_weight, st.Get(p + "attention.output.LayerNorm.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.attn_ln_bias, st.Get(p + "attention.output.LayerNorm.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_in_weight, st.Get(p + "intermediate.dense.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_in_bias, st.Get(p + "intermediate.dense.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_out_weight, st.Get(p + "output.dense.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_out_bias, st.Get(p + "output.dense.bias"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_ln_weight, st.Get(p + "output.LayerNorm.weight"));
    SLUICE_ASSIGN_OR_RETURN(x.ffn_ln_bias, st.Get(p + "output.LayerNorm.bias"));
    w.layers.push_back(std::move(x));
  }
  return w;
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

int Run(int argc, char** argv) {
  std::string model_dir;
  CudaDType dtype = CudaDType::kF16;
  std::vector<int> seqs_list = {1, 32, 256};
  std::vector<int> lens = {32, 128, 512};
  double seconds = 1.0;
  CudaBackendOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") model_dir = argv[i + 1];
    if (flag == "--dtype") dtype = std::strcmp(argv[i + 1], "bf16") == 0 ? CudaDType::kBF16 : dtype;
    if (flag == "--seqs") seqs_list = ParseList(argv[i + 1]);
    if (flag == "--lens") lens = ParseList(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    if (flag == "--graph-max-tokens")
      options.graph_max_tokens = std::strtoul(argv[i + 1], nullptr, 10);
  }
  if (model_dir.empty()) {
    fmt::print(stderr,
               "usage: gpu_encoder_bench --model DIR [--dtype f16|bf16] [--seqs 1,32,256] "
               "[--lens 32,128,512] [--seconds S] [--graph-max-tokens N]\n");
    return 2;
  }
  auto config = ReadConfig(model_dir + "/config.json");
  if (!config.ok()) return Fail(config.status(), "config");
  auto st = SafeTensors::Read(model_dir + "/model.safetensors");
  if (!st.ok()) return Fail(st.status(), "weights");
  auto weights = BindWeights(*st, *config);
  if (!weights.ok()) return Fail(weights.status(), "bind");
  options.dtype = dtype;
  auto backend = CudaBackend::Create(*config, *weights, Pooling::kMean, options);
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
    }
  }
  return 0;
}

}  // namespace
}  // namespace sluice::cuda

int main(int argc, char** argv) { return sluice::cuda::Run(argc, argv); }
