// Clock (a port of the domain, kept here so that common/ needs nothing above it): injected so that
// ids, tokens and rate limits can be tested with a fake clock.
#pragma once

#include <chrono>

#include "common/types.hpp"

namespace imd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now_ms() = 0;
};

class SystemClock final : public Clock {
 public:
  Millis now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace imd
