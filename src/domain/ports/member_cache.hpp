// Cache port for channel membership: the hot lookup of the send path (is the sender a
// member?) and of fan-out (who are the members?).
//
// Contract: thread-safe. members() returns the sorted member ids of a channel, loading them
// from the Store on a miss (one load per key at a time: no stampede). Every membership change
// calls invalidate() after the Store write, so a stale list never outlives the change.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

using MemberList = std::shared_ptr<const std::vector<Id>>;

class MemberCache {
 public:
  virtual ~MemberCache() = default;
  virtual Result<MemberList> members(Id channel_id) = 0;
  // The list when it is held in this process's memory: never loads, never blocks, so an I/O
  // thread may ask. Adapters whose every lookup is a network call keep this default.
  virtual std::optional<MemberList> cached(Id channel_id) { return std::nullopt; }
  virtual void invalidate(Id channel_id) = 0;
  // Warm-up (a user's channels when they connect): loads the lists that are not cached.
  // Returns how many were loaded; the first error (after trying every channel) otherwise.
  virtual Result<std::size_t> warm(std::span<const Id> channel_ids) {
    std::optional<Error> first;
    for (Id c : channel_ids) {
      auto r = members(c);
      if (!r && !first && r.error().code != Errc::not_found) first = r.error();
    }
    if (first) return *first;
    return channel_ids.size();
  }
};

}  // namespace imd
