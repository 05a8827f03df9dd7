// Backend: the narrow interface between the engine and a device. One Backend is one model
// loaded on one device (the CPU, or one GPU). Implementations: backends/cpu, backends/cuda.
//
// Thread-safety: a Backend is driven by one thread at a time (its engine replica); Health()
// may be called from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/batch.h"

namespace sluice {

// The largest batch the caller will ever hand to Embed(); backends size workspaces from it.
struct BatchLimits {
  size_t max_batch_tokens = 16384;
  size_t max_batch_requests = 512;
  size_t max_sequence_length = 512;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu", "cuda:0".
  virtual std::string name() const = 0;
  // Length of the pooled vectors Embed() produces.
  virtual int embedding_dim() const = 0;
  // Ok when the device can take work; Unavailable with the reason when it cannot.
  virtual Status Health() const = 0;
  // Allocates workspaces for `limits` and runs one forward pass so the first request is not
  // slow. Called once, before the first Embed().
  virtual Status Warmup(const BatchLimits& limits) = 0;
  // Runs the encoder over `batch` and writes batch.num_sequences() pooled vectors, row-major,
  // into `out` (resized). REQUIRES: batch within the limits given to Warmup().
  virtual Status Embed(const Batch& batch, std::vector<float>* out) = 0;
};

}  // namespace sluice
