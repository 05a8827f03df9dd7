#include "scheduler/task_state.h"

#include <algorithm>
#include <utility>

namespace sluice {

TaskState::TaskState(EmbedTask task, int dim)
    : task_(std::move(task)),
      dim_(dim),
      rows_(task_.sequences.size() * static_cast<size_t>(dim)),
      remaining_(task_.sequences.size()) {}

Status TaskState::CheckAlive(SteadyTime now) const {
  if (cancelled()) return Cancelled("the client closed the connection");
  if (now >= task_.deadline) return DeadlineExceeded("the request timed out while queued");
  return Status::Ok();
}

void TaskState::Complete(size_t i, const float* row) {
  if (finished()) return;
  std::copy(row, row + dim_, rows_.begin() + static_cast<std::ptrdiff_t>(i * dim_));
  // acq_rel: the thread that takes the count to zero sees every other thread's rows.
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::call_once(done_once_, [this] {
    finished_.store(true, std::memory_order_release);
    task_.done(std::move(rows_));
  });
}

void TaskState::Fail(Status status) {
  std::call_once(done_once_, [this, &status] {
    finished_.store(true, std::memory_order_release);
    task_.done(std::move(status));
  });
}

}  // namespace sluice
