#include "backends/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/add_layernorm.cuh"
#include "backends/cuda/kernels/attention.cuh"
#include "backends/cuda/kernels/embedding_layernorm.cuh"
#include "backends/cuda/kernels/pooling.cuh"

namespace sluice::cuda {
namespace {

// cuBLASLt's recommended workspace for Hopper.
constexpr size_t kGemmWorkspaceBytes = 32u << 20;
// Attention's grid has one z-slice per sequence.
constexpr size_t kMaxSequencesPerBatch = 65535;

// Byte offsets of the per-batch inputs in one contiguous upload.
struct InputLayout {
  size_t types, positions, cu_seqlens, normalize, bytes;
  InputLayout(size_t tokens, size_t sequences) {
    types = tokens * sizeof(int32_t);
    positions = 2 * tokens * sizeof(int32_t);
    cu_seqlens = 3 * tokens * sizeof(int32_t);
    normalize = cu_seqlens + (sequences + 1) * sizeof(int32_t);
    bytes = normalize + sequences;
  }
};

GemmEpilogue FfnEpilogue(Activation activation) {
  return activation == Activation::kRelu ? GemmEpilogue::kBiasRelu : GemmEpilogue::kBiasGelu;
}

}  // namespace

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const EncoderConfig& config,
                                                           const EncoderWeights& weights,
                                                           Pooling pooling,
                                                           const CudaBackendOptions& options) {
  if (config.hidden_size <= 0 || config.num_heads <= 0 || config.num_layers <= 0 ||
      config.intermediate_size <= 0 || config.vocab_size <= 0 ||
      config.max_position_embeddings <= 0 || config.hidden_size % config.num_heads != 0) {
    return InvalidArgument(fmt::format(
        "inconsistent encoder config: hidden {} heads {} layers {} intermediate {}",
        config.hidden_size, config.num_heads, config.num_layers, config.intermediate_size));
  }
  if (!FusedAttentionSupportsHeadDim(config.head_dim())) {
    return Unimplemented(fmt::format("the CUDA backend has no attention kernel for head size {}",
                                     config.head_dim()));
  }
  if (config.hidden_size > 8192 || config.hidden_size % 8 != 0) {
    return Unimplemented(
        fmt::format("the CUDA backend takes hidden sizes that are multiples "
                    "of 8 up to 8192, not {}",
                    config.hidden_size));
  }
  if (config.activation == Activation::kSilu) {
    return Unimplemented("the CUDA backend has no SiLU feed-forward epilogue");
  }

  // Bad weights are the caller's error whether or not a GPU is present.
  SLUICE_RETURN_IF_ERROR(DeviceWeights::Check(config, weights));

  std::unique_ptr<CudaBackend> backend(new CudaBackend(config, pooling, options));
  SLUICE_ASSIGN_OR_RETURN(backend->arena_,
                          DeviceArena::Create(options.device, options.gpu_memory_limit));
  SLUICE_ASSIGN_OR_RETURN(backend->stream_, CudaStream::Create());
  SLUICE_ASSIGN_OR_RETURN(backend->lt_handle_, CublasLtHandle::Create());
  SLUICE_ASSIGN_OR_RETURN(backend->weights_,
                          DeviceWeights::Upload(config, weights, options.dtype, *backend->arena_,
                                                backend->stream_.get()));
  SLUICE_ASSIGN_OR_RETURN(backend->gemm_workspace_, backend->arena_->Allocate(kGemmWorkspaceBytes));
  SLUICE_ASSIGN_OR_RETURN(backend->gemm_,
                          LtGemm::Create(backend->lt_handle_.get(), backend->gemm_workspace_.data(),
                                         backend->gemm_workspace_.bytes()));
  return backend;
}

CudaBackend::~CudaBackend() {
  // Buffers must not be freed under kernels still reading them.
  if (stream_.get() != nullptr) static_cast<void>(stream_.Synchronize());
}

std::string CudaBackend::name() const { return fmt::format("cuda:{}", options_.device); }

Status CudaBackend::Health() const {
  std::lock_guard<std::mutex> lock(health_mutex_);
  return health_;
}

Status CudaBackend::RecordFailure(Status status) {
  if (status.ok() || status.code() == StatusCode::kInvalidArgument) return status;
  std::lock_guard<std::mutex> lock(health_mutex_);
  if (health_.ok()) health_ = Unavailable(fmt::format("{} failed: {}", name(), status.ToString()));
  return status;
}

Status CudaBackend::AllocateWorkspaces(const BatchLimits& limits) {
  const size_t tokens = limits.max_batch_tokens;
  const size_t sequences = limits.max_batch_requests;
  const size_t h = static_cast<size_t>(config_.hidden_size);
  const size_t wide = std::max<size_t>(3 * h, static_cast<size_t>(config_.intermediate_size));
  const InputLayout inputs(tokens, sequences);
  const size_t activation_bytes = tokens * h * 2;
  const size_t pooled_bytes = sequences * h * sizeof(float);
  size_t total = 0;
  for (size_t bytes : {activation_bytes, tokens * wide * 2, activation_bytes, activation_bytes,
                       inputs.bytes, pooled_bytes}) {
    total += DeviceArena::AlignUp(bytes);
  }
  // Release the previous workspaces before asking for new ones.
  workspace_ = DeviceRegion();
  SLUICE_ASSIGN_OR_RETURN(DeviceBuffer buffer, arena_->Allocate(total));
  workspace_ = DeviceRegion(std::move(buffer));
  SLUICE_ASSIGN_OR_RETURN(hidden_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(scratch_, workspace_.TakeBytes(tokens * wide * 2));
  SLUICE_ASSIGN_OR_RETURN(context_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(proj_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(inputs_, workspace_.Take<std::byte>(inputs.bytes));
  SLUICE_ASSIGN_OR_RETURN(pooled_, workspace_.Take<float>(sequences * h));
  SLUICE_ASSIGN_OR_RETURN(host_inputs_, PinnedHostBuffer::Create(inputs.bytes));
  SLUICE_ASSIGN_OR_RETURN(host_pooled_, PinnedHostBuffer::Create(pooled_bytes));
  return Status::Ok();
}

Status CudaBackend::Warmup(const BatchLimits& limits) {
  if (limits.max_batch_tokens == 0 || limits.max_batch_requests == 0 ||
      limits.max_sequence_length == 0) {
    return InvalidArgument("batch limits must be positive");
  }
  if (limits.max_batch_requests > kMaxSequencesPerBatch) {
    return InvalidArgument(fmt::format("at most {} sequences per batch on CUDA, not {}",
                                       kMaxSequencesPerBatch, limits.max_batch_requests));
  }
  if (limits.max_sequence_length + static_cast<size_t>(std::max(config_.position_offset, 0)) >
      static_cast<size_t>(config_.max_position_embeddings)) {
    return InvalidArgument(fmt::format(
        "max sequence length {} exceeds the model's {} positions (offset {})",
        limits.max_sequence_length, config_.max_position_embeddings, config_.position_offset));
  }
  SLUICE_RETURN_IF_ERROR(Health());
  SLUICE_RETURN_IF_ERROR(
      RecordFailure(CudaStatus(cudaSetDevice(options_.device), "cudaSetDevice")));
  warmed_up_ = false;
  SLUICE_RETURN_IF_ERROR(AllocateWorkspaces(limits));
  limits_ = limits;
  warmed_up_ = true;

  // One full-length sequence: loads the kernels and plans the GEMMs before real traffic.
  const int32_t length =
      static_cast<int32_t>(std::min(limits.max_sequence_length, limits.max_batch_tokens));
  Batch batch;
  const int32_t id = config_.pad_token_id >= 0 && config_.pad_token_id < config_.vocab_size
                         ? config_.pad_token_id
                         : 0;
  batch.input_ids.assign(static_cast<size_t>(length), id);
  batch.token_type_ids.assign(static_cast<size_t>(length), 0);
  for (int32_t i = 0; i < length; ++i) batch.position_ids.push_back(i);
  batch.cu_seqlens = {0, length};
  batch.max_seqlen = length;
  batch.normalize = {1};
  std::vector<float> out;
  return Embed(batch, &out);
}

Status CudaBackend::CheckBatch(const Batch& batch) const {
  const size_t tokens = batch.num_tokens();
  const size_t sequences = batch.num_sequences();
  if (batch.token_type_ids.size() != tokens || batch.position_ids.size() != tokens) {
    return InvalidArgument(
        fmt::format("batch has {} input ids but {} token type ids and {} position ids", tokens,
                    batch.token_type_ids.size(), batch.position_ids.size()));
  }
  if (batch.normalize.size() != sequences) {
    return InvalidArgument(fmt::format("batch has {} sequences but {} normalize flags", sequences,
                                       batch.normalize.size()));
  }
  if (tokens > limits_.max_batch_tokens || sequences > limits_.max_batch_requests) {
    return InvalidArgument(
        fmt::format("batch of {} tokens in {} sequences exceeds the limits ({} tokens, {} "
                    "sequences) given to Warmup()",
                    tokens, sequences, limits_.max_batch_tokens, limits_.max_batch_requests));
  }
  if (batch.cu_seqlens.front() != 0 || static_cast<size_t>(batch.cu_seqlens.back()) != tokens) {
    return InvalidArgument(fmt::format("cu_seqlens must run from 0 to {} tokens", tokens));
  }
  for (size_t i = 0; i < sequences; ++i) {
    const int64_t length = int64_t{batch.cu_seqlens[i + 1]} - batch.cu_seqlens[i];
    if (length <= 0 || static_cast<size_t>(length) > limits_.max_sequence_length) {
      return InvalidArgument(fmt::format("sequence {} has {} tokens (must be 1..{})", i, length,
                                         limits_.max_sequence_length));
    }
  }
  const int type_vocab = std::max(config_.type_vocab_size, 1);
  for (size_t t = 0; t < tokens; ++t) {
    const int32_t id = batch.input_ids[t];
    const int32_t type = batch.token_type_ids[t];
    const int64_t position = int64_t{batch.position_ids[t]} + config_.position_offset;
    if (id < 0 || id >= config_.vocab_size) {
      return InvalidArgument(
          fmt::format("token {}: id {} outside the vocabulary of {}", t, id, config_.vocab_size));
    }
    if (type < 0 || type >= type_vocab) {
      return InvalidArgument(
          fmt::format("token {}: token type {} outside 0..{}", t, type, type_vocab - 1));
    }
    if (batch.position_ids[t] < 0 || position >= config_.max_position_embeddings) {
      return InvalidArgument(fmt::format("token {}: position {} outside the model's {}", t,
                                         batch.position_ids[t], config_.max_position_embeddings));
    }
  }
  return Status::Ok();
}

Status CudaBackend::Embed(const Batch& batch, std::vector<float>* out) {
  if (!warmed_up_) return FailedPrecondition("Embed() before Warmup()");
  SLUICE_RETURN_IF_ERROR(Health());
  out->clear();
  if (batch.num_sequences() == 0 && batch.num_tokens() == 0) return Status::Ok();
  if (batch.num_sequences() == 0) return InvalidArgument("batch has tokens but no cu_seqlens");
  SLUICE_RETURN_IF_ERROR(CheckBatch(batch));
  return RecordFailure(Forward(batch, out));
}

Status CudaBackend::Forward(const Batch& batch, std::vector<float>* out) {
  SLUICE_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
  const cudaStream_t stream = stream_.get();
  const int tokens = static_cast<int>(batch.num_tokens());
  const int sequences = static_cast<int>(batch.num_sequences());
  const int h = config_.hidden_size;
  const CudaDType dtype = options_.dtype;
  int max_seqlen = 0;
  for (int i = 0; i < sequences; ++i) {
    max_seqlen = std::max(max_seqlen, batch.cu_seqlens[i + 1] - batch.cu_seqlens[i]);
  }

  // One upload for every per-batch input.
  const InputLayout layout(static_cast<size_t>(tokens), static_cast<size_t>(sequences));
  auto* host = static_cast<std::byte*>(host_inputs_.data());
  const size_t id_bytes = static_cast<size_t>(tokens) * sizeof(int32_t);
  std::memcpy(host, batch.input_ids.data(), id_bytes);
  std::memcpy(host + layout.types, batch.token_type_ids.data(), id_bytes);
  std::memcpy(host + layout.positions, batch.position_ids.data(), id_bytes);
  std::memcpy(host + layout.cu_seqlens, batch.cu_seqlens.data(),
              (static_cast<size_t>(sequences) + 1) * sizeof(int32_t));
  std::memcpy(host + layout.normalize, batch.normalize.data(), static_cast<size_t>(sequences));
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(inputs_, host, layout.bytes, cudaMemcpyHostToDevice, stream));
  const auto* ids = reinterpret_cast<const int32_t*>(inputs_);
  const auto* types = reinterpret_cast<const int32_t*>(inputs_ + layout.types);
  const auto* positions = reinterpret_cast<const int32_t*>(inputs_ + layout.positions);
  const auto* cu_seqlens = reinterpret_cast<const int32_t*>(inputs_ + layout.cu_seqlens);
  const auto* normalize = reinterpret_cast<const uint8_t*>(inputs_ + layout.normalize);

  EmbeddingLayerNormArgs embed;
  embed.dtype = dtype;
  embed.tokens = tokens;
  embed.hidden = h;
  embed.input_ids = ids;
  embed.token_type_ids = types;
  embed.position_ids = positions;
  embed.position_offset = config_.position_offset;
  embed.word = weights_.word_embeddings;
  embed.position = weights_.position_embeddings;
  embed.token_type = weights_.token_type_embeddings;
  embed.gamma = weights_.embeddings_ln_weight;
  embed.beta = weights_.embeddings_ln_bias;
  embed.eps = config_.layer_norm_eps;
  embed.out = hidden_;
  SLUICE_RETURN_IF_ERROR(EmbeddingLayerNorm(embed, stream));

  auto linear = [&](const void* x, const void* w, const void* bias, void* y, int in, int out_f,
                    GemmEpilogue epilogue) {
    LinearArgs args;
    args.dtype = dtype;
    args.rows = tokens;
    args.in_features = in;
    args.out_features = out_f;
    args.x = x;
    args.w = w;
    args.bias = bias;
    args.y = y;
    args.epilogue = epilogue;
    return gemm_->Linear(args, stream);
  };
  auto add_layernorm = [&](const void* gamma, const void* beta) {
    AddLayerNormArgs args;
    args.dtype = dtype;
    args.rows = tokens;
    args.hidden = h;
    args.x = proj_;
    args.residual = hidden_;
    args.gamma = gamma;
    args.beta = beta;
    args.eps = config_.layer_norm_eps;
    args.out = hidden_;
    return AddLayerNorm(args, stream);
  };

  AttentionArgs attention;
  attention.dtype = dtype;
  attention.num_sequences = sequences;
  attention.max_seqlen = max_seqlen;
  attention.num_heads = config_.num_heads;
  attention.head_dim = config_.head_dim();
  attention.qkv = scratch_;
  attention.cu_seqlens = cu_seqlens;
  attention.scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim()));
  attention.out = context_;

  const int inter = config_.intermediate_size;
  for (const DeviceLayerWeights& layer : weights_.layers) {
    SLUICE_RETURN_IF_ERROR(
        linear(hidden_, layer.qkv_weight, layer.qkv_bias, scratch_, h, 3 * h, GemmEpilogue::kBias));
    SLUICE_RETURN_IF_ERROR(FusedAttention(attention, stream));
    SLUICE_RETURN_IF_ERROR(linear(context_, layer.attn_out_weight, layer.attn_out_bias, proj_, h, h,
                                  GemmEpilogue::kBias));
    SLUICE_RETURN_IF_ERROR(add_layernorm(layer.attn_ln_weight, layer.attn_ln_bias));
    SLUICE_RETURN_IF_ERROR(linear(hidden_, layer.ffn_in_weight, layer.ffn_in_bias, scratch_, h,
                                  inter, FfnEpilogue(config_.activation)));
    SLUICE_RETURN_IF_ERROR(linear(scratch_, layer.ffn_out_weight, layer.ffn_out_bias, proj_, inter,
                                  h, GemmEpilogue::kBias));
    SLUICE_RETURN_IF_ERROR(add_layernorm(layer.ffn_ln_weight, layer.ffn_ln_bias));
  }

  PoolingArgs pool;
  pool.dtype = dtype;
  pool.pooling = pooling_;
  pool.num_sequences = sequences;
  pool.hidden = h;
  pool.states = hidden_;
  pool.cu_seqlens = cu_seqlens;
  pool.normalize = normalize;
  pool.out = pooled_;
  SLUICE_RETURN_IF_ERROR(PoolAndNormalize(pool, stream));

  const size_t pooled_bytes = static_cast<size_t>(sequences) * h * sizeof(float);
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(host_pooled_.data(), pooled_, pooled_bytes, cudaMemcpyDeviceToHost, stream));
  SLUICE_RETURN_IF_ERROR(stream_.Synchronize());
  const auto* pooled = static_cast<const float*>(host_pooled_.data());
  out->assign(pooled, pooled + static_cast<size_t>(sequences) * h);
  return Status::Ok();
}

}  // namespace sluice::cuda
