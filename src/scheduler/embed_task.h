// EmbedTask: one client request on its way through the DynamicBatcher. Its sequences may be
// split over several batches and replicas; the vectors come back together, in input order.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

struct EmbedTask {
  std::vector<Encoding> sequences;
  // Whether the backend L2-normalises the pooled vectors.
  bool normalize = true;
  // Past this instant the task is answered DeadlineExceeded without compute.
  SteadyTime deadline = SteadyTime::max();
  // Set (by the connection) when the client has gone; the task is then dropped before compute.
  // May be null.
  std::shared_ptr<const std::atomic<bool>> cancelled;
  // Called exactly once, from a batcher or replica thread: the pooled vectors, row-major
  // [sequences.size() x dim], or the reason there are none.
  std::function<void(StatusOr<std::vector<float>>)> done;
};

}  // namespace sluice
