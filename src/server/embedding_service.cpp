#include "server/embedding_service.h"

#include "cache/cache_key_builder.h"

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

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

StatusOr<std::unique_ptr<EmbeddingService>> EmbeddingService::Create(
    EmbeddingServiceOptions options, const Tokenizer* tokenizer, DynamicBatcher* batcher) {
  if (tokenizer == nullptr || batcher == nullptr) {
    return InvalidArgument("the embedding service needs a tokenizer and a batcher");
  }
  if (options.max_input_length == 0 || options.max_client_batch_size == 0 ||
      options.max_concurrent_requests == 0) {
    return InvalidArgument("embedding service limits must be positive");
  }
  return std::unique_ptr<EmbeddingService>(new EmbeddingService(options, tokenizer, batcher));
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
  const size_t count = encodings->size();
  const size_t row = static_cast<size_t>(dim);
  // Full-size vectors are cached; the `dimensions` cut is applied per request afterwards.
  auto finish = [release_and_done = std::move(release_and_done), count, dim, tokens, normalize,
                 dims = options.dimensions](StatusOr<std::vector<float>> data) {
    if (!data.ok()) {
      release_and_done(data.status());
      return;
    }
    Embeddings e;
    e.data = std::move(data).value();
    e.count = count;
    e.dim = dim;
    e.prompt_tokens = tokens;
    if (dims && *dims < dim) CutDimensions(*dims, normalize, &e);
    release_and_done(std::move(e));
  };

  // Cache lookup: the rows found are copied in, only the others go to the batcher.
  std::vector<float> data;
  std::vector<size_t> missing;  // indices of inputs to compute
  std::vector<CacheKey> keys;
  if (options_.cache != nullptr && !inputs.is_tokens) {
    const bool truncate = options.truncate.value_or(options_.auto_truncate);
    CacheKeyOptions key_options;
    key_options.model_id = options_.cache_model_id;
    key_options.revision = options_.cache_revision;
    key_options.pooling = options_.cache_pooling;
    key_options.normalize = normalize;
    key_options.truncate = truncate;
    key_options.truncation_side =
        options.truncation_side == TruncationSide::kRight ? "right" : "left";
    key_options.max_input_tokens = static_cast<int64_t>(options_.max_input_length);
    CacheKeyBuilder builder(key_options);
    keys.reserve(count);
    for (const std::string& text : inputs.texts) keys.push_back(builder.ForText(text));
    std::vector<CachedVector> found = options_.cache->GetMany(keys, options_.cache_model_version);
    data.resize(count * row);
    for (size_t i = 0; i < count; ++i) {
      if (found[i] && found[i]->size() == row) {
        std::memcpy(data.data() + i * row, found[i]->data(), row * sizeof(float));
      } else {
        missing.push_back(i);
      }
    }
    if (missing.empty()) {
      finish(std::move(data));
      return;
    }
  }

  EmbedTask task;
  if (missing.empty()) {
    task.sequences = std::move(encodings).value();
  } else {
    task.sequences.reserve(missing.size());
    for (size_t i : missing) task.sequences.push_back(std::move((*encodings)[i]));
  }
  task.normalize = normalize;
  task.deadline = options.deadline;
  task.cancelled = options.cancelled;
  task.done = [finish = std::move(finish), data = std::move(data), missing = std::move(missing),
               keys = std::move(keys), cache = options_.cache,
               version = options_.cache_model_version,
               row](StatusOr<std::vector<float>> vectors) mutable {
    if (!vectors.ok() || keys.empty()) {
      finish(std::move(vectors));
      return;
    }
    std::vector<CacheKey> put_keys;
    std::vector<CachedVector> put_values;
    for (size_t m = 0; m < missing.size(); ++m) {
      const float* src = vectors->data() + m * row;
      std::memcpy(data.data() + missing[m] * row, src, row * sizeof(float));
      put_keys.push_back(keys[missing[m]]);
      put_values.push_back(MakeCachedVector(std::vector<float>(src, src + row)));
    }
    cache->PutMany(put_keys, put_values, version);
    finish(std::move(data));
  };
  batcher_->Submit(std::move(task));
}

}  // namespace sluice
