#include "scheduler/batch_queue.h"

#include <algorithm>
#include <unordered_set>

namespace sluice {
namespace {

// How far past the budget TakeBatch() looks for sequences that still fit; bounds the work of a
// batch close when the queue is long.
constexpr size_t kLookahead = 256;

}  // namespace

void BatchQueue::Push(const std::shared_ptr<TaskState>& task, SteadyTime now) {
  for (size_t i = 0; i < task->num_sequences(); ++i) {
    size_t tokens = task->sequence(i).ids.size();
    queue_.push_back(QueuedSequence{task, i, tokens, now});
    tokens_ += tokens;
  }
}

std::vector<std::shared_ptr<TaskState>> BatchQueue::DropDead(SteadyTime now) {
  std::vector<std::shared_ptr<TaskState>> dead;
  std::unordered_set<const TaskState*> seen;
  std::deque<QueuedSequence> kept;
  for (QueuedSequence& s : queue_) {
    TaskState* task = s.task.get();
    if (!task->finished() && task->CheckAlive(now).ok()) {
      kept.push_back(std::move(s));
      continue;
    }
    tokens_ -= s.tokens;
    if (!task->finished() && seen.insert(task).second) dead.push_back(s.task);
  }
  queue_ = std::move(kept);
  return dead;
}

bool BatchQueue::ShouldClose(SteadyTime now) const {
  if (queue_.empty()) return false;
  if (tokens_ >= policy_.max_batch_tokens || queue_.size() >= policy_.max_batch_requests) {
    return true;
  }
  return now - queue_.front().enqueued >= policy_.max_queue_delay;
}

SteadyTime BatchQueue::NextWake() const {
  if (queue_.empty()) return SteadyTime::max();
  return std::min(queue_.front().enqueued + policy_.max_queue_delay, NextDeadline());
}

SteadyTime BatchQueue::NextDeadline() const {
  SteadyTime deadline = SteadyTime::max();
  for (const QueuedSequence& s : queue_) deadline = std::min(deadline, s.task->deadline());
  return deadline;
}

std::vector<QueuedSequence> BatchQueue::TakeBatch() {
  std::vector<QueuedSequence> batch;
  if (queue_.empty()) return batch;
  size_t batch_tokens = 0;
  std::deque<QueuedSequence> rest;
  size_t looked_past = 0;
  while (!queue_.empty()) {
    QueuedSequence& s = queue_.front();
    bool fits = batch.size() < policy_.max_batch_requests &&
                (batch.empty() || batch_tokens + s.tokens <= policy_.max_batch_tokens);
    if (fits) {
      batch_tokens += s.tokens;
      tokens_ -= s.tokens;
      batch.push_back(std::move(s));
    } else {
      rest.push_back(std::move(s));
      ++looked_past;
    }
    queue_.pop_front();
    bool full =
        batch.size() >= policy_.max_batch_requests || batch_tokens >= policy_.max_batch_tokens;
    if (full || looked_past >= kLookahead) break;
  }
  // Skipped sequences go back in front, still in arrival order.
  while (!rest.empty()) {
    queue_.push_front(std::move(rest.back()));
    rest.pop_back();
  }
  return batch;
}

}  // namespace sluice
