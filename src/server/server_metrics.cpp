#include "server/server_metrics.h"

#include <charconv>
#include <string>
#include <string_view>

namespace sluice {
namespace {

using metrics::Histogram;
using metrics::MetricsRegistry;

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// 50 us to ~26 s: cache hits answer in tens of microseconds, long CPU batches take seconds.
std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,   5,      10,    25};
}

// 1, 2, 4, ... `top`.
std::vector<double> PowersOfTwo(double top) {
  std::vector<double> bounds;
  for (double b = 1; b <= top; b *= 2) bounds.push_back(b);
  return bounds;
}

EmbeddingService* Service(const ApiContext* context) {
  return context->service.load(std::memory_order_acquire);
}

}  // namespace

StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(MetricsRegistry* registry,
                                                               const Router* router,
                                                               const ApiContext* context,
                                                               TieredCache* cache) {
  if (registry == nullptr || router == nullptr || context == nullptr) {
    return InvalidArgument("server metrics need a registry, a router and an API context");
  }
  std::unique_ptr<ServerMetrics> m(new ServerMetrics(router));
  SLUICE_ASSIGN_OR_RETURN(m->requests_,
                          registry->AddCounterFamily("sluice_requests_total",
                                                     "HTTP requests answered, by route and status",
                                                     {"route", "status"}));
  SLUICE_ASSIGN_OR_RETURN(
      m->request_duration_,
      registry->AddHistogramFamily("sluice_request_duration_seconds",
                                   "End-to-end request time, from the first byte read to the "
                                   "answer handed to the socket",
                                   {"route"}, LatencyBuckets()));
  SLUICE_ASSIGN_OR_RETURN(m->queue_duration_,
                          registry->AddHistogram("sluice_queue_duration_seconds",
                                                 "Time each sequence waited in the batcher "
                                                 "before its batch started",
                                                 LatencyBuckets()));
  SLUICE_ASSIGN_OR_RETURN(
      m->tokenization_duration_,
      registry->AddHistogram("sluice_tokenization_duration_seconds",
                             "Time to check and tokenize one request's inputs", LatencyBuckets()));
  SLUICE_ASSIGN_OR_RETURN(m->inference_duration_,
                          registry->AddHistogram("sluice_inference_duration_seconds",
                                                 "Backend time of one batch", LatencyBuckets()));
  SLUICE_ASSIGN_OR_RETURN(
      m->batch_size_, registry->AddHistogram("sluice_batch_size", "Sequences per computed batch",
                                             PowersOfTwo(1024)));
  SLUICE_ASSIGN_OR_RETURN(m->batch_tokens_,
                          registry->AddHistogram("sluice_batch_tokens", "Tokens per computed batch",
                                                 PowersOfTwo(65536)));
  SLUICE_ASSIGN_OR_RETURN(
      m->input_length_,
      registry->AddHistogram("sluice_input_length_tokens",
                             "Tokens per input, special tokens included", PowersOfTwo(8192)));

  SLUICE_RETURN_IF_ERROR(registry->AddCallbackGauge(
      "sluice_queue_depth", "Sequences waiting in the batcher for a batch", [context] {
        EmbeddingService* s = Service(context);
        return s == nullptr ? 0.0 : static_cast<double>(s->queue_depth());
      }));
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackGauge(
      "sluice_requests_in_flight", "Embedding requests admitted and not yet answered", [context] {
        EmbeddingService* s = Service(context);
        return s == nullptr ? 0.0 : static_cast<double>(s->in_flight());
      }));

  // Hits and misses are counted per looked-up input by the tiered cache; evictions, entries
  // and bytes by the in-process tier. With the cache off they stay at zero.
  auto tiered = [cache](auto field) {
    return [cache, field] {
      return cache == nullptr ? 0.0 : static_cast<double>(field(cache->Stats()));
    };
  };
  auto lru = [cache](auto field) {
    return [cache, field] {
      return cache == nullptr ? 0.0 : static_cast<double>(field(cache->l1().Stats()));
    };
  };
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(
      "sluice_cache_hits_total", "Inputs whose vector came from the result cache",
      tiered([](const TieredCacheStats& s) { return s.l1_hits + s.l2_hits; })));
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(
      "sluice_cache_misses_total", "Inputs looked up in the result cache and not found",
      tiered([](const TieredCacheStats& s) { return s.misses; })));
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(
      "sluice_cache_evictions_total", "Entries dropped from the in-process cache to make room",
      lru([](const LruCacheStats& s) { return s.evictions; })));
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(
      "sluice_cache_expirations_total", "Entries dropped from the in-process cache by their TTL",
      lru([](const LruCacheStats& s) { return s.expirations; })));
  SLUICE_RETURN_IF_ERROR(
      registry->AddCallbackGauge("sluice_cache_entries", "Entries in the in-process cache",
                                 lru([](const LruCacheStats& s) { return s.entries; })));
  SLUICE_RETURN_IF_ERROR(
      registry->AddCallbackGauge("sluice_cache_bytes", "Bytes charged to the in-process cache",
                                 lru([](const LruCacheStats& s) { return s.bytes; })));
  SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(
      "sluice_cache_coalesced_total",
      "Inputs that waited for an identical input already being computed instead of computing it",
      [cache] {
        return cache == nullptr ? 0.0
                                : static_cast<double>(cache->single_flight().Stats().followers);
      }));
  return m;
}

void ServerMetrics::OnResponse(const HttpRequest& request, int status) {
  std::string_view route = router_->Has(request.path) ? std::string_view(request.path) : "other";
  char code[8];
  auto [end, ec] = std::to_chars(code, code + sizeof(code), status);
  std::string_view status_text =
      ec == std::errc() ? std::string_view(code, static_cast<size_t>(end - code)) : "other";
  requests_->WithLabels({route, status_text}).Increment();
  request_duration_->WithLabels({route}).Observe(
      Seconds(std::chrono::steady_clock::now() - request.received));
}

void ServerMetrics::OnTokenized(std::chrono::nanoseconds elapsed,
                                const std::vector<Encoding>& encodings) {
  tokenization_duration_->Observe(Seconds(elapsed));
  for (const Encoding& e : encodings) input_length_->Observe(static_cast<double>(e.ids.size()));
}

void ServerMetrics::OnBatch(const BatchStats& stats) {
  batch_size_->Observe(static_cast<double>(stats.sequences));
  batch_tokens_->Observe(static_cast<double>(stats.tokens));
  inference_duration_->Observe(Seconds(stats.inference));
  for (std::chrono::nanoseconds wait : stats.queue_waits) queue_duration_->Observe(Seconds(wait));
}

}  // namespace sluice
