#include "common/breaker.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace imd {
namespace {

class FakeClock final : public Clock {
 public:
  Millis now_ms() override { return now; }
  Millis now = 10'000;
};

using State = Breaker::State;

struct Seen {
  State from, to;
};

class BreakerTest : public ::testing::Test {
 protected:
  BreakerOptions opts() {
    BreakerOptions o;
    o.failure_threshold = 3;
    o.slow_call_ms = 500;
    o.open_ms = 1000;
    o.max_open_ms = 4000;
    o.half_open_probes = 1;
    o.close_after = 2;
    return o;
  }
  Breaker make() {
    return Breaker("store", clock, opts(),
                   [this](const Breaker&, State from, State to, std::string_view why) {
                     seen.push_back({from, to});
                     whys.emplace_back(why);
                   });
  }
  void fail(Breaker& b, int n) {
    for (int i = 0; i < n; ++i) {
      auto p = b.allow();
      ASSERT_TRUE(p);
      b.record(*p, false, 5, "connection refused");
    }
  }
  FakeClock clock;
  std::vector<Seen> seen;
  std::vector<std::string> whys;
};

TEST_F(BreakerTest, OpensAfterConsecutiveFailuresOnly) {
  auto b = make();
  fail(b, 2);
  auto p = b.allow();
  ASSERT_TRUE(p);
  b.record(*p, true, 5);  // a success in between starts the count again
  fail(b, 2);
  EXPECT_EQ(b.state(), State::closed);
  fail(b, 1);
  EXPECT_EQ(b.state(), State::open);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].from, State::closed);
  EXPECT_EQ(seen[0].to, State::open);
  EXPECT_NE(whys[0].find("connection refused"), std::string::npos) << whys[0];
}

TEST_F(BreakerTest, OpenRefusesAtOnceWithRetryAfter) {
  auto b = make();
  fail(b, 3);
  clock.now += 300;
  EXPECT_FALSE(b.allow());
  EXPECT_FALSE(b.allow());
  EXPECT_TRUE(b.refusing());
  EXPECT_EQ(b.retry_after_ms(), 700);
  auto e = b.refusal();
  EXPECT_EQ(e.code, Errc::unavailable);
  EXPECT_EQ(e.retry_after_s, 1);
  EXPECT_NE(e.message.find("store"), std::string::npos);
  EXPECT_EQ(b.stats().refused, 1u);
}

TEST_F(BreakerTest, HalfOpenLetsOneProbeThroughAndClosesAfterEnoughSuccesses) {
  auto b = make();
  fail(b, 3);
  clock.now += 1000;
  EXPECT_FALSE(b.refusing());
  auto probe = b.allow();
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe->probe);
  EXPECT_EQ(b.state(), State::half_open);
  EXPECT_FALSE(b.allow()) << "a second call while the probe is in flight is refused";
  b.record(*probe, true, 5);
  EXPECT_EQ(b.state(), State::half_open) << "close_after = 2";
  auto second = b.allow();
  ASSERT_TRUE(second);
  b.record(*second, true, 5);
  EXPECT_EQ(b.state(), State::closed);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].to, State::half_open);
  EXPECT_EQ(seen[2].to, State::closed);
  auto s = b.stats();
  EXPECT_EQ(s.transitions_to[static_cast<int>(State::open)], 1u);
  EXPECT_EQ(s.transitions_to[static_cast<int>(State::half_open)], 1u);
  EXPECT_EQ(s.transitions_to[static_cast<int>(State::closed)], 1u);
}

TEST_F(BreakerTest, AFailedProbeReopensForTwiceAsLongUpToTheCap) {
  auto b = make();
  fail(b, 3);
  for (Millis expected : {2000, 4000, 4000}) {
    clock.now += 5000;
    auto probe = b.allow();
    ASSERT_TRUE(probe);
    b.record(*probe, false, 5, "timeout");
    EXPECT_EQ(b.state(), State::open);
    EXPECT_EQ(b.retry_after_ms(), expected);
  }
  // Closing resets the period.
  clock.now += 5000;
  for (int i = 0; i < 2; ++i) {
    auto probe = b.allow();
    ASSERT_TRUE(probe);
    b.record(*probe, true, 5);
  }
  EXPECT_EQ(b.state(), State::closed);
  fail(b, 3);
  EXPECT_EQ(b.retry_after_ms(), 1000);
}

TEST_F(BreakerTest, ASlowSuccessCountsAsAFailure) {
  auto b = make();
  for (int i = 0; i < 3; ++i) {
    auto p = b.allow();
    ASSERT_TRUE(p);
    b.record(*p, true, 501);
  }
  EXPECT_EQ(b.state(), State::open);
  EXPECT_NE(whys.back().find("501 ms"), std::string::npos) << whys.back();
}

// A call admitted while closed that comes back after the breaker opened says nothing about
// the engine now: neither a late success closes it nor a late failure extends it.
TEST_F(BreakerTest, OutcomesOfCallsAdmittedInAnEarlierStateAreIgnored) {
  auto b = make();
  auto early = b.allow();
  auto early2 = b.allow();
  ASSERT_TRUE(early && early2);
  fail(b, 3);
  b.record(*early, true, 5);
  EXPECT_EQ(b.state(), State::open);
  clock.now += 1000;
  auto probe = b.allow();
  ASSERT_TRUE(probe);
  b.record(*early2, false, 5);
  EXPECT_EQ(b.state(), State::half_open);
  b.record(*probe, true, 5);
  EXPECT_EQ(b.state(), State::half_open);
}

// Real calls feed the breaker through track(): an engine that does not answer (unavailable)
// counts toward opening; an answer, even an error one (not_found, conflict), is a success.
TEST_F(BreakerTest, TrackedCallsThatFailOpenItAndAnswersDoNot) {
  auto b = make();
  const Error down = make_error(Errc::unavailable, "redis: connection refused");
  const Error answer = make_error(Errc::conflict, "duplicate");
  b.record_result(b.track(), &down);
  b.record_result(b.track(), &down);
  b.record_result(b.track(), &answer);  // starts the count again
  b.record_result(b.track(), &down);
  b.record_result(b.track(), &down);
  EXPECT_EQ(b.state(), State::closed);
  b.record_result(b.track(), &down);
  EXPECT_EQ(b.state(), State::open);
  EXPECT_NE(whys.back().find("connection refused"), std::string::npos) << whys.back();
  // A tracked call that outlasts slow_call_ms is a failure too.
  auto c = make();
  for (int i = 0; i < 3; ++i) {
    auto t = c.track();
    clock.now += 600;
    c.record_result(t, nullptr);
  }
  EXPECT_EQ(c.state(), State::open);
}

// While half-open, a tracked call's success counts as a successful probe (it takes no probe
// slot: the prober's probe still goes through); a tracked failure opens it for twice as long.
TEST_F(BreakerTest, TrackedOutcomesWhileHalfOpenCloseOrReopenIt) {
  auto b = make();
  fail(b, 3);
  clock.now += 1000;
  auto t = b.track();
  EXPECT_EQ(b.state(), State::half_open) << "track() moves an open breaker on when due";
  auto probe = b.allow();
  ASSERT_TRUE(probe) << "a tracked call takes no probe slot";
  b.record_result(t, nullptr);
  EXPECT_EQ(b.state(), State::half_open) << "close_after = 2";
  b.record_result(b.track(), nullptr);
  EXPECT_EQ(b.state(), State::closed);
  b.record(*probe, false, 5, "late");  // admitted while half-open: stale now
  EXPECT_EQ(b.state(), State::closed);

  fail(b, 3);
  clock.now += 1000;
  const Error down = make_error(Errc::unavailable, "timeout");
  b.record_result(b.track(), &down);
  EXPECT_EQ(b.state(), State::open);
  EXPECT_EQ(b.retry_after_ms(), 2000);
}

// While open the next probe decides: tracked outcomes are ignored, as are calls tracked inside
// a probe (the probe records its own outcome once) and calls tracked before the state changed.
TEST_F(BreakerTest, TrackedOutcomesWhileOpenInsideAProbeOrStaleAreIgnored) {
  auto b = make();
  const Error down = make_error(Errc::unavailable, "down");
  {
    Breaker::ProbeScope probing;
    for (int i = 0; i < 5; ++i) b.record_result(b.track(), &down);
  }
  EXPECT_EQ(b.state(), State::closed);
  auto before = b.track();
  fail(b, 3);
  b.record_result(b.track(), nullptr);
  EXPECT_EQ(b.state(), State::open);
  clock.now += 1000;
  EXPECT_EQ(b.state(), State::half_open);
  b.record_result(before, nullptr);
  EXPECT_EQ(b.state(), State::half_open) << "tracked while closed: stale";
  b.record_result(b.track(), &down);
  EXPECT_EQ(b.state(), State::open);
}

TEST_F(BreakerTest, StateNames) {
  EXPECT_EQ(Breaker::state_name(State::closed), "closed");
  EXPECT_EQ(Breaker::state_name(State::open), "open");
  EXPECT_EQ(Breaker::state_name(State::half_open), "half_open");
}

}  // namespace
}  // namespace imd
