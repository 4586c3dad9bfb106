#include "common/readiness.hpp"

#include <gtest/gtest.h>

namespace imd {
namespace {

class ManualClock final : public Clock {
 public:
  Millis now_ms() override { return now; }
  Millis now = 1000;
};

TEST(Readiness, ReadyWhenEveryCheckPasses) {
  ManualClock clock;
  Readiness r(clock);
  r.add("store", [] { return Result<void>{}; });
  r.add("queue", [] { return Result<void>{}; });
  auto report = r.check();
  EXPECT_TRUE(report.ready);
  EXPECT_TRUE(report.failing.empty());
}

TEST(Readiness, NamesEveryFailingPart) {
  ManualClock clock;
  Readiness r(clock);
  r.add("store", [] { return Result<void>{make_error(Errc::unavailable, "connection refused")}; });
  r.add("queue", [] { return Result<void>{}; });
  r.add("redis", [] { return Result<void>{make_error(Errc::unavailable, "timeout")}; });
  auto report = r.check();
  EXPECT_FALSE(report.ready);
  ASSERT_EQ(report.failing.size(), 2u);
  EXPECT_EQ(report.failing[0].part, "store");
  EXPECT_EQ(report.failing[0].error, "connection refused");
  EXPECT_EQ(report.failing[1].part, "redis");
}

// An engine that answers, but after the deadline, is not ready to serve.
TEST(Readiness, ASlowCheckFails) {
  ManualClock clock;
  Readiness r(clock, 1000, 1000);
  r.add("store", [&] {
    clock.now += 1500;
    return Result<void>{};
  });
  auto report = r.check();
  EXPECT_FALSE(report.ready);
  ASSERT_EQ(report.failing.size(), 1u);
  EXPECT_NE(report.failing[0].error.find("1500 ms"), std::string::npos);
}

// However often it is asked, the checks run at most once per cache period.
TEST(Readiness, ChecksRunAtMostOncePerCachePeriod) {
  ManualClock clock;
  Readiness r(clock, 1000, 1000);
  int runs = 0;
  r.add("store", [&] {
    ++runs;
    return Result<void>{};
  });
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(r.check().ready);
  EXPECT_EQ(runs, 1);
  clock.now += 999;
  r.check();
  EXPECT_EQ(runs, 1);
  clock.now += 1;
  r.check();
  EXPECT_EQ(runs, 2);
}

// Draining answers at once, without asking the engines.
TEST(Readiness, DrainingIsNotReadyWithoutRunningTheChecks) {
  ManualClock clock;
  Readiness r(clock);
  int runs = 0;
  r.add("store", [&] {
    ++runs;
    return Result<void>{};
  });
  r.set_draining();
  auto report = r.check();
  EXPECT_FALSE(report.ready);
  ASSERT_EQ(report.failing.size(), 1u);
  EXPECT_EQ(report.failing[0].part, "draining");
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace imd
