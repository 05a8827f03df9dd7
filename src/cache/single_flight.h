// SingleFlight: collapses concurrent computations of the same key into one. The first caller
// of Join(key) becomes the leader and computes; callers that join while it is in flight become
// followers and receive the leader's published result, error included.
//
// A leader that goes away without publishing (its Flight destroyed: the request was cancelled,
// timed out or failed before computing) abandons the flight: its followers wake with
// kUnavailable and abandoned() == true, and the key is free again, so one of them can retry and
// become the new leader. Do() performs that retry itself. A leader should therefore publish
// only results that hold for everyone (a model failure) and abandon on errors that belong to
// its own request (its deadline, its client disconnecting).
//
// Publish removes the key before waking followers, so a caller arriving after Publish starts a
// new flight: fill the cache before publishing so that latecomers hit it instead.
// Thread-safety: SingleFlight is safe to use from any thread. A Flight is used by one thread at
// a time. Nothing here calls user code under a lock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cache/cache_key_builder.h"
#include "cache/cache_store.h"
#include "cache/cached_vector.h"
#include "common/clock.h"
#include "common/status.h"

namespace sluice {

struct SingleFlightStats {
  uint64_t leaders = 0;    // flights started
  uint64_t followers = 0;  // joins that waited on another caller's flight
  uint64_t abandoned = 0;  // flights whose leader went away without publishing
  uint64_t in_flight = 0;  // flights not yet published or abandoned
};

class SingleFlight {
 public:
  using Result = StatusOr<CachedVector>;
  // Called once with the outcome; `leader_abandoned` tells an abandoned flight apart from a
  // published error.
  using Callback = std::function<void(const Result& result, bool leader_abandoned)>;

  class Flight;

  SingleFlight() = default;
  SingleFlight(const SingleFlight&) = delete;
  SingleFlight& operator=(const SingleFlight&) = delete;
  // REQUIRES: no leader Flight is alive (followers may be).
  ~SingleFlight();

  // Joins the flight for `key`, starting it (as leader) if none is in flight.
  Flight Join(const CacheKey& key);

  // Runs `compute` once per concurrent group of callers of `key` and returns its result to all
  // of them. A follower whose leader abandons retries as leader. `compute` runs without locks.
  Result Do(const CacheKey& key, const std::function<Result()>& compute);

  SingleFlightStats Stats() const;

 private:
  struct Call;

  // Removes `call` from the table if it is still the flight of `key`.
  void Finish(const CacheKey& key, const std::shared_ptr<Call>& call, Result result,
              bool abandoned);

  mutable std::mutex mu_;
  // Flights in progress. GUARDED_BY(mu_)
  std::unordered_map<CacheKey, std::shared_ptr<Call>, CacheKeyHash> calls_;
  uint64_t leaders_ = 0;    // GUARDED_BY(mu_)
  uint64_t followers_ = 0;  // GUARDED_BY(mu_)
  uint64_t abandoned_ = 0;  // GUARDED_BY(mu_)
};

// One caller's membership in a flight. Move-only. A leader must Publish() once; destroying an
// unpublished leader abandons the flight. A follower Waits or registers OnDone.
class SingleFlight::Flight {
 public:
  Flight(Flight&& other) noexcept;
  Flight& operator=(Flight&& other) noexcept;
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;
  ~Flight();

  bool is_leader() const { return leader_; }

  // Leader only, at most once: hands `result` to every follower and ends the flight.
  void Publish(Result result);

  // Follower only: blocks until the leader publishes or abandons.
  Result Wait();
  // Follower only: as Wait, but returns kDeadlineExceeded at `deadline` (steady clock). The
  // flight goes on without this follower.
  Result WaitUntil(Clock::TimePoint deadline);
  // Follower only: true once the flight ended because its leader abandoned it.
  bool abandoned() const;

  // Follower only: calls `done` exactly once with the outcome: at once on this thread when the
  // flight already ended, otherwise later on the thread that publishes or abandons. `done` must
  // not block for long; it runs on the leader's thread.
  void OnDone(Callback done);

 private:
  friend class SingleFlight;
  Flight(SingleFlight* owner, CacheKey key, std::shared_ptr<Call> call, bool leader);
  void AbandonIfLeader();

  SingleFlight* owner_ = nullptr;  // null once published or moved from
  CacheKey key_;
  std::shared_ptr<Call> call_;
  bool leader_ = false;
};

}  // namespace sluice
