// A Clock that stands still until the test sets or advances it: time-driven behaviour (token
// expiry, created_at stamps) is tested without waiting for real time to pass. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>

#include "common/clock.hpp"

namespace imd::testing {

class FakeClock final : public Clock {
 public:
  Millis now_ms() override { return now_.load(); }
  void set(Millis t) { now_.store(t); }
  void advance(std::chrono::milliseconds d) { now_.fetch_add(d.count()); }

 private:
  // Starts at the real time: cpp-jwt also checks a token's `exp` against the system clock, and
  // Snowflake ids need a time after their epoch.
  std::atomic<Millis> now_{SystemClock().now_ms()};
};

}  // namespace imd::testing
