// Monotonic time in nanoseconds, the one clock every imbench measurement uses.
#pragma once

#include <chrono>
#include <cstdint>

namespace imbench {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A now_ns() value as a point in time, for timers.
inline std::chrono::steady_clock::time_point at_ns(std::int64_t ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSec = 1'000'000'000;

}  // namespace imbench
