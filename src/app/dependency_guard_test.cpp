#include "app/dependency_guard.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/readiness.hpp"

namespace imd {
namespace {

class FakeClock final : public Clock {
 public:
  Millis now_ms() override { return now; }
  Millis now = 1000;
};

class RecordingQueue final : public Queue {
 public:
  Result<void> publish(NewMessage msg) override {
    published.push_back(std::move(msg));
    return {};
  }
  void on_failed(Failed) override {}
  bool redelivers() const override { return true; }
  void start(Consumer) override {}
  void stop() override {}
  std::vector<NewMessage> published;
};

// A queue whose engine is down: publish refused, or accepted and later reported failed.
class FailingQueue final : public Queue {
 public:
  Result<void> publish(NewMessage) override {
    if (refuse) return make_error(Errc::unavailable, "nats: not connected");
    return {};
  }
  void on_failed(Failed handler) override { failed = std::move(handler); }
  bool redelivers() const override { return true; }
  void start(Consumer) override {}
  void stop() override {}
  bool refuse = true;
  Failed failed;
};

class RecordingPusher final : public Pusher {
 public:
  void push(std::vector<Push> pushes) override {
    for (auto& p : pushes) got.push_back(std::move(p));
  }
  std::vector<Push> got;
};

void open(Breaker& b) {
  for (int i = 0; i < 3; ++i) {
    auto p = b.allow();
    ASSERT_TRUE(p);
    b.record(*p, false, 1, "down");
  }
  ASSERT_EQ(b.state(), Breaker::State::open);
}

// Sends are refused with a retry-after, without reaching the queue, while a gate is not
// closed (open, then half-open until its probe succeeds); they pass again once it closes.
TEST(GuardedQueue, RefusesWhileAGateIsNotClosed) {
  FakeClock clock;
  Breaker store("store", clock), nats("nats", clock);
  RecordingQueue inner;
  GuardedQueue q(inner, {&store, &nats});
  ASSERT_TRUE(q.publish(NewMessage{}).ok());
  open(nats);
  auto r = q.publish(NewMessage{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_GE(r.error().retry_after_s, 1);
  EXPECT_NE(r.error().message.find("nats is unavailable (circuit open)"), std::string::npos);
  clock.now += 1000;  // half-open: still refused, only the probe tries
  auto probe = nats.allow();
  ASSERT_TRUE(probe && probe->probe);
  EXPECT_FALSE(q.publish(NewMessage{}).ok());
  nats.record(*probe, true, 1);
  EXPECT_TRUE(q.publish(NewMessage{}).ok());
  EXPECT_EQ(inner.published.size(), 2u);
  EXPECT_EQ(nats.stats().refused, 2u);
}

// A probe that never answers opens the breaker after `failures` deadlines (the watch counts
// it), and one that answers closes it again: the real clock, a ping that blocks until told.
// The queue engine's breaker hears every publish: refusals and publishes never confirmed
// open it without a probe. An accepted publish is no outcome yet (its confirmation comes
// later): it neither closes a half-open breaker nor resets the failures of a stalled engine.
TEST(GuardedQueue, PublishOutcomesFeedTheEnginesBreaker) {
  FakeClock clock;
  Breaker nats("nats", clock, BreakerOptions{});
  FailingQueue inner;
  GuardedQueue q(inner, {}, &nats);
  int reported = 0;
  q.on_failed([&](const NewMessage&, const Error&) { ++reported; });
  EXPECT_FALSE(q.publish(NewMessage{}).ok());
  EXPECT_FALSE(q.publish(NewMessage{}).ok());
  EXPECT_EQ(nats.state(), Breaker::State::closed);
  ASSERT_TRUE(inner.failed);
  inner.failed(NewMessage{}, make_error(Errc::unavailable, "no confirmation"));
  EXPECT_EQ(reported, 1) << "the handler still hears it";
  EXPECT_EQ(nats.state(), Breaker::State::open);
  clock.now += BreakerOptions{}.open_ms;
  inner.refuse = false;
  EXPECT_TRUE(q.publish(NewMessage{}).ok()) << "the engine is not a gate of its own here";
  EXPECT_EQ(nats.state(), Breaker::State::half_open) << "accepted is not confirmed";
  auto probe = nats.allow();
  ASSERT_TRUE(probe && probe->probe);
  nats.record(*probe, true, 1);
  ASSERT_EQ(nats.state(), Breaker::State::closed);
  // Closed, the engine stalls: accepted publishes in between do not wipe out the failures.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(q.publish(NewMessage{}).ok());
    inner.failed(NewMessage{}, make_error(Errc::unavailable, "no confirmation"));
  }
  EXPECT_EQ(nats.state(), Breaker::State::open);
}

TEST(DependencyGuard, AStalledPingOpensTheBreakerAndAnAnswerClosesIt) {
  SteadyClock steady;
  DependencyGuardOptions o;
  o.probe_interval_ms = 20;
  o.probe_deadline_ms = 200;
  o.breaker.slow_call_ms = 200;
  o.breaker.open_ms = 50;
  o.breaker.max_open_ms = 200;
  std::atomic<bool> stalled{true};
  DependencyGuard g(steady, o);
  Breaker& b = g.add("store", [&]() -> Result<void> {
    while (stalled) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return {};
  });
  g.start();
  auto wait_for = [&](auto pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  };
  EXPECT_TRUE(wait_for([&] { return b.stats().transitions_to[1] >= 1; })) << "never opened";
  EXPECT_TRUE(g.degraded());
  stalled = false;
  EXPECT_TRUE(wait_for([&] { return b.state() == Breaker::State::closed; })) << "never closed";
  EXPECT_FALSE(g.degraded());
  MetricsText m;
  g.write_metrics(m);
  EXPECT_NE(m.text().find("imd_breaker_state{dependency=\"store\"} 0"), std::string::npos);
  EXPECT_NE(m.text().find("imd_breaker_transitions_total{dependency=\"store\",to=\"open\"}"),
            std::string::npos);
  g.stop();
}

TEST(SheddingPusher, DropsTypingOnlyWhileOverloaded) {
  RecordingPusher inner;
  bool overloaded = false;
  SheddingPusher p(inner, [&] { return overloaded; });
  auto batch = [] {
    std::vector<Push> v(3);
    v[0].event = std::make_shared<const Event>(TypingEvent{1, ConvKey::dm(1, 2)});
    v[1].event = std::make_shared<const Event>(ReadEvent{1, ConvKey::dm(1, 2), 3});
    v[2].event = std::make_shared<const Event>(TypingEvent{2, ConvKey::dm(2, 1)});
    return v;
  };
  p.push(batch());
  EXPECT_EQ(inner.got.size(), 3u);
  overloaded = true;
  p.push(batch());
  ASSERT_EQ(inner.got.size(), 4u);
  EXPECT_TRUE(std::holds_alternative<ReadEvent>(*inner.got[3].event));
  EXPECT_EQ(p.shed(), 2u);
}

}  // namespace
}  // namespace imd
