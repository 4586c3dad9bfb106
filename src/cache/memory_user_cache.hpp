// In-process UserCache adapter (standalone mode): each user's sorted space and channel ids,
// through MemoryCacheAside (single flight, generation guard, bounded to `capacity` users; no
// TTL, since every membership change invalidates in this process). A not_found (no such user)
// is returned, not cached: user ids reach this cache from verified tokens. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "cache/memory_cache_aside.hpp"
#include "domain/ports/user_cache.hpp"

namespace imd {

class MemoryUserCache final : public UserCache {
 public:
  using Loader = std::function<Result<Memberships>(Id user_id)>;
  explicit MemoryUserCache(Loader load, std::size_t capacity = 100000);
  Result<MembershipsPtr> memberships(Id user_id) override { return cache_.get(user_id); }
  void invalidate(Id user_id) override { cache_.invalidate(user_id); }

  std::uint64_t hits() const { return cache_.hits(); }
  std::uint64_t misses() const { return cache_.misses(); }

 private:
  MemoryCacheAside<Memberships> cache_;
};

}  // namespace imd
