#include "common/snowflake.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace imd {

Snowflake::Snowflake(Clock& clock, std::uint32_t worker_id, Millis max_backward_ms)
    : clock_(clock), worker_(worker_id), max_backward_ms_(max_backward_ms) {
  if (worker_id > kMaxWorker) {
    throw std::invalid_argument("worker id " + std::to_string(worker_id) + " is above " +
                                std::to_string(kMaxWorker));
  }
}

Result<Id> Snowflake::next() {
  std::lock_guard lock(mu_);
  Millis now = clock_.now_ms();
  if (now < last_ms_) {
    if (last_ms_ - now > max_backward_ms_) {
      return make_error(Errc::unavailable,
                        "clock moved backwards by " + std::to_string(last_ms_ - now) + " ms");
    }
    now = last_ms_;  // absorb a small step back: keep counting from the last timestamp
  }
  if (now == last_ms_) {
    if (sequence_ == kMaxSequence) {
      // 4096 ids in this millisecond: wait for the next one, boundedly.
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(max_backward_ms_ + 50);
      while ((now = clock_.now_ms()) <= last_ms_) {
        if (std::chrono::steady_clock::now() > deadline) {
          return make_error(Errc::unavailable, "sequence exhausted and the clock does not advance");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      sequence_ = 0;
    } else {
      ++sequence_;
    }
  } else {
    sequence_ = 0;
  }
  last_ms_ = now;
  if (now < kEpochMs) return make_error(Errc::unavailable, "clock is before the id epoch");
  Id ms = static_cast<Id>(now - kEpochMs);
  return (ms << (kWorkerBits + kSequenceBits)) | (static_cast<Id>(worker_) << kSequenceBits) |
         sequence_;
}

}  // namespace imd
