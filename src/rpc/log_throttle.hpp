// At most one log line per interval for a recurring condition, with the count of the lines
// that were held back. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace imd::rpc {

class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds every) : every_(every) {}

  // True when a line may be logged now; `suppressed` is then the count held back before it.
  bool allow(std::uint64_t& suppressed) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (logged_ && now - last_ < every_) {
      ++held_;
      return false;
    }
    logged_ = true;
    last_ = now;
    suppressed = held_;
    held_ = 0;
    return true;
  }

 private:
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  bool logged_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t held_ = 0;
};

}  // namespace imd::rpc
