#include "common/breaker.hpp"

#include <algorithm>

namespace imd {

namespace {
thread_local bool t_in_probe = false;
}  // namespace

Breaker::ProbeScope::ProbeScope() : outer_(t_in_probe) {
  t_in_probe = true;
}

Breaker::ProbeScope::~ProbeScope() {
  t_in_probe = outer_;
}

Breaker::Breaker(std::string name, Clock& clock, BreakerOptions options, Transition on_transition)
    : name_(std::move(name)),
      clock_(clock),
      options_(options),
      on_transition_(std::move(on_transition)),
      open_for_(options.open_ms) {}

std::string_view Breaker::state_name(State s) {
  switch (s) {
    case State::closed:
      return "closed";
    case State::open:
      return "open";
    case State::half_open:
      return "half_open";
  }
  return "closed";
}

void Breaker::to_state(State next, std::string_view why) {
  const State from = state_;
  state_ = next;
  ++generation_;
  failures_ = 0;
  successes_ = 0;
  probes_in_flight_ = 0;
  if (next == State::open) open_until_ = clock_.now_ms() + open_for_;
  if (next == State::closed) open_for_ = options_.open_ms;
  stats_.state = next;
  ++stats_.transitions_to[static_cast<std::size_t>(next)];
  if (on_transition_) on_transition_(*this, from, next, why);
}

void Breaker::tick() {
  if (state_ == State::open && clock_.now_ms() >= open_until_) {
    to_state(State::half_open, "open period over: probing");
  }
}

std::optional<Breaker::Permit> Breaker::allow() {
  std::lock_guard lock(mu_);
  tick();
  switch (state_) {
    case State::closed:
      return Permit{generation_, false, false, clock_.now_ms()};
    case State::half_open:
      if (probes_in_flight_ < options_.half_open_probes) {
        ++probes_in_flight_;
        return Permit{generation_, true, false, clock_.now_ms()};
      }
      break;
    case State::open:
      break;
  }
  return std::nullopt;
}

void Breaker::count_closed(bool ok, Millis took_ms, std::string_view why) {
  const bool slow = ok && took_ms > options_.slow_call_ms;
  if (ok && !slow) {
    failures_ = 0;
    return;
  }
  if (++failures_ < options_.failure_threshold) return;
  std::string reason = slow ? "a call took " + std::to_string(took_ms) + " ms" : std::string(why);
  if (reason.empty()) reason = "a call failed";
  to_state(State::open, std::to_string(failures_) + " failures in a row, the last: " + reason);
}

Breaker::Permit Breaker::track() {
  std::lock_guard lock(mu_);
  tick();
  return Permit{generation_, false, t_in_probe, clock_.now_ms()};
}

void Breaker::record_result(const Permit& permit, const Error* error) {
  if (permit.ignored) return;
  const bool ok = error == nullptr || error->code != Errc::unavailable;
  record(permit, ok, clock_.now_ms() - permit.started,
         ok ? std::string_view{} : std::string_view(error->message));
}

void Breaker::record(const Permit& permit, bool ok, Millis took_ms, std::string_view why) {
  std::lock_guard lock(mu_);
  if (permit.generation != generation_) return;  // admitted in an earlier state
  if (state_ == State::closed) {
    count_closed(ok, took_ms, why);
    return;
  }
  // Open: the next probe decides. Half-open: a probe's or a tracked call's outcome.
  if (state_ != State::half_open) return;
  if (permit.probe && probes_in_flight_ > 0) --probes_in_flight_;
  if (!ok || took_ms > options_.slow_call_ms) {
    open_for_ = std::min(open_for_ * 2, options_.max_open_ms);
    std::string reason = ok ? "took " + std::to_string(took_ms) + " ms" : std::string(why);
    to_state(State::open, "probe failed: " + (reason.empty() ? std::string("no answer") : reason));
    return;
  }
  if (++successes_ >= options_.close_after) to_state(State::closed, "probe succeeded");
}

Breaker::State Breaker::state() {
  std::lock_guard lock(mu_);
  tick();
  return state_;
}

bool Breaker::refusing() {
  std::lock_guard lock(mu_);
  return state_ == State::open && clock_.now_ms() < open_until_;
}

Millis Breaker::retry_after_ms() {
  std::lock_guard lock(mu_);
  if (state_ != State::open) return 0;
  return std::max<Millis>(0, open_until_ - clock_.now_ms());
}

Error Breaker::refusal() {
  Millis wait = 0;
  {
    std::lock_guard lock(mu_);
    ++stats_.refused;
    if (state_ == State::open) wait = std::max<Millis>(0, open_until_ - clock_.now_ms());
  }
  const std::int64_t seconds = std::max<std::int64_t>(1, (wait + 999) / 1000);
  Error e = make_error(Errc::unavailable, name_ + " is unavailable (circuit open): retry in " +
                                              std::to_string(seconds) + " s");
  e.retry_after_s = seconds;
  return e;
}

Breaker::Stats Breaker::stats() {
  std::lock_guard lock(mu_);
  tick();
  return stats_;
}

}  // namespace imd
