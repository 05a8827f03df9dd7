// ServerMetrics: the sluice_* Prometheus metrics of `sluice serve`, registered on one
// MetricsRegistry, and the observers that the HTTP server (OnResponse), the embedding service
// (OnTokenized) and the batcher (OnBatch) call. Gauges and cache counters are read at scrape
// time from the components that already count them.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "cache/tiered_cache.h"
#include "common/status.h"
#include "metrics/metrics_registry.h"
#include "scheduler/dynamic_batcher.h"
#include "server/api_context.h"
#include "server/http_message.h"
#include "server/router.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

class ServerMetrics {
 public:
  // Registers every family on `registry`. `router` bounds the route label (unknown paths count
  // as "other"). `context` (its service, once published) and `cache` (null when caching is off)
  // are read at each scrape; all must outlive the registry.
  static StatusOr<std::unique_ptr<ServerMetrics>> Create(metrics::MetricsRegistry* registry,
                                                         const Router* router,
                                                         const ApiContext* context,
                                                         TieredCache* cache);

  // One answered request: its route, status and end-to-end duration (from its first byte read).
  void OnResponse(const HttpRequest& request, int status);
  // One request's inputs tokenized.
  void OnTokenized(std::chrono::nanoseconds elapsed, const std::vector<Encoding>& encodings);
  // One batch computed.
  void OnBatch(const BatchStats& stats);

 private:
  explicit ServerMetrics(const Router* router) : router_(router) {}

  const Router* const router_;
  metrics::CounterFamily* requests_ = nullptr;            // route, status
  metrics::HistogramFamily* request_duration_ = nullptr;  // route
  metrics::Histogram* queue_duration_ = nullptr;
  metrics::Histogram* tokenization_duration_ = nullptr;
  metrics::Histogram* inference_duration_ = nullptr;
  metrics::Histogram* batch_size_ = nullptr;
  metrics::Histogram* batch_tokens_ = nullptr;
  metrics::Histogram* input_length_ = nullptr;
};

}  // namespace sluice
