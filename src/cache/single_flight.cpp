#include "cache/single_flight.h"

#include <utility>

namespace sluice {

// The shared state of one flight.
struct SingleFlight::Call {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                // GUARDED_BY(mu)
  bool abandoned = false;           // GUARDED_BY(mu)
  std::optional<Result> result;     // GUARDED_BY(mu); set when done
  std::vector<Callback> callbacks;  // GUARDED_BY(mu); drained when done
};

SingleFlight::~SingleFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_CHECK(calls_.empty()) << "SingleFlight destroyed with " << calls_.size()
                               << " flights in progress";
}

SingleFlight::Flight SingleFlight::Join(const CacheKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = calls_.try_emplace(key);
  if (inserted) {
    it->second = std::make_shared<Call>();
    ++leaders_;
    return Flight(this, key, it->second, /*leader=*/true);
  }
  ++followers_;
  return Flight(this, key, it->second, /*leader=*/false);
}

SingleFlight::Result SingleFlight::Do(const CacheKey& key, const std::function<Result()>& compute) {
  for (;;) {
    Flight flight = Join(key);
    if (flight.is_leader()) {
      Result result = compute();
      flight.Publish(result);
      return result;
    }
    Result result = flight.Wait();
    if (!flight.abandoned()) return result;
  }
}

SingleFlightStats SingleFlight::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return SingleFlightStats{leaders_, followers_, abandoned_, calls_.size()};
}

void SingleFlight::Finish(const CacheKey& key, const std::shared_ptr<Call>& call, Result result,
                          bool abandoned) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(key);
    SLUICE_CHECK(it != calls_.end() && it->second == call)
        << "single-flight leader finished a flight that is not in the table";
    calls_.erase(it);
    if (abandoned) ++abandoned_;
  }
  std::vector<Callback> callbacks;
  {
    std::lock_guard<std::mutex> lock(call->mu);
    call->done = true;
    call->abandoned = abandoned;
    call->result = std::move(result);
    callbacks.swap(call->callbacks);
  }
  call->cv.notify_all();
  // No lock is held here, so a callback may Join again (for instance to retry as leader). The
  // result is read-only from now on.
  for (Callback& done : callbacks) done(*call->result, abandoned);
}

SingleFlight::Flight::Flight(SingleFlight* owner, CacheKey key, std::shared_ptr<Call> call,
                             bool leader)
    : owner_(owner), key_(key), call_(std::move(call)), leader_(leader) {}

SingleFlight::Flight::Flight(Flight&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      key_(other.key_),
      call_(std::move(other.call_)),
      leader_(other.leader_) {}

SingleFlight::Flight& SingleFlight::Flight::operator=(Flight&& other) noexcept {
  if (this != &other) {
    AbandonIfLeader();
    owner_ = std::exchange(other.owner_, nullptr);
    key_ = other.key_;
    call_ = std::move(other.call_);
    leader_ = other.leader_;
  }
  return *this;
}

SingleFlight::Flight::~Flight() { AbandonIfLeader(); }

void SingleFlight::Flight::AbandonIfLeader() {
  if (leader_ && owner_ != nullptr) {
    owner_->Finish(key_, call_,
                   Unavailable("single-flight leader abandoned the computation; retry"),
                   /*abandoned=*/true);
    owner_ = nullptr;
  }
}

void SingleFlight::Flight::Publish(Result result) {
  SLUICE_CHECK(leader_ && owner_ != nullptr) << "Publish by a follower or a second time";
  SingleFlight* owner = std::exchange(owner_, nullptr);
  owner->Finish(key_, call_, std::move(result), /*abandoned=*/false);
}

SingleFlight::Result SingleFlight::Flight::Wait() {
  SLUICE_CHECK(!leader_ && call_ != nullptr) << "Wait on a leader or moved-from Flight";
  std::unique_lock<std::mutex> lock(call_->mu);
  call_->cv.wait(lock, [this] { return call_->done; });
  return *call_->result;
}

SingleFlight::Result SingleFlight::Flight::WaitUntil(Clock::TimePoint deadline) {
  SLUICE_CHECK(!leader_ && call_ != nullptr) << "WaitUntil on a leader or moved-from Flight";
  std::unique_lock<std::mutex> lock(call_->mu);
  if (!call_->cv.wait_until(lock, deadline, [this] { return call_->done; })) {
    return DeadlineExceeded("deadline passed while waiting for an identical request");
  }
  return *call_->result;
}

bool SingleFlight::Flight::abandoned() const {
  SLUICE_CHECK(!leader_ && call_ != nullptr) << "abandoned() on a leader or moved-from Flight";
  std::lock_guard<std::mutex> lock(call_->mu);
  return call_->abandoned;
}

void SingleFlight::Flight::OnDone(Callback done) {
  SLUICE_CHECK(!leader_ && call_ != nullptr) << "OnDone on a leader or moved-from Flight";
  bool abandoned = false;
  {
    std::lock_guard<std::mutex> lock(call_->mu);
    if (!call_->done) {
      call_->callbacks.push_back(std::move(done));
      return;
    }
    abandoned = call_->abandoned;
  }
  // The flight has ended, so its result no longer changes and is read without the lock.
  done(*call_->result, abandoned);
}

}  // namespace sluice
