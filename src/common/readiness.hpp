// Whether this process can serve (GET /readyz): it is not draining, and each named check passes
// within its deadline (the engines answer, the send queue is not over its threshold).
//
// Checks run one after the other on the caller's thread (the blocking pool), at most once per
// `cache_ms` however often readiness is asked: a probe flood costs the engines nothing. A check
// that succeeds but takes longer than `deadline_ms` fails ("slow"). Once draining (SIGTERM),
// the answer is "not ready" at once, without running the checks. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace imd {

class Readiness {
 public:
  using Check = std::function<Result<void>()>;
  struct Failure {
    std::string part;   // "draining", "store", "redis", "queue", ...
    std::string error;  // why, for the operator
  };
  struct Report {
    bool ready = true;
    std::vector<Failure> failing;
  };

  // `clock` measures the checks and ages the cached report (a steady clock in production).
  explicit Readiness(Clock& clock, Millis deadline_ms = 1000, Millis cache_ms = 1000);

  // Before serving starts (not thread-safe against check()).
  void add(std::string part, Check check);
  // From now on not ready (any thread).
  void set_draining();
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  Report check();
  // The names of the checks, in the order they run.
  std::vector<std::string> parts() const;

 private:
  struct Named {
    std::string part;
    Check check;
  };
  Clock& clock_;
  const Millis deadline_ms_;
  const Millis cache_ms_;
  std::vector<Named> checks_;
  std::atomic<bool> draining_{false};
  std::mutex mu_;  // one run of the checks at a time; guards the cache
  bool cached_ = false;
  Millis cached_at_ = 0;
  Report last_;
};

// The Clock of Readiness in production: monotonic milliseconds (a wall clock could step).
class SteadyClock final : public Clock {
 public:
  Millis now_ms() override;
};

}  // namespace imd
