#include "backends/cuda/device_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "backends/cuda/cuda_status.h"

namespace sluice::cuda {
namespace {

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Shape(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Status CheckView(const TensorView& view, std::string_view what,
                 const std::vector<int64_t>& expected) {
  if (view.empty()) return InvalidArgument(fmt::format("weight {} is missing", what));
  if (view.shape != expected) {
    return InvalidArgument(fmt::format("weight {} ({}) has shape {}, expected {}", what, view.name,
                                       Shape(view.shape), Shape(expected)));
  }
  size_t element = 0;
  switch (view.dtype) {
    case DType::kF32:
      element = 4;
      break;
    case DType::kF16:
    case DType::kBF16:
      element = 2;
      break;
    default:
      return InvalidArgument(
          fmt::format("weight {} ({}) is not F32, F16 or BF16", what, view.name));
  }
  if (view.nbytes != static_cast<size_t>(NumElements(expected)) * element) {
    return InvalidArgument(fmt::format("weight {} ({}) holds {} bytes, expected {}", what,
                                       view.name, view.nbytes,
                                       static_cast<size_t>(NumElements(expected)) * element));
  }
  return Status::Ok();
}

float ElementAsFloat(const TensorView& view, size_t i) {
  // Views over a memory map need not be aligned to the element size.
  if (view.dtype == DType::kF32) {
    float f;
    std::memcpy(&f, view.data + i * 4, 4);
    return f;
  }
  uint16_t bits;
  std::memcpy(&bits, view.data + i * 2, 2);
  if (view.dtype == DType::kF16) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  __nv_bfloat16_raw raw;
  raw.x = bits;
  return __bfloat162float(__nv_bfloat16(raw));
}

uint16_t FloatToBits(float f, CudaDType dtype) {
  if (dtype == CudaDType::kF16) return static_cast<__half_raw>(__float2half_rn(f)).x;
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(f)).x;
}

// Lays tensors out in one host image with arena-aligned offsets, then copies it once.
class Packer {
 public:
  explicit Packer(CudaDType dtype) : dtype_(dtype) {}

  // Reserves room for `elements` values and returns their offset in bytes.
  size_t Reserve(int64_t elements) {
    const size_t offset = size_;
    size_ = DeviceArena::AlignUp(size_ + static_cast<size_t>(elements) * 2);
    return offset;
  }
  void Resize() { image_.assign(size_ / 2, 0); }
  void Write(size_t offset, const TensorView& view) {
    const size_t n = static_cast<size_t>(NumElements(view.shape));
    uint16_t* dst = image_.data() + offset / 2;
    for (size_t i = 0; i < n; ++i) dst[i] = FloatToBits(ElementAsFloat(view, i), dtype_);
  }
  size_t size() const { return size_; }
  const uint16_t* image() const { return image_.data(); }

 private:
  CudaDType dtype_;
  size_t size_ = 0;
  std::vector<uint16_t> image_;
};

struct LayerOffsets {
  size_t qkv_w, qkv_b, ao_w, ao_b, aln_w, aln_b, fi_w, fi_b, fo_w, fo_b, fln_w, fln_b;
};

}  // namespace

Status DeviceWeights::Check(const EncoderConfig& config, const EncoderWeights& weights) {
  const int64_t h = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  SLUICE_RETURN_IF_ERROR(
      CheckView(weights.word_embeddings, "word_embeddings", {config.vocab_size, h}));
  SLUICE_RETURN_IF_ERROR(CheckView(weights.position_embeddings, "position_embeddings",
                                   {config.max_position_embeddings, h}));
  const bool has_types = config.type_vocab_size > 0;
  if (has_types) {
    SLUICE_RETURN_IF_ERROR(CheckView(weights.token_type_embeddings, "token_type_embeddings",
                                     {config.type_vocab_size, h}));
  }
  SLUICE_RETURN_IF_ERROR(CheckView(weights.embeddings_ln_weight, "embeddings_ln_weight", {h}));
  SLUICE_RETURN_IF_ERROR(CheckView(weights.embeddings_ln_bias, "embeddings_ln_bias", {h}));
  if (weights.layers.size() != static_cast<size_t>(config.num_layers)) {
    return InvalidArgument(fmt::format("{} layers of weights for a config of {} layers",
                                       weights.layers.size(), config.num_layers));
  }
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    const EncoderLayerWeights& l = weights.layers[i];
    const std::string p = fmt::format("layer {} ", i);
    for (auto [view, name] : {std::pair{&l.q_weight, "q_weight"},
                              {&l.k_weight, "k_weight"},
                              {&l.v_weight, "v_weight"},
                              {&l.attn_out_weight, "attn_out_weight"}}) {
      SLUICE_RETURN_IF_ERROR(CheckView(*view, p + name, {h, h}));
    }
    for (auto [view, name] : {std::pair{&l.q_bias, "q_bias"},
                              {&l.k_bias, "k_bias"},
                              {&l.v_bias, "v_bias"},
                              {&l.attn_out_bias, "attn_out_bias"},
                              {&l.attn_ln_weight, "attn_ln_weight"},
                              {&l.attn_ln_bias, "attn_ln_bias"},
                              {&l.ffn_out_bias, "ffn_out_bias"},
                              {&l.ffn_ln_weight, "ffn_ln_weight"},
                              {&l.ffn_ln_bias, "ffn_ln_bias"}}) {
      SLUICE_RETURN_IF_ERROR(CheckView(*view, p + name, {h}));
    }
    SLUICE_RETURN_IF_ERROR(CheckView(l.ffn_in_weight, p + "ffn_in_weight", {inter, h}));
    SLUICE_RETURN_IF_ERROR(CheckView(l.ffn_in_bias, p + "ffn_in_bias", {inter}));
    SLUICE_RETURN_IF_ERROR(CheckView(l.ffn_out_weight, p + "ffn_out_weight", {h, inter}));
  }

  return Status::Ok();
}

StatusOr<DeviceWeights> DeviceWeights::Upload(const EncoderConfig& config,
                                              const EncoderWeights& weights, CudaDType dtype,
                                              DeviceArena& arena, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(Check(config, weights));
  const int64_t h = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  const bool has_types = config.type_vocab_size > 0;
  Packer packer(dtype);
  const size_t word = packer.Reserve(config.vocab_size * h);
  const size_t position = packer.Reserve(config.max_position_embeddings * h);
  const size_t type = has_types ? packer.Reserve(config.type_vocab_size * h) : 0;
  const size_t ln_w = packer.Reserve(h);
  const size_t ln_b = packer.Reserve(h);
  std::vector<LayerOffsets> offsets;
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    LayerOffsets o{};
    o.qkv_w = packer.Reserve(3 * h * h);
    o.qkv_b = packer.Reserve(3 * h);
    o.ao_w = packer.Reserve(h * h);
    o.ao_b = packer.Reserve(h);
    o.aln_w = packer.Reserve(h);
    o.aln_b = packer.Reserve(h);
    o.fi_w = packer.Reserve(inter * h);
    o.fi_b = packer.Reserve(inter);
    o.fo_w = packer.Reserve(h * inter);
    o.fo_b = packer.Reserve(h);
    o.fln_w = packer.Reserve(h);
    o.fln_b = packer.Reserve(h);
    offsets.push_back(o);
  }
  packer.Resize();
  packer.Write(word, weights.word_embeddings);
  packer.Write(position, weights.position_embeddings);
  if (has_types) packer.Write(type, weights.token_type_embeddings);
  packer.Write(ln_w, weights.embeddings_ln_weight);
  packer.Write(ln_b, weights.embeddings_ln_bias);
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    const EncoderLayerWeights& l = weights.layers[i];
    const LayerOffsets& o = offsets[i];
    const size_t matrix = static_cast<size_t>(h * h) * 2;
    const size_t vector = static_cast<size_t>(h) * 2;
    packer.Write(o.qkv_w, l.q_weight);
    packer.Write(o.qkv_w + matrix, l.k_weight);
    packer.Write(o.qkv_w + 2 * matrix, l.v_weight);
    packer.Write(o.qkv_b, l.q_bias);
    packer.Write(o.qkv_b + vector, l.k_bias);
    packer.Write(o.qkv_b + 2 * vector, l.v_bias);
    packer.Write(o.ao_w, l.attn_out_weight);
    packer.Write(o.ao_b, l.attn_out_bias);
    packer.Write(o.aln_w, l.attn_ln_weight);
    packer.Write(o.aln_b, l.attn_ln_bias);
    packer.Write(o.fi_w, l.ffn_in_weight);
    packer.Write(o.fi_b, l.ffn_in_bias);
    packer.Write(o.fo_w, l.ffn_out_weight);
    packer.Write(o.fo_b, l.ffn_out_bias);
    packer.Write(o.fln_w, l.ffn_ln_weight);
    packer.Write(o.fln_b, l.ffn_ln_bias);
  }

  DeviceWeights out;
  SLUICE_ASSIGN_OR_RETURN(out.buffer_, arena.Allocate(packer.size()));
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.buffer_.data(), packer.image(), packer.size(),
                                              cudaMemcpyHostToDevice, stream));
  // The host image dies with this function.
  SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));

  const auto* base = static_cast<const std::byte*>(out.buffer_.data());
  out.word_embeddings = base + word;
  out.position_embeddings = base + position;
  out.token_type_embeddings = has_types ? base + type : nullptr;
  out.embeddings_ln_weight = base + ln_w;
  out.embeddings_ln_bias = base + ln_b;
  for (const LayerOffsets& o : offsets) {
    out.layers.push_back({base + o.qkv_w, base + o.qkv_b, base + o.ao_w, base + o.ao_b,
                          base + o.aln_w, base + o.aln_b, base + o.fi_w, base + o.fi_b,
                          base + o.fo_w, base + o.fo_b, base + o.fln_w, base + o.fln_b});
  }
  return out;
}

}  // namespace sluice::cuda
