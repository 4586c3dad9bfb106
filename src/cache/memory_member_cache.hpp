// In-process MemberCache adapter (standalone mode): each channel's sorted member ids, through
// MemoryCacheAside (single flight, generation guard against caching a list that a membership
// change made stale, bounded to `capacity` channels). Thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "cache/memory_cache_aside.hpp"
#include "domain/ports/member_cache.hpp"

namespace imd {

class MemoryMemberCache final : public MemberCache {
 public:
  using Loader = std::function<Result<std::vector<Id>>(Id channel_id)>;
  explicit MemoryMemberCache(Loader load, std::size_t capacity = 100000);
  Result<MemberList> members(Id channel_id) override { return cache_.get(channel_id); }
  std::optional<MemberList> cached(Id channel_id) override {
    if (auto v = cache_.peek(channel_id)) return v;
    return std::nullopt;
  }
  void invalidate(Id channel_id) override { cache_.invalidate(channel_id); }

  std::uint64_t hits() const { return cache_.hits(); }
  std::uint64_t misses() const { return cache_.misses(); }

 private:
  MemoryCacheAside<std::vector<Id>> cache_;
};

}  // namespace imd
