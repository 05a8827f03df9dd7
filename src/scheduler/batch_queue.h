// BatchQueue: the pending sequences of the DynamicBatcher and the rules that close a batch.
// It holds no clock and no threads: every call takes `now`, so tests drive time by hand.
// Not thread-safe; the batcher thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <vector>

#include "scheduler/task_state.h"

namespace sluice {

struct BatchPolicy {
  // A batch closes as soon as the queue holds this many tokens ...
  size_t max_batch_tokens = 16384;
  // ... or this many sequences (1 turns batching off) ...
  size_t max_batch_requests = 64;
  // ... or its oldest sequence has waited this long (0: close whenever work is queued).
  std::chrono::microseconds max_queue_delay{2000};
};

// One sequence of a task, waiting for a batch.
struct QueuedSequence {
  std::shared_ptr<TaskState> task;
  size_t index = 0;   // row in the task
  size_t tokens = 0;  // its length
  SteadyTime enqueued;
};

class BatchQueue {
 public:
  explicit BatchQueue(BatchPolicy policy) : policy_(policy) {}

  // Queues every sequence of `task`, in order.
  void Push(const std::shared_ptr<TaskState>& task, SteadyTime now);

  // Removes the sequences of tasks that finished, were cancelled or passed their deadline.
  // Returns each task found cancelled or expired once, so the caller can fail it.
  std::vector<std::shared_ptr<TaskState>> DropDead(SteadyTime now);

  // Whether a batch should be taken now: a size limit is reached or the oldest sequence has
  // waited max_queue_delay.
  bool ShouldClose(SteadyTime now) const;

  // The next instant at which ShouldClose() or DropDead() could change its answer without a
  // Push(): the oldest sequence's delay running out or the earliest deadline.
  // SteadyTime::max() when empty.
  SteadyTime NextWake() const;
  // The earliest deadline of a queued sequence; SteadyTime::max() when empty.
  SteadyTime NextDeadline() const;

  // Takes up to one batch: the oldest sequence first, then later ones in arrival order that
  // still fit the token and sequence budgets (a long sequence that does not fit is skipped, not
  // waited for, so it does not end the batch early). The oldest is always taken, even alone
  // over the token budget. Empty when the queue is.
  std::vector<QueuedSequence> TakeBatch();

  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }
  size_t tokens() const { return tokens_; }

 private:
  BatchPolicy policy_;
  std::deque<QueuedSequence> queue_;  // arrival order
  size_t tokens_ = 0;                 // sum of queue_[i].tokens
};

}  // namespace sluice
