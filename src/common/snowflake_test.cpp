#include "common/snowflake.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace imd {
namespace {

class FakeClock : public Clock {
 public:
  explicit FakeClock(Millis t) : t_(t) {}
  Millis now_ms() override { return t_.load(); }
  void set(Millis t) { t_ = t; }
  void advance(Millis d) { t_ += d; }

 private:
  std::atomic<Millis> t_;
};

constexpr Millis kT0 = Snowflake::kEpochMs + 1'000'000;

TEST(Snowflake, LayoutCarriesTimeAndWorker) {
  FakeClock clock(kT0);
  Snowflake gen(clock, 513);
  auto id = gen.next();
  ASSERT_TRUE(id);
  EXPECT_EQ(Snowflake::timestamp_of(*id), kT0);
  EXPECT_EQ(Snowflake::worker_of(*id), 513u);
  EXPECT_EQ(*id & Snowflake::kMaxSequence, 0u);
}

TEST(Snowflake, StrictlyIncreasingWithinAMillisecond) {
  FakeClock clock(kT0);
  Snowflake gen(clock, 1);
  Id prev = 0;
  for (int i = 0; i < 4096; ++i) {
    auto id = gen.next();
    ASSERT_TRUE(id);
    EXPECT_GT(*id, prev);
    prev = *id;
  }
}

TEST(Snowflake, SequenceExhaustionWaitsForTheNextMillisecond) {
  FakeClock clock(kT0);
  Snowflake gen(clock, 1, /*max_backward_ms=*/200);
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(gen.next());
  std::thread ticker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    clock.advance(1);
  });
  auto id = gen.next();  // blocks until the ticker advances the clock
  ticker.join();
  ASSERT_TRUE(id);
  EXPECT_EQ(Snowflake::timestamp_of(*id), kT0 + 1);
}

TEST(Snowflake, SmallClockStepBackNeverIssuesASmallerId) {
  FakeClock clock(kT0);
  Snowflake gen(clock, 7, /*max_backward_ms=*/1000);
  auto before = gen.next();
  ASSERT_TRUE(before);
  clock.set(kT0 - 500);  // NTP stepped the clock back half a second
  for (int i = 0; i < 100; ++i) {
    auto id = gen.next();
    ASSERT_TRUE(id);
    EXPECT_GT(*id, *before);
    before = id;
  }
}

TEST(Snowflake, LargeClockStepBackFailsLoudly) {
  FakeClock clock(kT0);
  Snowflake gen(clock, 7, /*max_backward_ms=*/1000);
  ASSERT_TRUE(gen.next());
  clock.set(kT0 - 5000);
  auto id = gen.next();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::unavailable);
  clock.set(kT0 + 1);  // once the clock is past the last id again, ids flow
  EXPECT_TRUE(gen.next());
}

TEST(Snowflake, RejectsAWorkerIdOutOfRange) {
  FakeClock clock(kT0);
  EXPECT_THROW(Snowflake(clock, 1024), std::invalid_argument);
}

TEST(Snowflake, UniqueAcrossThreads) {
  SystemClock clock;
  Snowflake gen(clock, 3);
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::vector<Id>> got(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        auto id = gen.next();
        ASSERT_TRUE(id);
        if (!got[t].empty()) ASSERT_GT(*id, got[t].back());
        got[t].push_back(*id);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::set<Id> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPer));
}

}  // namespace
}  // namespace imd
