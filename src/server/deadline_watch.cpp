#include "server/deadline_watch.h"

#include <utility>

namespace sluice {

DeadlineWatch::~DeadlineWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DeadlineWatch::Add(SteadyTime deadline, std::function<void()> expire) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    const bool sooner = entries_.empty() || deadline < entries_.top().deadline;
    entries_.push(Entry{deadline, std::move(expire)});
    if (!thread_.joinable()) {
      thread_ = std::thread([this] { Loop(); });
      return;
    }
    if (!sooner) return;
  }
  wake_.notify_one();
}

size_t DeadlineWatch::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void DeadlineWatch::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (entries_.empty()) {
      wake_.wait(lock);
      continue;
    }
    // A copy: Add may grow the heap (and move its entries) while this thread waits.
    const SteadyTime next = entries_.top().deadline;
    if (SteadyClock::now() < next) {
      wake_.wait_until(lock, next);
      continue;
    }
    std::function<void()> expire = entries_.top().expire;
    entries_.pop();
    lock.unlock();
    expire();
    lock.lock();
  }
}

}  // namespace sluice
