// Cache port for members' delivery cursors (last ACKed seq per user and conversation), so that
// an ACK that does not move a cursor forward is answered without a database write
// (docs/architecture.md §3, "last-ack ids").
//
// Invariant: a cached cursor is never ahead of the Store's. Writers put only cursors the Store
// returned after it stored them (MessagingService::flush_acks), and put() is forward-only (a
// smaller value than the cached one is ignored). So a cursor read here is at most the stored
// one: a stale or missing entry can only cause an extra (idempotent) cursor write, never an ACK
// skipped that the Store still needs.
//
// Contract: thread-safe, blocking; a failure of the cache reads as "not cached" (0) and a lost
// put as a missing entry: both only cost writes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "domain/model.hpp"

namespace imd {

class CursorCache {
 public:
  virtual ~CursorCache() = default;
  // The cached cursor, 0 when none is cached.
  virtual std::uint64_t get(Id user_id, const ConvKey& conv) = 0;
  // get() when the answer is in this process's memory (never blocks); nullopt otherwise.
  virtual std::optional<std::uint64_t> cached(Id user_id, const ConvKey& conv) {
    return std::nullopt;
  }
  // Many cursors of one user (e.g. a sync's conversations), in the order asked; 0 = none.
  virtual std::vector<std::uint64_t> get_many(Id user_id, std::span<const ConvKey> convs) = 0;
  // Raises each (user, conv) cursor to `seq` unless the cached one is already at or above it.
  virtual void put(std::span<const DeliveryUpdate> stored) = 0;
};

}  // namespace imd
