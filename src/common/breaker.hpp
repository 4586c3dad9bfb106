// A circuit breaker for one dependency (the store's engine, Redis, NATS, etcd): after
// `failure_threshold` failures in a row it opens, and calls are refused at once (unavailable,
// with a retry-after) instead of each waiting for the engine's timeout. After `open_ms` it is
// half-open: up to `half_open_probes` calls go through at a time; `close_after` successes in a
// row close it, one failure opens it again for twice as long (up to `max_open_ms`).
//
// A call that succeeded but took longer than `slow_call_ms` counts as a failure: a stalled
// engine (SIGSTOP, a full disk's retries) is as useless to a sender as a dead one.
//
// Use: `if (auto p = b.allow()) { ...call...; b.record(*p, ok, took_ms); } else refuse with
// b.refusal()`. Every admitted call must be recorded exactly once. An outcome recorded after
// the state changed (a slow call admitted before the breaker opened, returning after it) is
// ignored: it says nothing about the engine now.
//
// Real traffic feeds it too, not only admitted calls: a call that goes ahead whatever the
// state (Redis commands, MariaDB queries while half-open, NATS publishes) takes `track()` and
// hands it to record_result(). While closed its failure counts toward opening; while half-open
// its success counts as a successful probe and its failure opens the breaker again; while open
// it is ignored (the open period is the back-off). Calls made inside a probe (ProbeScope on
// the prober's thread) are not tracked: the probe records its outcome once.
//
// Thread-safe (one mutex; the calls it guards do not run under it). `on_transition` runs
// under that mutex, on the thread that caused the change: it must not call back into the
// breaker (logging and counting are fine). Time comes from the injected clock (monotonic in
// production, a fake one in tests).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace imd {

struct BreakerOptions {
  std::uint32_t failure_threshold = 3;
  Millis slow_call_ms = 1500;
  Millis open_ms = 1000;
  Millis max_open_ms = 16000;
  std::uint32_t half_open_probes = 1;
  std::uint32_t close_after = 1;
};

class Breaker {
 public:
  enum class State { closed = 0, open = 1, half_open = 2 };
  // Admission to one call: returned by allow(), handed back to record().
  struct Permit {
    std::uint64_t generation = 0;  // the state the call was admitted in
    bool probe = false;            // admitted while half-open
    bool ignored = false;          // track() inside a probe: its outcome is the probe's
    Millis started = 0;            // when it was given (record_result's duration)
  };
  // While alive, calls tracked on this thread are part of a probe (see the file comment).
  class ProbeScope {
   public:
    ProbeScope();
    ~ProbeScope();
    ProbeScope(const ProbeScope&) = delete;
    ProbeScope& operator=(const ProbeScope&) = delete;

   private:
    bool outer_;
  };
  using Transition =
      std::function<void(const Breaker&, State from, State to, std::string_view why)>;

  Breaker(std::string name, Clock& clock, BreakerOptions options = {},
          Transition on_transition = {});

  const std::string& name() const { return name_; }

  // A permit to call the dependency now, or nullopt: it is open (answer with refusal()).
  std::optional<Permit> allow();
  // The outcome of an admitted call: `ok` when the engine answered (a not_found or a conflict
  // is an answer), `took_ms` how long it took.
  void record(const Permit& permit, bool ok, Millis took_ms, std::string_view why = {});

  // A permit for a call that is not asked to wait for the breaker (see the file comment); it
  // takes no probe slot. Never refused.
  Permit track();
  // record() timed from the permit: failed when `error` says the engine did not answer
  // (unavailable: a lost connection, a timeout); any other error is an answer, so a success.
  void record_result(const Permit& permit, const Error* error);

  // The state now (open turns half-open here once its time is up).
  State state();
  // True while calls are refused: open and not yet due for a probe. Unlike allow(), takes no
  // probe slot: for callers that only want to know whether to try (the send gate).
  bool refusing();
  // Milliseconds until the next probe while open, else 0.
  Millis retry_after_ms();
  // The error a refused call answers (and counts it as refused): unavailable, naming the
  // dependency, with retry_after_s.
  Error refusal();

  struct Stats {
    State state = State::closed;
    std::uint64_t refused = 0;                      // refusal() answers given
    std::array<std::uint64_t, 3> transitions_to{};  // by State: times it entered each state
  };
  Stats stats();

  static std::string_view state_name(State s);

 private:
  void to_state(State next, std::string_view why);  // under mu_
  void tick();                                      // under mu_: open -> half-open when due
  // Under mu_: a failed or slow call while closed; opens at the threshold.
  void count_closed(bool ok, Millis took_ms, std::string_view why);

  const std::string name_;
  Clock& clock_;
  const BreakerOptions options_;
  const Transition on_transition_;
  std::mutex mu_;
  State state_ = State::closed;
  std::uint64_t generation_ = 0;
  std::uint32_t failures_ = 0;   // in a row, while closed
  std::uint32_t successes_ = 0;  // probes in a row, while half-open
  std::uint32_t probes_in_flight_ = 0;
  Millis open_until_ = 0;
  Millis open_for_ = 0;  // the current open period (doubles after a failed probe)
  Stats stats_;
};

}  // namespace imd
