// Backend: the narrow interface between the engine and a device. One Backend is one model
// loaded on one device (the CPU, or one GPU). Implementations: backends/cpu, backends/cuda.
//
// Thread-safety: a Backend is driven by one thread at a time (its engine replica); Health()
// may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
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

  // Pipelined use, so that host work on the next batch overlaps device work on this one:
  // Submit() checks and enqueues `batch` and returns a ticket; Collect() waits for that
  // ticket's vectors (as Embed() writes them). Tickets are collected in submission order, and
  // at most max_in_flight() are uncollected at a time (FailedPrecondition otherwise). Bad input
  // fails Submit(); device errors may surface at Collect(). The defaults run Embed() in Submit().
  virtual int max_in_flight() const { return 1; }
  virtual StatusOr<uint64_t> Submit(const Batch& batch) {
    if (pending_) return FailedPrecondition("Submit() with a ticket not yet collected");
    SLUICE_RETURN_IF_ERROR(Embed(batch, &pending_out_));
    pending_ = true;
    return ++last_ticket_;
  }
  virtual Status Collect(uint64_t ticket, std::vector<float>* out) {
    if (!pending_ || ticket != last_ticket_) return InvalidArgument("unknown or collected ticket");
    pending_ = false;
    *out = std::move(pending_out_);
    return Status::Ok();
  }

 private:
  // State of the default Submit()/Collect().
  bool pending_ = false;
  uint64_t last_ticket_ = 0;
  std::vector<float> pending_out_;
};

}  // namespace sluice
