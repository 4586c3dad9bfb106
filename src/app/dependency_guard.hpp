// Circuit breakers around this process's dependencies (docs/operations.md, "Degradation and
// circuit breaking"), built by the composition root:
//
// - DependencyGuard keeps one Breaker per dependency (store, redis, nats, etcd) and feeds it
//   from a probe: every `probe_interval_ms` the dependency's ping runs on a thread of its own
//   (one ping in flight per dependency); a ping with no answer after `probe_deadline_ms` is a
//   failure at once, and another for each further deadline it stays unanswered, so a stalled
//   engine (SIGSTOP, a dead host behind a 10 s read timeout) opens its breaker within about
//   failure_threshold deadlines, on every process, with or without traffic. MysqlDatabase
//   (guard_with) refuses its calls at once while the store's breaker is open. Transitions are
//   logged and counted (imd_breaker_*).
// - GuardedQueue decorates the Queue port: while any of its breakers is not closed (the
//   store's or NATS's: open, or half-open with only the probe trying the engine), publish
//   answers `unavailable` with a retry-after at once instead of queuing sends that cannot be
//   stored. Nothing is published, so nothing is half-stored; the client retries
//   with the same cid. The queue engine's own breaker (`engine`: NATS's) also hears how each
//   publish went: refused by the engine, or never confirmed (the Failed handler), is a failure.
// - Real calls feed the breakers besides the probe (Breaker::track): MysqlDatabase's queries
//   (guard_with), RedisClient's commands (report_to), GuardedQueue's publishes.
//
// - SheddingPusher decorates the Pusher port: while the process is degraded (a breaker not
//   closed, the send queue over half full: `overloaded`), typing indicators, the non-core
//   events, are dropped before they cost a fan-out; messages, ACKs, read markers pass.
//
// Thread-safety: add() before start(); everything else from any thread. stop() joins the
// probe threads (a ping stuck in its engine's timeout delays it by at most that timeout).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/breaker.hpp"
#include "common/metrics_text.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/ports/queue.hpp"

namespace imd {

struct DependencyGuardOptions {
  BreakerOptions breaker;
  Millis probe_interval_ms = 500;
  Millis probe_deadline_ms = 1000;
};

class DependencyGuard {
 public:
  using Ping = std::function<Result<void>()>;

  DependencyGuard(Clock& steady, DependencyGuardOptions options);
  ~DependencyGuard();
  DependencyGuard(const DependencyGuard&) = delete;
  DependencyGuard& operator=(const DependencyGuard&) = delete;

  // A breaker for `name`, probed with `ping` once started. Before start().
  Breaker& add(std::string name, Ping ping);
  // The breaker of `name`, or nullptr.
  Breaker* find(std::string_view name);

  void start();
  void stop();

  // True while any breaker is not closed.
  bool degraded();

  // imd_breaker_state{dependency}, imd_breaker_transitions_total{dependency,to},
  // imd_breaker_refused_total{dependency}.
  void write_metrics(MetricsText& m);

 private:
  struct Probe;
  void run(Probe& p);
  void watch();

  Clock& steady_;
  const DependencyGuardOptions options_;
  std::vector<std::unique_ptr<Probe>> probes_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class GuardedQueue final : public Queue {
 public:
  // `engine`: the breaker of the queue's engine, told each publish's outcome (or nullptr).
  GuardedQueue(Queue& inner, std::vector<Breaker*> guards, Breaker* engine = nullptr);
  Result<void> publish(NewMessage msg) override;
  void on_failed(Failed handler) override;
  bool redelivers() const override { return inner_.redelivers(); }
  void start(Consumer consumer) override { inner_.start(std::move(consumer)); }
  void stop() override { inner_.stop(); }

 private:
  Queue& inner_;
  const std::vector<Breaker*> guards_;
  Breaker* const engine_;
};

class SheddingPusher final : public Pusher {
 public:
  SheddingPusher(Pusher& inner, std::function<bool()> overloaded);
  void push(std::vector<Push> pushes) override;
  // Typing events dropped so far (imd_shed_total{what="typing"}).
  std::uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }

 private:
  Pusher& inner_;
  const std::function<bool()> overloaded_;
  std::atomic<std::uint64_t> shed_{0};
};

}  // namespace imd
