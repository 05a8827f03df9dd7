// EmbeddingService: the path from a parsed request to finished vectors, with no JSON and no
// HTTP: admission (max concurrent requests), input checks, tokenization on the caller's thread,
// the result cache (TieredCache, with single-flight so identical inputs in flight are computed
// once), the DynamicBatcher for what the cache lacks, then the `dimensions` cut and
// re-normalisation.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_key_builder.h"
#include "cache/tiered_cache.h"
#include "common/status.h"
#include "scheduler/dynamic_batcher.h"
#include "server/deadline_watch.h"
#include "server/embed_inputs.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

// What identifies the model's results in the cache.
struct ResultCacheOptions {
  // Null: no caching. Must outlive the service.
  TieredCache* cache = nullptr;
  std::string model_id;       // ModelDir::name
  std::string revision;       // ModelDir::revision (config and weights header hash)
  std::string pooling;        // ModelDir::pooling ("mean", "cls", ...)
  std::string model_version;  // ModelDir::cache_key(): names the model in the shared store
};

struct EmbeddingServiceOptions {
  // Longest input in tokens, special tokens included; longer ones are refused (TooLarge)
  // unless truncation is asked for.
  size_t max_input_length = 512;
  // Most inputs in one request.
  size_t max_client_batch_size = 512;
  // Requests admitted at once, whatever their number of inputs; more get ResourceExhausted.
  size_t max_concurrent_requests = 512;
  // Truncate over-long inputs unless the request says otherwise.
  bool auto_truncate = false;
  // Whether vectors are L2-normalised unless the request says otherwise (the model's own
  // sentence-transformers Normalize module decides).
  bool normalize = true;
  // Called after each request's inputs are tokenized, with the time it took (metrics); may be
  // empty.
  std::function<void(std::chrono::nanoseconds elapsed, const std::vector<Encoding>& encodings)>
      on_tokenized;
  // The result cache. Cached values are the model's full-length vectors, so requests that differ
  // only in `dimensions` share entries; the cut happens after the cache.
  ResultCacheOptions cache;
};

// Per-request choices.
struct EmbedOptions {
  std::optional<bool> normalize;
  std::optional<bool> truncate;
  TruncationSide truncation_side = TruncationSide::kRight;
  // Keep the first `dimensions` components (then re-normalise when normalising).
  std::optional<int> dimensions;
  SteadyTime deadline = SteadyTime::max();
  std::shared_ptr<const std::atomic<bool>> cancelled;
  // False: neither read nor fill the result cache for this request.
  bool use_cache = true;
};

struct Embeddings {
  std::vector<float> data;  // row-major [count x dim]
  size_t count = 0;
  int dim = 0;
  size_t prompt_tokens = 0;  // tokens fed to the model, special tokens included
};

class EmbeddingService {
 public:
  // `tokenizer` and `batcher` must outlive the service.
  static StatusOr<std::unique_ptr<EmbeddingService>> Create(EmbeddingServiceOptions options,
                                                            const Tokenizer* tokenizer,
                                                            DynamicBatcher* batcher);

  // Embeds `inputs`. `done` runs exactly once: on the calling thread when the request is
  // refused up front, otherwise on a batcher thread.
  void Embed(EmbedInputs inputs, const EmbedOptions& options,
             std::function<void(StatusOr<Embeddings>)> done);

  // Tokenizes each text (no admission, no batching), refusing over-long ones like Embed().
  StatusOr<std::vector<Encoding>> Tokenize(const std::vector<std::string>& texts,
                                           bool add_special_tokens) const;

  const EmbeddingServiceOptions& options() const { return options_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  int embedding_dim() const { return batcher_->embedding_dim(); }
  // Requests admitted and not yet answered.
  size_t in_flight() const { return in_flight_.load(); }
  // Sequences waiting in the batcher for a batch.
  size_t queue_depth() const { return batcher_->queue_depth(); }
  bool caching() const { return options_.cache.cache != nullptr; }

 private:
  class Request;

  EmbeddingService(EmbeddingServiceOptions options, const Tokenizer* tokenizer,
                   DynamicBatcher* batcher);

  // The encodings of `inputs`, checked and truncated per `options`.
  StatusOr<std::vector<Encoding>> Encode(const EmbedInputs& inputs,
                                         const EmbedOptions& options) const;
  // The key builder for one combination of the options that change a vector.
  const CacheKeyBuilder& KeysFor(bool normalize, bool truncate, TruncationSide side) const;
  // Resolves rows `rows` of `request` from the cache, from identical inputs in flight, or by
  // computing them (as single-flight leader). `first_pass` consults every cache tier; later
  // passes (after a leader gave up) only the in-process one.
  void Resolve(const std::shared_ptr<Request>& request, const std::vector<size_t>& rows,
               bool first_pass);

  const EmbeddingServiceOptions options_;
  const Tokenizer* const tokenizer_;
  DynamicBatcher* const batcher_;
  // Indexed by normalize * 4 + truncate * 2 + (side == kLeft); empty without a cache.
  std::vector<CacheKeyBuilder> key_builders_;
  std::atomic<size_t> in_flight_{0};
  // Fails followers of identical inputs in flight at their own deadline. Declared last: its
  // thread, which calls into requests, stops before anything else here goes.
  DeadlineWatch deadline_watch_;
};

}  // namespace sluice
