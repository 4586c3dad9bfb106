// Snowflake ids: 41 bits of milliseconds since kEpochMs, 10 bits of worker id, 12 bits of
// sequence. Thread-safe. Ids from one generator strictly increase, even when the clock steps
// back: a step back of up to `max_backward_ms` is absorbed by continuing from the last
// timestamp; a larger one makes next() fail with unavailable (loudly, rather than issue an
// id that may collide or go backwards).
#pragma once

#include <cstdint>
#include <mutex>

#include "common/clock.hpp"
#include "common/id_generator.hpp"

namespace imd {

class Snowflake final : public IdGenerator {
 public:
  static constexpr Millis kEpochMs = 1704067200000;  // 2024-01-01T00:00:00Z
  static constexpr int kWorkerBits = 10;
  static constexpr int kSequenceBits = 12;
  static constexpr std::uint32_t kMaxWorker = (1u << kWorkerBits) - 1;
  static constexpr std::uint32_t kMaxSequence = (1u << kSequenceBits) - 1;

  // Throws std::invalid_argument for a worker id above kMaxWorker (a start-up error).
  Snowflake(Clock& clock, std::uint32_t worker_id, Millis max_backward_ms = 1000);

  Result<Id> next() override;

  static Millis timestamp_of(Id id) { return static_cast<Millis>(id >> 22) + kEpochMs; }
  static std::uint32_t worker_of(Id id) { return (id >> kSequenceBits) & kMaxWorker; }

 private:
  Clock& clock_;
  const std::uint32_t worker_;
  const Millis max_backward_ms_;
  std::mutex mu_;
  Millis last_ms_ = 0;
  std::uint32_t sequence_ = 0;
};

}  // namespace imd
