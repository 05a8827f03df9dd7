#include "backends/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/add_layernorm.cuh"
#include "backends/cuda/kernels/attention.cuh"
#include "backends/cuda/kernels/embedding_layernorm.cuh"
#include "backends/cuda/kernels/fp8_quantize.cuh"
#include "backends/cuda/kernels/kernel_image.cuh"
#include "backends/cuda/kernels/pooling.cuh"

namespace sluice::cuda {
namespace {

// cuBLASLt's recommended workspace for Hopper.
constexpr size_t kGemmWorkspaceBytes = 32u << 20;
// Attention's grid has one z-slice per sequence in its direct mode.
constexpr size_t kMaxSequencesPerBatch = 65535;
// Smallest graph bucket; below it a forward pass is launch-bound whatever its size.
constexpr int kMinBucketTokens = 64;

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

  if (options.fp8_gemms && (options.dtype != CudaDType::kF16 || options.residual_in_gemm)) {
    return InvalidArgument(
        "fp8 GEMMs run with fp16 activations and the residual added in the LayerNorm");
  }
  if (options.fp8_gemms && (config.hidden_size % 16 != 0 || config.intermediate_size % 16 != 0)) {
    return Unimplemented(fmt::format(
        "fp8 GEMMs need hidden and intermediate sizes that are multiples of 16, not {} and {}",
        config.hidden_size, config.intermediate_size));
  }
  // Bad weights are the caller's error whether or not a GPU is present.
  SLUICE_RETURN_IF_ERROR(DeviceWeights::Check(config, weights));

  std::unique_ptr<CudaBackend> backend(new CudaBackend(config, pooling, options));
  SLUICE_ASSIGN_OR_RETURN(backend->arena_,
                          DeviceArena::Create(options.device, options.gpu_memory_limit));
  // A GPU this build has no code for fails here, clearly, rather than at its first kernel.
  SLUICE_RETURN_IF_ERROR(CheckKernelImage(options.device));
  SLUICE_ASSIGN_OR_RETURN(backend->stream_, CudaStream::Create());
  SLUICE_ASSIGN_OR_RETURN(backend->copy_stream_, CudaStream::Create());
  SLUICE_ASSIGN_OR_RETURN(backend->lt_handle_, CublasLtHandle::Create());
  SLUICE_ASSIGN_OR_RETURN(backend->weights_,
                          DeviceWeights::Upload(config, weights, options.dtype, *backend->arena_,
                                                backend->stream_.get()));
  SLUICE_ASSIGN_OR_RETURN(backend->gemm_workspace_, backend->arena_->Allocate(kGemmWorkspaceBytes));
  SLUICE_ASSIGN_OR_RETURN(backend->gemm_,
                          LtGemm::Create(backend->lt_handle_.get(), backend->gemm_workspace_.data(),
                                         backend->gemm_workspace_.bytes()));
  if (options.fp8_gemms) {
    int major = 0, minor = 0;
    SLUICE_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, options.device));
    SLUICE_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, options.device));
    if (major * 10 + minor < 89) {
      return Unimplemented(
          fmt::format("fp8 GEMMs need a GPU of compute capability 8.9 or newer; device {} is {}.{}",
                      options.device, major, minor));
    }
    SLUICE_RETURN_IF_ERROR(backend->QuantizeWeights());
  }
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&backend->sm_count_, cudaDevAttrMultiProcessorCount, options.device));
  backend->gemm_->set_autotune(options.autotune_gemms);
  backend->gemm_->set_tune_candidates(options.gemm_tune_candidates);
  backend->gemm_->set_tune_custom_options(options.gemm_tune_custom_options,
                                          options.gemm_tune_custom_min_rows);
  for (Slot& slot : backend->slots_) {
    SLUICE_ASSIGN_OR_RETURN(slot.uploaded, CudaEvent::Create(CudaEvent::Kind::kNoTiming));
    SLUICE_ASSIGN_OR_RETURN(slot.done, CudaEvent::Create(CudaEvent::Kind::kNoTiming));
    SLUICE_ASSIGN_OR_RETURN(slot.start, CudaEvent::Create());
    SLUICE_ASSIGN_OR_RETURN(slot.stop, CudaEvent::Create());
  }
  return backend;
}

Status CudaBackend::QuantizeWeights() {
  const auto h = static_cast<size_t>(config_.hidden_size);
  const auto inter = static_cast<size_t>(config_.intermediate_size);
  const size_t qkv = DeviceArena::AlignUp(3 * h * h);
  const size_t ffn = DeviceArena::AlignUp(inter * h);
  // cuBLASLt wants each scale 16-byte aligned.
  constexpr size_t kScaleStride = 16;
  const size_t scales = DeviceArena::AlignUp(3 * kScaleStride);
  const size_t per_layer = qkv + 2 * ffn + scales;
  SLUICE_ASSIGN_OR_RETURN(fp8_weight_buffer_, arena_->Allocate(per_layer * weights_.layers.size()));
  auto* base = static_cast<std::byte*>(fp8_weight_buffer_.data());
  for (const DeviceLayerWeights& layer : weights_.layers) {
    auto* at = base + per_layer * fp8_layers_.size();
    auto* q = reinterpret_cast<uint8_t*>(at);
    auto* fi = reinterpret_cast<uint8_t*>(at + qkv);
    auto* fo = reinterpret_cast<uint8_t*>(at + qkv + ffn);
    auto* qs = reinterpret_cast<float*>(at + qkv + 2 * ffn);
    auto* fis = reinterpret_cast<float*>(at + qkv + 2 * ffn + kScaleStride);
    auto* fos = reinterpret_cast<float*>(at + qkv + 2 * ffn + 2 * kScaleStride);
    cudaStream_t s = stream_.get();
    SLUICE_RETURN_IF_ERROR(
        QuantizeWeightE4m3(options_.dtype, layer.qkv_weight, 3 * h * h, qs, q, s));
    SLUICE_RETURN_IF_ERROR(
        QuantizeWeightE4m3(options_.dtype, layer.ffn_in_weight, inter * h, fis, fi, s));
    SLUICE_RETURN_IF_ERROR(
        QuantizeWeightE4m3(options_.dtype, layer.ffn_out_weight, h * inter, fos, fo, s));
    fp8_layers_.push_back({q, fi, fo, qs, fis, fos});
  }
  return stream_.Synchronize();
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

std::vector<int> CudaBackend::graph_buckets() const {
  std::vector<int> tokens;
  for (const Bucket& b : buckets_) {
    if (b.graph.valid()) tokens.push_back(b.shape.tokens);
  }
  return tokens;
}

CudaBackend::ForwardShape CudaBackend::MakeShape(int tokens, int sequences, int max_tiles) const {
  ForwardShape shape;
  shape.tokens = tokens;
  shape.sequences = sequences;
  shape.max_tiles = max_tiles;
  shape.layout = InputLayout(static_cast<size_t>(tokens), static_cast<size_t>(sequences),
                             static_cast<size_t>(max_tiles));
  return shape;
}

Status CudaBackend::AllocateWorkspaces(const BatchLimits& limits) {
  const size_t tokens = limits.max_batch_tokens;
  const size_t sequences = limits.max_batch_requests;
  const size_t h = static_cast<size_t>(config_.hidden_size);
  const size_t wide = std::max<size_t>(3 * h, static_cast<size_t>(config_.intermediate_size));
  // Room for the longest work list, of 64-row tiles.
  const InputLayout inputs(
      tokens, sequences,
      static_cast<size_t>(MaxAttentionTiles(static_cast<int>(tokens), static_cast<int>(sequences),
                                            /*short_tiles=*/true)));
  const size_t activation_bytes = tokens * h * 2;
  const size_t pooled_bytes = sequences * h * sizeof(float);
  size_t total = 0;
  const size_t fp8_bytes = options_.fp8_gemms ? tokens * h : 0;
  for (size_t bytes : {activation_bytes, tokens * wide * 2, activation_bytes, activation_bytes,
                       inputs.bytes, pooled_bytes, fp8_bytes}) {
    total += DeviceArena::AlignUp(bytes);
  }
  // Nothing may still run on the buffers about to go; graphs hold pointers into them.
  SLUICE_RETURN_IF_ERROR(copy_stream_.Synchronize());
  SLUICE_RETURN_IF_ERROR(stream_.Synchronize());
  buckets_.clear();
  for (Slot& slot : slots_) {
    slot.device_in = DeviceBuffer();
    slot.busy = false;
  }
  workspace_ = DeviceRegion();
  SLUICE_ASSIGN_OR_RETURN(DeviceBuffer buffer, arena_->Allocate(total));
  // Padding rows are computed but never read out; zeros keep them finite from the start.
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(buffer.data(), 0, total, stream_.get()));
  workspace_ = DeviceRegion(std::move(buffer));
  SLUICE_ASSIGN_OR_RETURN(hidden_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(scratch_, workspace_.TakeBytes(tokens * wide * 2));
  SLUICE_ASSIGN_OR_RETURN(context_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(proj_, workspace_.TakeBytes(activation_bytes));
  SLUICE_ASSIGN_OR_RETURN(inputs_, workspace_.Take<std::byte>(inputs.bytes));
  SLUICE_ASSIGN_OR_RETURN(pooled_, workspace_.Take<float>(sequences * h));
  hidden_fp8_ = nullptr;
  if (options_.fp8_gemms) {
    SLUICE_ASSIGN_OR_RETURN(hidden_fp8_, workspace_.Take<uint8_t>(fp8_bytes));
  }
  for (Slot& slot : slots_) {
    SLUICE_ASSIGN_OR_RETURN(slot.host_in, PinnedHostBuffer::Create(inputs.bytes));
    SLUICE_ASSIGN_OR_RETURN(slot.device_in, arena_->Allocate(inputs.bytes));
    SLUICE_ASSIGN_OR_RETURN(slot.host_out, PinnedHostBuffer::Create(pooled_bytes));
  }
  next_collect_ = next_ticket_;

  // Buckets: powers of two and their halfway points (x1.5), up to the graph limit.
  const int graph_max =
      static_cast<int>(std::min<size_t>(options_.graph_max_tokens, limits.max_batch_tokens));
  for (int t = kMinBucketTokens; graph_max > 0;) {
    const int bucket = std::min(t, graph_max);
    const int seqs = std::min(bucket, static_cast<int>(sequences));
    Bucket b;
    b.shape =
        MakeShape(bucket, seqs, MaxAttentionTiles(bucket, seqs, ShortAttentionPass(bucket, seqs)));
    buckets_.push_back(std::move(b));
    if (bucket >= graph_max) break;
    // 64, 96, 128, 192, 256, ...: the step after a power of two is x1.5, then x4/3.
    t = (t & (t - 1)) == 0 ? t + t / 2 : t / 3 * 4;
  }
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
  gemm_->set_reuse_tuning(false);
  SLUICE_RETURN_IF_ERROR(RecordFailure(AllocateWorkspaces(limits)));
  limits_ = limits;
  warmed_up_ = true;
  SLUICE_RETURN_IF_ERROR(RecordFailure(CaptureGraphs()));
  SLUICE_RETURN_IF_ERROR(RecordFailure(TuneEagerShapes()));
  gemm_->set_reuse_tuning(true);

  // One full-length sequence through the public path: loads what the buckets did not.
  const Batch batch =
      FullBatch(static_cast<int>(std::min(limits.max_sequence_length, limits.max_batch_tokens)), 1);
  std::vector<float> out;
  return Embed(batch, &out);
}

Batch CudaBackend::FullBatch(int tokens, int sequences) const {
  const int32_t id = config_.pad_token_id >= 0 && config_.pad_token_id < config_.vocab_size
                         ? config_.pad_token_id
                         : 0;
  const int length = static_cast<int>(std::min<size_t>(limits_.max_sequence_length, tokens));
  Batch batch;
  batch.cu_seqlens = {0};
  while (batch.cu_seqlens.back() < tokens && static_cast<int>(batch.num_sequences()) < sequences) {
    const int n = std::min(length, tokens - batch.cu_seqlens.back());
    for (int i = 0; i < n; ++i) batch.position_ids.push_back(i);
    batch.cu_seqlens.push_back(batch.cu_seqlens.back() + n);
    batch.normalize.push_back(1);
  }
  batch.max_seqlen = length;
  batch.input_ids.assign(batch.position_ids.size(), id);
  batch.token_type_ids.assign(batch.position_ids.size(), 0);
  return batch;
}

Status CudaBackend::TuneEagerShapes() {
  const int graph_max = buckets_.empty() ? 0 : buckets_.back().shape.tokens;
  const int max_tokens = static_cast<int>(limits_.max_batch_tokens);
  const int max_sequences = static_cast<int>(limits_.max_batch_requests);
  // One eager pass per power-of-two class of token counts above the graphs, the last one at
  // the largest batch: each class's GEMMs are timed here, not in the first batch that needs
  // them.
  for (int64_t tokens = 1; tokens < max_tokens;) {
    tokens = std::min<int64_t>(tokens * 2, max_tokens);
    if (tokens <= graph_max) continue;
    const Batch batch = FullBatch(static_cast<int>(tokens), max_sequences);
    const CudaGraphExec* graph = nullptr;
    const ForwardShape shape = ShapeFor(batch, &graph);
    if (graph != nullptr) continue;
    SLUICE_RETURN_IF_ERROR(StageInputs(batch, shape));
    SLUICE_RETURN_IF_ERROR(EnqueueForward(shape, stream_.get()));
    SLUICE_RETURN_IF_ERROR(stream_.Synchronize());
  }
  return Status::Ok();
}

Status CudaBackend::StageInputs(const Batch& batch, const ForwardShape& shape) {
  auto* host = static_cast<std::byte*>(slots_[0].host_in.data());
  SLUICE_RETURN_IF_ERROR(Pack(batch, shape, host));
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(inputs_, host, shape.layout.bytes, cudaMemcpyHostToDevice, stream_.get()));
  return Status::Ok();
}

Status CudaBackend::CaptureGraphs() {
  SLUICE_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
  const cudaStream_t stream = stream_.get();
  for (Bucket& bucket : buckets_) {
    // A full bucket of the longest sequences allowed: every kernel and GEMM shape it will use.
    const ForwardShape& shape = bucket.shape;
    SLUICE_RETURN_IF_ERROR(StageInputs(FullBatch(shape.tokens, shape.sequences), shape));
    SLUICE_RETURN_IF_ERROR(EnqueueForward(shape, stream));
    SLUICE_RETURN_IF_ERROR(stream_.Synchronize());
    SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    SLUICE_ASSIGN_OR_RETURN(bucket.graph,
                            CudaGraphExec::EndCapture(stream, EnqueueForward(shape, stream)));
    SLUICE_RETURN_IF_ERROR(bucket.graph.Launch(stream));
    SLUICE_RETURN_IF_ERROR(stream_.Synchronize());
  }
  return Status::Ok();
}

Status CudaBackend::Embed(const Batch& batch, std::vector<float>* out) {
  if (!warmed_up_) return FailedPrecondition("Embed() before Warmup()");
  SLUICE_RETURN_IF_ERROR(Health());
  out->clear();
  if (batch.num_sequences() == 0 && batch.num_tokens() == 0) return Status::Ok();
  if (next_collect_ != next_ticket_) {
    return FailedPrecondition("Embed() while submitted batches are uncollected");
  }
  SLUICE_ASSIGN_OR_RETURN(const uint64_t ticket, Submit(batch));
  return Collect(ticket, out);
}

StatusOr<uint64_t> CudaBackend::Submit(const Batch& batch) {
  if (!warmed_up_) return FailedPrecondition("Submit() before Warmup()");
  SLUICE_RETURN_IF_ERROR(Health());
  if (batch.num_sequences() == 0 && batch.num_tokens() == 0) {
    return InvalidArgument("empty batch: nothing to submit");
  }
  if (batch.num_sequences() == 0) return InvalidArgument("batch has tokens but no cu_seqlens");
  SLUICE_RETURN_IF_ERROR(CheckBatch(batch));
  if (slots_[next_ticket_ % kSlots].busy) {
    return FailedPrecondition(
        fmt::format("{} batches already in flight; Collect() one first", kSlots));
  }
  uint64_t ticket = 0;
  SLUICE_RETURN_IF_ERROR(RecordFailure(SubmitChecked(batch, &ticket)));
  return ticket;
}

Status CudaBackend::SubmitChecked(const Batch& batch, uint64_t* ticket) {
  SLUICE_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
  Slot& slot = slots_[next_ticket_ % kSlots];
  const CudaGraphExec* graph = nullptr;
  const ForwardShape shape = ShapeFor(batch, &graph);
  auto* host = static_cast<std::byte*>(slot.host_in.data());
  SLUICE_RETURN_IF_ERROR(Pack(batch, shape, host));

  // Upload on the copy stream while the compute stream may still run the previous batch.
  const cudaStream_t copy = copy_stream_.get();
  const cudaStream_t compute = stream_.get();
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot.device_in.data(), host, shape.layout.bytes,
                                              cudaMemcpyHostToDevice, copy));
  SLUICE_RETURN_IF_ERROR(slot.uploaded.Record(copy));
  SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(compute, slot.uploaded.get(), 0));
  SLUICE_RETURN_IF_ERROR(slot.start.Record(compute));
  // Graphs read their inputs at fixed addresses: one short device copy puts them there.
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(inputs_, slot.device_in.data(), shape.layout.bytes,
                                              cudaMemcpyDeviceToDevice, compute));
  if (graph != nullptr) {
    SLUICE_RETURN_IF_ERROR(graph->Launch(compute));
  } else {
    SLUICE_RETURN_IF_ERROR(EnqueueForward(shape, compute));
  }
  const size_t pooled_bytes = batch.num_sequences() * config_.hidden_size * sizeof(float);
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot.host_out.data(), pooled_, pooled_bytes,
                                              cudaMemcpyDeviceToHost, compute));
  SLUICE_RETURN_IF_ERROR(slot.stop.Record(compute));
  SLUICE_RETURN_IF_ERROR(slot.done.Record(compute));
  slot.busy = true;
  slot.sequences = batch.num_sequences();
  *ticket = next_ticket_++;
  return Status::Ok();
}

Status CudaBackend::Collect(uint64_t ticket, std::vector<float>* out) {
  if (ticket != next_collect_ || next_collect_ == next_ticket_) {
    return InvalidArgument(fmt::format("ticket {} is not the oldest uncollected one", ticket));
  }
  return RecordFailure(CollectChecked(ticket, out));
}

Status CudaBackend::CollectChecked(uint64_t ticket, std::vector<float>* out) {
  Slot& slot = slots_[ticket % kSlots];
  // Whatever happens, the ticket is spent and its slot free again.
  slot.busy = false;
  ++next_collect_;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(slot.done.get()));
  SLUICE_ASSIGN_OR_RETURN(last_forward_ms_, slot.stop.ElapsedMsSince(slot.start));
  const auto* pooled = static_cast<const float*>(slot.host_out.data());
  out->assign(pooled, pooled + slot.sequences * config_.hidden_size);
  return Status::Ok();
}

Status CudaBackend::OpMarks::Mark(const char* label, cudaStream_t stream) {
  if (used == events.size()) {
    SLUICE_ASSIGN_OR_RETURN(CudaEvent event, CudaEvent::Create());
    events.push_back(std::move(event));
    labels.push_back(nullptr);
  }
  labels[used] = label;
  return events[used++].Record(stream);
}

StatusOr<std::vector<OpTime>> CudaBackend::ProfileForward(const Batch& batch, int repeats) {
  if (!warmed_up_) return FailedPrecondition("ProfileForward() before Warmup()");
  SLUICE_RETURN_IF_ERROR(Health());
  if (next_collect_ != next_ticket_) {
    return FailedPrecondition("ProfileForward() while submitted batches are uncollected");
  }
  if (batch.num_sequences() == 0) return InvalidArgument("empty batch: nothing to profile");
  SLUICE_RETURN_IF_ERROR(CheckBatch(batch));
  const CudaGraphExec* graph = nullptr;
  const ForwardShape shape = ShapeFor(batch, &graph);
  SLUICE_RETURN_IF_ERROR(StageInputs(batch, shape));
  const cudaStream_t stream = stream_.get();
  SLUICE_RETURN_IF_ERROR(RecordFailure(EnqueueForward(shape, stream)));

  std::vector<std::string> order;
  std::vector<std::vector<double>> per_rep;  // [op][repeat]
  std::vector<int> calls;
  OpMarks marks;
  for (int r = 0; r < std::max(repeats, 1); ++r) {
    marks.used = 0;
    SLUICE_RETURN_IF_ERROR(RecordFailure(marks.Mark("start", stream)));
    SLUICE_RETURN_IF_ERROR(RecordFailure(EnqueueForward(shape, stream, &marks)));
    SLUICE_RETURN_IF_ERROR(RecordFailure(stream_.Synchronize()));
    std::vector<double> sums(order.size(), 0.0);
    std::vector<int> counts(order.size(), 0);
    for (size_t i = 1; i < marks.used; ++i) {
      SLUICE_ASSIGN_OR_RETURN(const float ms, marks.events[i].ElapsedMsSince(marks.events[i - 1]));
      const std::string op = marks.labels[i];
      auto it = std::find(order.begin(), order.end(), op);
      if (it == order.end()) {
        order.push_back(op);
        per_rep.emplace_back();
        sums.push_back(0.0);
        counts.push_back(0);
        it = order.end() - 1;
      }
      const auto k = static_cast<size_t>(it - order.begin());
      sums[k] += ms;
      ++counts[k];
    }
    for (size_t k = 0; k < order.size(); ++k) per_rep[k].push_back(sums[k]);
    calls = counts;
  }
  std::vector<OpTime> out;
  for (size_t k = 0; k < order.size(); ++k) {
    std::vector<double>& v = per_rep[k];
    std::sort(v.begin(), v.end());
    out.push_back(OpTime{order[k], calls[k], v[v.size() / 2]});
  }
  return out;
}

Status CudaBackend::EnqueueForward(const ForwardShape& shape, cudaStream_t stream, OpMarks* marks) {
  auto mark = [&](const char* op) {
    return marks != nullptr ? marks->Mark(op, stream) : Status::Ok();
  };
  const int tokens = shape.tokens;
  const int h = config_.hidden_size;
  const CudaDType dtype = options_.dtype;
  const InputLayout& layout = shape.layout;
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
  const bool fp8 = options_.fp8_gemms;
  if (fp8) {
    SLUICE_RETURN_IF_ERROR(
        ConvertToE4m3(dtype, hidden_, static_cast<size_t>(tokens) * h, hidden_fp8_, stream));
  }
  SLUICE_RETURN_IF_ERROR(mark("embedding+layernorm"));

  auto linear_args = [&](const void* x, const void* w, const void* bias, void* y, int in, int out_f,
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
    return args;
  };
  auto linear = [&](const void* x, const void* w, const void* bias, void* y, int in, int out_f,
                    GemmEpilogue epilogue, const void* residual = nullptr) {
    LinearArgs args = linear_args(x, w, bias, y, in, out_f, epilogue);
    args.residual = residual;
    return gemm_->Linear(args, stream);
  };
  // fp8: x and w in E4M3 with w's scale; y in E4M3 too when y_fp8.
  auto linear_fp8 = [&](const uint8_t* x, const uint8_t* w, const float* w_scale, const void* bias,
                        void* y, int in, int out_f, GemmEpilogue epilogue, bool y_fp8) {
    LinearArgs args = linear_args(x, w, bias, y, in, out_f, epilogue);
    args.fp8 = true;
    args.w_scale = w_scale;
    args.y_fp8 = y_fp8;
    args.fast_accum = options_.fp8_fast_accum;
    args.c_unused = proj_;  // free while the feed-forward input GEMM runs
    return gemm_->Linear(args, stream);
  };
  const bool residual_in_gemm = options_.residual_in_gemm;
  const void* gemm_residual = residual_in_gemm ? hidden_ : nullptr;
  const bool bias_in_ln = options_.out_bias_in_layernorm;
  const GemmEpilogue out_epilogue = bias_in_ln ? GemmEpilogue::kNone : GemmEpilogue::kBias;
  auto add_layernorm = [&](const void* bias, const void* gamma, const void* beta) {
    AddLayerNormArgs args;
    args.dtype = dtype;
    args.rows = tokens;
    args.hidden = h;
    args.x = proj_;
    args.residual = residual_in_gemm ? nullptr : hidden_;
    args.bias = bias_in_ln ? bias : nullptr;
    args.gamma = gamma;
    args.beta = beta;
    args.eps = config_.layer_norm_eps;
    args.out = hidden_;
    args.out_fp8 = hidden_fp8_;
    return AddLayerNorm(args, stream);
  };

  AttentionArgs attention;
  attention.dtype = dtype;
  attention.num_sequences = shape.sequences;
  attention.max_seqlen = static_cast<int>(limits_.max_sequence_length);
  attention.num_heads = config_.num_heads;
  attention.head_dim = config_.head_dim();
  attention.qkv = scratch_;
  attention.cu_seqlens = cu_seqlens;
  attention.scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim()));
  attention.out = context_;
  attention.tiles = reinterpret_cast<const int32_t*>(inputs_ + layout.tiles);
  attention.num_tiles = reinterpret_cast<const int32_t*>(inputs_ + layout.num_tiles);
  attention.max_tiles = shape.max_tiles;
  attention.total_rows = tokens;
  attention.hopper = HopperAttentionPass(shape.tokens, shape.sequences);
  attention.short_tiles = ShortAttentionKernel(shape);

  const int inter = config_.intermediate_size;
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const DeviceLayerWeights& layer = weights_.layers[l];
    const bool qkv_bias_late = options_.qkv_bias_in_attention;
    const GemmEpilogue qkv_epilogue = qkv_bias_late ? GemmEpilogue::kNone : GemmEpilogue::kBias;
    if (fp8) {
      const Fp8LayerWeights& q = fp8_layers_[l];
      SLUICE_RETURN_IF_ERROR(linear_fp8(hidden_fp8_, q.qkv, q.qkv_scale, layer.qkv_bias, scratch_,
                                        h, 3 * h, qkv_epilogue, false));
    } else {
      SLUICE_RETURN_IF_ERROR(
          linear(hidden_, layer.qkv_weight, layer.qkv_bias, scratch_, h, 3 * h, qkv_epilogue));
    }
    attention.qkv_bias = qkv_bias_late ? layer.qkv_bias : nullptr;
    SLUICE_RETURN_IF_ERROR(mark("qkv_gemm"));
    SLUICE_RETURN_IF_ERROR(FusedAttention(attention, stream));
    SLUICE_RETURN_IF_ERROR(mark("attention"));
    SLUICE_RETURN_IF_ERROR(linear(context_, layer.attn_out_weight, layer.attn_out_bias, proj_, h, h,
                                  out_epilogue, gemm_residual));
    SLUICE_RETURN_IF_ERROR(mark("attn_out_gemm"));
    SLUICE_RETURN_IF_ERROR(
        add_layernorm(layer.attn_out_bias, layer.attn_ln_weight, layer.attn_ln_bias));
    SLUICE_RETURN_IF_ERROR(mark("attn_layernorm"));
    if (fp8) {
      // The activation's output goes straight to E4M3: the next GEMM's input, half the bytes.
      const Fp8LayerWeights& q = fp8_layers_[l];
      SLUICE_RETURN_IF_ERROR(linear_fp8(hidden_fp8_, q.ffn_in, q.ffn_in_scale, layer.ffn_in_bias,
                                        scratch_, h, inter, FfnEpilogue(config_.activation), true));
      SLUICE_RETURN_IF_ERROR(mark("ffn_in_gemm"));
      SLUICE_RETURN_IF_ERROR(linear_fp8(static_cast<const uint8_t*>(scratch_), q.ffn_out,
                                        q.ffn_out_scale, layer.ffn_out_bias, proj_, inter, h,
                                        out_epilogue, false));
    } else {
      SLUICE_RETURN_IF_ERROR(linear(hidden_, layer.ffn_in_weight, layer.ffn_in_bias, scratch_, h,
                                    inter, FfnEpilogue(config_.activation)));
      SLUICE_RETURN_IF_ERROR(mark("ffn_in_gemm"));
      SLUICE_RETURN_IF_ERROR(linear(scratch_, layer.ffn_out_weight, layer.ffn_out_bias, proj_,
                                    inter, h, out_epilogue, gemm_residual));
    }
    SLUICE_RETURN_IF_ERROR(mark("ffn_out_gemm"));
    SLUICE_RETURN_IF_ERROR(
        add_layernorm(layer.ffn_out_bias, layer.ffn_ln_weight, layer.ffn_ln_bias));
    SLUICE_RETURN_IF_ERROR(mark("ffn_layernorm"));
  }

  PoolingArgs pool;
  pool.dtype = dtype;
  pool.pooling = pooling_;
  pool.num_sequences = shape.sequences;
  pool.hidden = h;
  pool.states = hidden_;
  pool.cu_seqlens = cu_seqlens;
  pool.normalize = normalize;
  pool.out = pooled_;
  SLUICE_RETURN_IF_ERROR(PoolAndNormalize(pool, stream));
  return mark("pooling");
}

}  // namespace sluice::cuda
