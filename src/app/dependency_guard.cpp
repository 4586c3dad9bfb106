#include "app/dependency_guard.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace imd {

struct DependencyGuard::Probe {
  Probe(std::string name, Clock& clock, const BreakerOptions& o, Ping p)
      : breaker(std::move(name), clock, o,
                [](const Breaker& b, Breaker::State from, Breaker::State to, std::string_view why) {
                  if (to == Breaker::State::open) {
                    LOG_WARN("breaker " << b.name() << ": " << Breaker::state_name(from)
                                        << " -> open (" << why << "): calls refused");
                  } else {
                    LOG_INFO("breaker " << b.name() << ": " << Breaker::state_name(from) << " -> "
                                        << Breaker::state_name(to) << " (" << why << ")");
                  }
                }),
        ping(std::move(p)) {}
  Breaker breaker;
  Ping ping;
  // The ping in flight (guarded by DependencyGuard::mu_).
  bool in_flight = false;
  bool recorded = false;  // its outcome was given (the watch counted it as a failure)
  Breaker::Permit permit;
  Millis started = 0;
  Millis counted_until = 0;  // the watch counted failures for the time up to here
};

DependencyGuard::DependencyGuard(Clock& steady, DependencyGuardOptions options)
    : steady_(steady), options_(options) {}

DependencyGuard::~DependencyGuard() {
  stop();
}

Breaker& DependencyGuard::add(std::string name, Ping ping) {
  probes_.push_back(
      std::make_unique<Probe>(std::move(name), steady_, options_.breaker, std::move(ping)));
  return probes_.back()->breaker;
}

Breaker* DependencyGuard::find(std::string_view name) {
  for (auto& p : probes_) {
    if (p->breaker.name() == name) return &p->breaker;
  }
  return nullptr;
}

void DependencyGuard::start() {
  for (auto& p : probes_) {
    threads_.emplace_back([this, probe = p.get()] {
      set_thread_name("imd-probe");
      run(*probe);
    });
  }
  if (!probes_.empty()) {
    threads_.emplace_back([this] {
      set_thread_name("imd-probe");
      watch();
    });
  }
}

void DependencyGuard::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void DependencyGuard::run(Probe& p) {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // While open, nothing is tried until the breaker is due for a probe.
    std::optional<Breaker::Permit> permit;
    if (!p.breaker.refusing()) permit = p.breaker.allow();
    if (permit) {
      p.in_flight = true;
      p.recorded = false;
      p.permit = *permit;
      p.started = p.counted_until = steady_.now_ms();
      lock.unlock();
      auto r = [&] {
        Breaker::ProbeScope probing;  // the ping's own calls are this one outcome
        return p.ping();
      }();
      lock.lock();
      p.in_flight = false;
      if (!p.recorded) {
        p.breaker.record(p.permit, r.ok(), steady_.now_ms() - p.started,
                         r.ok() ? std::string_view{} : std::string_view(r.error().message));
      }
    }
    wake_.wait_for(lock, std::chrono::milliseconds(options_.probe_interval_ms),
                   [&] { return stopping_; });
  }
}

// A ping that does not come back is a failure per deadline it stays out: the breaker of an
// engine that stalls opens without waiting for the engine's own timeout.
void DependencyGuard::watch() {
  const Millis deadline = options_.probe_deadline_ms;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(std::max<Millis>(10, deadline / 4)),
                   [&] { return stopping_; });
    const Millis now = steady_.now_ms();
    for (auto& pp : probes_) {
      Probe& p = *pp;
      if (!p.in_flight || now - p.counted_until < deadline) continue;
      p.counted_until = now;
      const std::string why = "no answer within " + std::to_string(now - p.started) +
                              " ms (deadline " + std::to_string(deadline) + " ms)";
      if (!p.recorded) {
        p.recorded = true;
        p.breaker.record(p.permit, false, now - p.started, why);
      } else if (!p.breaker.refusing()) {
        if (auto more = p.breaker.allow()) p.breaker.record(*more, false, now - p.started, why);
      }
    }
  }
}

bool DependencyGuard::degraded() {
  for (auto& p : probes_) {
    if (p->breaker.state() != Breaker::State::closed) return true;
  }
  return false;
}

void DependencyGuard::write_metrics(MetricsText& m) {
  if (probes_.empty()) return;
  std::vector<std::pair<std::string, Breaker::Stats>> all;
  for (auto& p : probes_) all.emplace_back(p->breaker.name(), p->breaker.stats());
  m.family("imd_breaker_state",
           "Circuit breaker of a dependency: 0 closed, 1 open (calls refused), 2 half-open.",
           "gauge");
  for (const auto& [name, s] : all) {
    const MetricLabel l[] = {{"dependency", name}};
    m.sample("imd_breaker_state", l, static_cast<double>(static_cast<int>(s.state)));
  }
  m.family("imd_breaker_transitions_total",
           "Times the breaker of a dependency entered a state (to: closed, open, half_open).",
           "counter");
  for (const auto& [name, s] : all) {
    for (auto st : {Breaker::State::closed, Breaker::State::open, Breaker::State::half_open}) {
      const MetricLabel l[] = {{"dependency", name}, {"to", Breaker::state_name(st)}};
      m.sample("imd_breaker_transitions_total", l,
               static_cast<double>(s.transitions_to[static_cast<std::size_t>(st)]));
    }
  }
  m.family("imd_breaker_refused_total",
           "Calls refused at once because the breaker of a dependency was open.", "counter");
  for (const auto& [name, s] : all) {
    const MetricLabel l[] = {{"dependency", name}};
    m.sample("imd_breaker_refused_total", l, static_cast<double>(s.refused));
  }
}

GuardedQueue::GuardedQueue(Queue& inner, std::vector<Breaker*> guards, Breaker* engine)
    : inner_(inner), guards_(std::move(guards)), engine_(engine) {}

Result<void> GuardedQueue::publish(NewMessage msg) {
  // Open or half-open: only the probe tries the engine; sends wait for it to close.
  for (Breaker* b : guards_) {
    if (b->state() != Breaker::State::closed) return b->refusal();
  }
  const Breaker::Permit permit = engine_ != nullptr ? engine_->track() : Breaker::Permit{};
  auto r = inner_.publish(std::move(msg));
  // An accepted publish is not yet an outcome: the broker confirms it later, or on_failed says
  // it never did. Counting it as a success would reset the failures of a stalled engine with
  // every send, and the breaker would never open.
  if (engine_ != nullptr && !r.ok()) engine_->record_result(permit, &r.error());
  return r;
}

void GuardedQueue::on_failed(Failed handler) {
  if (engine_ == nullptr) {
    inner_.on_failed(std::move(handler));
    return;
  }
  // A publish the broker never confirmed is a failed call of the engine.
  inner_.on_failed(
      [engine = engine_, handler = std::move(handler)](const NewMessage& msg, const Error& why) {
        engine->record_result(engine->track(), &why);
        if (handler) handler(msg, why);
      });
}

SheddingPusher::SheddingPusher(Pusher& inner, std::function<bool()> overloaded)
    : inner_(inner), overloaded_(std::move(overloaded)) {}

void SheddingPusher::push(std::vector<Push> pushes) {
  auto is_typing = [](const Push& p) {
    return p.event != nullptr && std::holds_alternative<TypingEvent>(*p.event);
  };
  if (std::any_of(pushes.begin(), pushes.end(), is_typing) && overloaded_()) {
    const auto before = pushes.size();
    std::erase_if(pushes, is_typing);
    shed_.fetch_add(before - pushes.size(), std::memory_order_relaxed);
    if (pushes.empty()) return;
  }
  inner_.push(std::move(pushes));
}

}  // namespace imd
