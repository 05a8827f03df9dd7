// ApiContext: what the HTTP routes need to answer: the embedding service (published once the
// model is loaded), the model's description and the configured limits.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/embedding_service.h"

namespace sluice {

struct ModelDescription {
  std::string id;                         // the model directory's name or the hub id
  std::vector<std::string> served_names;  // names accepted in "model"; the first is reported
  std::string backend;                    // "cpu", "cuda:0", ...
  int embedding_dim = 0;
  size_t max_input_length = 0;
  bool normalize = true;
};

struct ApiLimits {
  std::chrono::milliseconds request_timeout{30000};
  size_t payload_limit = 0;
  size_t max_batch_tokens = 0;
  size_t max_batch_requests = 0;
  size_t max_client_batch_size = 0;
  size_t max_concurrent_requests = 0;
};

struct ApiContext {
  ApiLimits limits;
  // Written before `service` is published, read only after it is seen non-null.
  ModelDescription model;
  // Null until the model is loaded. Release/acquire publishes `model` and `health` with it.
  std::atomic<EmbeddingService*> service{nullptr};
  // Ok when every engine replica can take work.
  std::function<Status()> health;
  // The Prometheus text exposition of the process's metrics; empty when metrics are off.
  std::function<std::string()> metrics_text;
};

}  // namespace sluice
