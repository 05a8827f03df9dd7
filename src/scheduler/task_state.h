// TaskState: the shared progress of one EmbedTask while its sequences are queued and computed.
// Rows are written by whichever replica ran them; the last row (or the first failure) finishes
// the task. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "scheduler/embed_task.h"

namespace sluice {

class TaskState {
 public:
  TaskState(EmbedTask task, int dim);
  TaskState(const TaskState&) = delete;
  TaskState& operator=(const TaskState&) = delete;

  size_t num_sequences() const { return task_.sequences.size(); }
  const Encoding& sequence(size_t i) const { return task_.sequences[i]; }
  bool normalize() const { return task_.normalize; }
  SteadyTime deadline() const { return task_.deadline; }

  // True once done() has run (all rows in, or failed).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  bool cancelled() const {
    return task_.cancelled != nullptr && task_.cancelled->load(std::memory_order_acquire);
  }
  // Why the task must not be computed at `now` (deadline passed or client gone), or Ok.
  Status CheckAlive(SteadyTime now) const;

  // Stores row `i` (dim floats). REQUIRES: each i completed at most once.
  void Complete(size_t i, const float* row);
  // Finishes the task with `status` unless it already finished.
  void Fail(Status status);

 private:
  EmbedTask task_;
  const int dim_;
  std::vector<float> rows_;  // written at disjoint offsets by replica threads
  std::atomic<size_t> remaining_;
  std::atomic<bool> finished_{false};
  std::once_flag done_once_;
};

}  // namespace sluice
