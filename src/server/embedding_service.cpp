#include "server/embedding_service.h"

#include <cmath>
#include <mutex>
#include <string>
#include <utility>

#include "common/logging.h"

namespace sluice {
namespace {

std::string Where(size_t i) { return "input[" + std::to_string(i) + "]"; }

// Cuts each row of `e` to `dims` components, re-normalising when asked.
void CutDimensions(int dims, bool normalize, Embeddings* e) {
  std::vector<float> out(e->count * static_cast<size_t>(dims));
  for (size_t r = 0; r < e->count; ++r) {
    const float* src = e->data.data() + r * static_cast<size_t>(e->dim);
    float* dst = out.data() + r * static_cast<size_t>(dims);
    double norm = 0;
    for (int c = 0; c < dims; ++c) {
      dst[c] = src[c];
      norm += static_cast<double>(src[c]) * src[c];
    }
    if (normalize && norm > 0) {
      auto scale = static_cast<float>(1.0 / std::sqrt(norm));
      for (int c = 0; c < dims; ++c) dst[c] *= scale;
    }
  }
  e->data = std::move(out);
  e->dim = dims;
}

}  // namespace

// One admitted request on the cached path. Its rows come from the cache, from another
// request's computation of the same input, or from its own batch, on whichever thread has
// them; the last row (or the first failure) answers. Thread-safe.
class EmbeddingService::Request {
 public:
  Request(std::vector<Encoding> encodings, std::vector<CacheKey> keys, size_t prompt_tokens,
          int dim, const EmbedOptions& options, bool normalize,
          std::function<void(StatusOr<Embeddings>)> done)
      : encodings_(std::move(encodings)),
        keys_(std::move(keys)),
        rows_(encodings_.size()),
        remaining_(encodings_.size()),
        prompt_tokens_(prompt_tokens),
        dim_(dim),
        dimensions_(options.dimensions),
        normalize_(normalize),
        deadline_(options.deadline),
        cancelled_(options.cancelled),
        done_(std::move(done)) {}

  size_t size() const { return encodings_.size(); }
  const Encoding& encoding(size_t i) const { return encodings_[i]; }
  const CacheKey& key(size_t i) const { return keys_[i]; }
  bool normalize() const { return normalize_; }
  SteadyTime deadline() const { return deadline_; }
  const std::shared_ptr<const std::atomic<bool>>& cancelled() const { return cancelled_; }
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // True the first time only: the request is then watched for its deadline.
  bool StartWatch() { return !watched_.exchange(true, std::memory_order_acq_rel); }

  // Sets row `i`. REQUIRES: each row set at most once; value holds dim floats.
  void Complete(size_t i, CachedVector value) {
    if (finished()) return;
    rows_[i] = std::move(value);
    // acq_rel: the thread that takes the count to zero sees every other thread's rows.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::call_once(done_once_, [this] {
      finished_.store(true, std::memory_order_release);
      Embeddings e;
      e.count = rows_.size();
      e.dim = dim_;
      e.prompt_tokens = prompt_tokens_;
      e.data.reserve(e.count * static_cast<size_t>(dim_));
      for (const CachedVector& row : rows_) e.data.insert(e.data.end(), row->begin(), row->end());
      if (dimensions_ && *dimensions_ < dim_) CutDimensions(*dimensions_, normalize_, &e);
      done_(std::move(e));
    });
  }

  void Fail(Status status) {
    std::call_once(done_once_, [this, &status] {
      finished_.store(true, std::memory_order_release);
      done_(std::move(status));
    });
  }

 private:
  const std::vector<Encoding> encodings_;
  const std::vector<CacheKey> keys_;
  std::vector<CachedVector> rows_;  // written at distinct indices by different threads
  std::atomic<size_t> remaining_;
  const size_t prompt_tokens_;
  const int dim_;
  const std::optional<int> dimensions_;
  const bool normalize_;
  const SteadyTime deadline_;
  const std::shared_ptr<const std::atomic<bool>> cancelled_;
  const std::function<void(StatusOr<Embeddings>)> done_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> watched_{false};
  std::once_flag done_once_;
};

EmbeddingService::EmbeddingService(EmbeddingServiceOptions options, const Tokenizer* tokenizer,
                                   DynamicBatcher* batcher)
    : options_(std::move(options)), tokenizer_(tokenizer), batcher_(batcher) {
  if (options_.cache.cache == nullptr) return;
  // Every combination of the request options that change a vector, hashed once.
  for (int normalize = 0; normalize < 2; ++normalize) {
    for (int truncate = 0; truncate < 2; ++truncate) {
      for (int left = 0; left < 2; ++left) {
        CacheKeyOptions k;
        k.model_id = options_.cache.model_id;
        k.revision = options_.cache.revision;
        k.pooling = options_.cache.pooling;
        k.normalize = normalize != 0;
        k.truncate = truncate != 0;
        k.truncation_side = left != 0 ? "left" : "right";
        k.max_input_tokens = static_cast<int64_t>(options_.max_input_length);
        // Cached vectors are full length whatever `dimensions` a request asks for.
        k.dimensions = 0;
        key_builders_.emplace_back(k);
      }
    }
  }
}

const CacheKeyBuilder& EmbeddingService::KeysFor(bool normalize, bool truncate,
                                                 TruncationSide side) const {
  size_t index = (normalize ? 4 : 0) + (truncate ? 2 : 0) + (side == TruncationSide::kLeft ? 1 : 0);
  return key_builders_[index];
}

StatusOr<std::unique_ptr<EmbeddingService>> EmbeddingService::Create(
    EmbeddingServiceOptions options, const Tokenizer* tokenizer, DynamicBatcher* batcher) {
  if (tokenizer == nullptr || batcher == nullptr) {
    return InvalidArgument("the embedding service needs a tokenizer and a batcher");
  }
  if (options.max_input_length == 0 || options.max_client_batch_size == 0 ||
      options.max_concurrent_requests == 0) {
    return InvalidArgument("embedding service limits must be positive");
  }
  if (options.cache.cache != nullptr &&
      (options.cache.model_id.empty() || options.cache.revision.empty() ||
       options.cache.pooling.empty() || options.cache.model_version.empty())) {
    return InvalidArgument("a result cache needs the model's id, revision, pooling and version");
  }
  return std::unique_ptr<EmbeddingService>(
      new EmbeddingService(std::move(options), tokenizer, batcher));
}

StatusOr<std::vector<Encoding>> EmbeddingService::Encode(const EmbedInputs& inputs,
                                                         const EmbedOptions& options) const {
  if (inputs.size() == 0) return InvalidArgument("the input must not be empty");
  if (inputs.size() > options_.max_client_batch_size) {
    return TooLarge("the request has " + std::to_string(inputs.size()) +
                    " inputs, over the limit of " + std::to_string(options_.max_client_batch_size));
  }
  bool truncate = options.truncate.value_or(options_.auto_truncate);
  size_t limit = options_.max_input_length;
  std::vector<Encoding> encodings;
  encodings.reserve(inputs.size());
  if (!inputs.is_tokens) {
    EncodeOptions encode;
    encode.side = options.truncation_side;
    encode.limit = limit;
    if (truncate) encode.max_length = limit;
    for (size_t i = 0; i < inputs.texts.size(); ++i) {
      if (inputs.texts[i].empty()) return InvalidArgument(Where(i) + " must not be empty");
      StatusOr<Encoding> e = tokenizer_->Encode(inputs.texts[i], encode);
      if (!e.ok()) {
        if (e.status().code() == StatusCode::kTooLarge) {
          return TooLarge(Where(i) + " is longer than the model's maximum of " +
                          std::to_string(limit) + " tokens; shorten it or ask for truncation (" +
                          e.status().message() + ")");
        }
        return e.status().WithContext(Where(i));
      }
      encodings.push_back(std::move(e).value());
    }
    return encodings;
  }
  const size_t vocab = tokenizer_->vocab_size();
  for (size_t i = 0; i < inputs.token_ids.size(); ++i) {
    const std::vector<int32_t>& ids = inputs.token_ids[i];
    if (ids.empty()) return InvalidArgument(Where(i) + " must not be empty");
    for (int32_t id : ids) {
      if (static_cast<size_t>(id) >= vocab) {
        return InvalidArgument(Where(i) + " holds token id " + std::to_string(id) +
                               ", outside the vocabulary of " + std::to_string(vocab));
      }
    }
    Encoding e;
    if (ids.size() > limit) {
      if (!truncate) {
        return TooLarge(Where(i) + " has " + std::to_string(ids.size()) +
                        " tokens, over the model's maximum of " + std::to_string(limit) +
                        "; shorten it or ask for truncation");
      }
      auto begin = options.truncation_side == TruncationSide::kRight
                       ? ids.begin()
                       : ids.end() - static_cast<std::ptrdiff_t>(limit);
      e.ids.assign(begin, begin + static_cast<std::ptrdiff_t>(limit));
    } else {
      e.ids = ids;
    }
    e.type_ids.assign(e.ids.size(), 0);
    encodings.push_back(std::move(e));
  }
  return encodings;
}

StatusOr<std::vector<Encoding>> EmbeddingService::Tokenize(const std::vector<std::string>& texts,
                                                           bool add_special_tokens) const {
  if (texts.empty()) return InvalidArgument("the input must not be empty");
  if (texts.size() > options_.max_client_batch_size) {
    return TooLarge("the request has " + std::to_string(texts.size()) +
                    " inputs, over the limit of " + std::to_string(options_.max_client_batch_size));
  }
  EncodeOptions encode;
  encode.add_special_tokens = add_special_tokens;
  encode.limit = options_.max_input_length;
  std::vector<Encoding> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    StatusOr<Encoding> e = tokenizer_->Encode(texts[i], encode);
    if (!e.ok()) return e.status().WithContext(Where(i));
    out.push_back(std::move(e).value());
  }
  return out;
}

void EmbeddingService::Embed(EmbedInputs inputs, const EmbedOptions& options,
                             std::function<void(StatusOr<Embeddings>)> done) {
  // Admission counts requests, not inputs, so a batch request is one unit like a single one.
  if (in_flight_.fetch_add(1) >= options_.max_concurrent_requests) {
    in_flight_.fetch_sub(1);
    done(ResourceExhausted("too many concurrent requests (limit " +
                           std::to_string(options_.max_concurrent_requests) + "); retry shortly"));
    return;
  }
  const int dim = embedding_dim();
  auto release_and_done = [this, done = std::move(done)](StatusOr<Embeddings> result) {
    in_flight_.fetch_sub(1);
    done(std::move(result));
  };
  if (options.dimensions && (*options.dimensions < 1 || *options.dimensions > dim)) {
    release_and_done(InvalidArgument("'dimensions' must be between 1 and " + std::to_string(dim) +
                                     " for this model"));
    return;
  }
  // Inputs are tokenized even when their vectors are cached: validation and the usage counts
  // then do not depend on what happens to be in the cache.
  SteadyTime tokenize_start = SteadyClock::now();
  StatusOr<std::vector<Encoding>> encodings = Encode(inputs, options);
  if (!encodings.ok()) {
    release_and_done(encodings.status());
    return;
  }
  if (options_.on_tokenized) options_.on_tokenized(SteadyClock::now() - tokenize_start, *encodings);
  size_t tokens = 0;
  for (const Encoding& e : *encodings) tokens += e.ids.size();
  const bool normalize = options.normalize.value_or(options_.normalize);

  if (caching() && options.use_cache) {
    const bool truncate = options.truncate.value_or(options_.auto_truncate);
    const CacheKeyBuilder& builder = KeysFor(normalize, truncate, options.truncation_side);
    std::vector<CacheKey> keys;
    keys.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      keys.push_back(inputs.is_tokens ? builder.ForTokens(inputs.token_ids[i])
                                      : builder.ForText(inputs.texts[i]));
    }
    auto request = std::make_shared<Request>(std::move(encodings).value(), std::move(keys), tokens,
                                             dim, options, normalize, std::move(release_and_done));
    std::vector<size_t> rows(request->size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    Resolve(request, rows, /*first_pass=*/true);
    return;
  }

  EmbedTask task;
  task.sequences = std::move(encodings).value();
  size_t count = task.sequences.size();
  task.normalize = normalize;
  task.deadline = options.deadline;
  task.cancelled = options.cancelled;
  task.done = [release_and_done = std::move(release_and_done), count, dim, tokens, normalize,
               dims = options.dimensions](StatusOr<std::vector<float>> vectors) {
    if (!vectors.ok()) {
      release_and_done(vectors.status());
      return;
    }
    Embeddings e;
    e.data = std::move(vectors).value();
    e.count = count;
    e.dim = dim;
    e.prompt_tokens = tokens;
    if (dims && *dims < dim) CutDimensions(*dims, normalize, &e);
    release_and_done(std::move(e));
  };
  batcher_->Submit(std::move(task));
}

void EmbeddingService::Resolve(const std::shared_ptr<Request>& request,
                               const std::vector<size_t>& rows, bool first_pass) {
  TieredCache& cache = *options_.cache.cache;
  const std::string& version = options_.cache.model_version;
  const size_t dim = static_cast<size_t>(embedding_dim());
  // A value of the wrong length (a broken shared-store row) must never be served.
  auto usable = [dim](const CachedVector& v) { return v != nullptr && v->size() == dim; };

  std::vector<CachedVector> found(rows.size());
  if (first_pass) {
    std::vector<CacheKey> keys;
    keys.reserve(rows.size());
    for (size_t i : rows) keys.push_back(request->key(i));
    found = cache.GetMany(keys, version);
  } else {
    for (size_t j = 0; j < rows.size(); ++j) found[j] = cache.l1().Get(request->key(rows[j]));
  }

  // Rows this request computes as single-flight leader, with their flights.
  std::vector<size_t> compute;
  auto flights = std::make_shared<std::vector<SingleFlight::Flight>>();
  for (size_t j = 0; j < rows.size(); ++j) {
    const size_t i = rows[j];
    if (usable(found[j])) {
      request->Complete(i, std::move(found[j]));
      continue;
    }
    if (found[j] != nullptr) {
      SLUICE_LOG_WARN("cached vector of {} floats for a {}-dimensional model ignored",
                      found[j]->size(), dim);
    }
    SingleFlight::Flight flight = cache.single_flight().Join(request->key(i));
    if (flight.is_leader()) {
      // A flight that ended between the lookup and Join has filled the in-process tier.
      if (CachedVector hit = cache.l1().Get(request->key(i)); usable(hit)) {
        flight.Publish(hit);
        request->Complete(i, std::move(hit));
        continue;
      }
      compute.push_back(i);
      flights->push_back(std::move(flight));
      continue;
    }
    // The leader computes under its own deadline; this request keeps to its own.
    if (request->deadline() != SteadyTime::max() && request->StartWatch()) {
      deadline_watch_.Add(request->deadline(), [weak = std::weak_ptr<Request>(request)] {
        if (std::shared_ptr<Request> r = weak.lock()) {
          r->Fail(DeadlineExceeded(
              "request deadline passed while an identical input in flight was computed"));
        }
      });
    }
    flight.OnDone([this, request, i](const SingleFlight::Result& result, bool abandoned) {
      if (request->finished()) return;
      if (abandoned) {
        // The leader's own request gave up (deadline, client gone): try again, maybe as leader.
        Resolve(request, {i}, /*first_pass=*/false);
        return;
      }
      if (!result.ok()) {
        request->Fail(result.status());
        return;
      }
      request->Complete(i, *result);
    });
  }
  if (compute.empty()) return;

  EmbedTask task;
  task.sequences.reserve(compute.size());
  for (size_t i : compute) task.sequences.push_back(request->encoding(i));
  task.normalize = request->normalize();
  task.deadline = request->deadline();
  task.cancelled = request->cancelled();
  task.done = [this, request, compute = std::move(compute),
               flights](StatusOr<std::vector<float>> vectors) {
    TieredCache& tiers = *options_.cache.cache;
    if (!vectors.ok()) {
      const StatusCode code = vectors.status().code();
      // This request's own deadline or disconnect says nothing about the input: abandon, so
      // that followers retry. Anything else (a device failure) holds for them too.
      if (code != StatusCode::kDeadlineExceeded && code != StatusCode::kCancelled) {
        for (SingleFlight::Flight& f : *flights) f.Publish(vectors.status());
      }
      flights->clear();
      request->Fail(vectors.status());
      return;
    }
    const size_t d = static_cast<size_t>(embedding_dim());
    std::vector<CacheKey> keys;
    std::vector<CachedVector> values;
    keys.reserve(compute.size());
    values.reserve(compute.size());
    for (size_t j = 0; j < compute.size(); ++j) {
      const float* row = vectors->data() + j * d;
      keys.push_back(request->key(compute[j]));
      values.push_back(MakeCachedVector(std::vector<float>(row, row + d)));
    }
    // Fill before publishing, so that a request arriving after Publish hits the cache.
    tiers.PutMany(keys, values, options_.cache.model_version);
    for (size_t j = 0; j < compute.size(); ++j) {
      (*flights)[j].Publish(values[j]);
      request->Complete(compute[j], values[j]);
    }
    flights->clear();
  };
  batcher_->Submit(std::move(task));
}

}  // namespace sluice
