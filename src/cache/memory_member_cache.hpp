// In-process MemberCache adapter (standalone mode).
//
// A miss loads the member list through `load` (the Store's channel_member_ids); concurrent misses
// of one key wait for the one load in flight (single-flight: no stampede on a hot channel).
// invalidate() bumps the key's generation, so a load that started before a membership change is not
// cached after it. Bounded: at most `capacity` channels are cached; beyond that, an arbitrary entry
// is evicted. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <functional>

#include "domain/ports/member_cache.hpp"

namespace imd {

class MemoryMemberCache final : public MemberCache {
 public:
  using Loader = std::function<Result<std::vector<Id>>(Id channel_id)>;
  explicit MemoryMemberCache(Loader load, std::size_t capacity = 100000);
  Result<MemberList> members(Id channel_id) override;
  void invalidate(Id channel_id) override;

  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  struct Entry {
    MemberList list;  // null while not loaded
    std::uint64_t generation = 0;
    bool loading = false;
  };

  Loader load_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::unordered_map<Id, Entry> entries_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace imd
