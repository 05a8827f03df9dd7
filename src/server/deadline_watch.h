// DeadlineWatch: runs each registered callback once its deadline passes, on a thread of its
// own. For requests that wait on work that does not know their deadline: a follower of a
// single-flight leader whose own deadline is later.
//
// Thread-safety: Add may be called from any thread. Callbacks run on the watch's thread, one at
// a time, without its lock held; they must not block for long. Destruction drops the callbacks
// still pending without running them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "scheduler/embed_task.h"

namespace sluice {

class DeadlineWatch {
 public:
  DeadlineWatch() = default;
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;
  ~DeadlineWatch();

  // Calls `expire` at `deadline` (at once when it has passed). The thread starts on first use.
  void Add(SteadyTime deadline, std::function<void()> expire);
  // Callbacks not yet run.
  size_t pending() const;

 private:
  struct Entry {
    SteadyTime deadline;
    std::function<void()> expire;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.deadline > b.deadline; }
  };
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::priority_queue<Entry, std::vector<Entry>, Later> entries_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                              // GUARDED_BY(mu_)
  std::thread thread_;                                             // started under mu_
};

}  // namespace sluice
