// RedisMemberCache: the cluster MemberCache adapter (see domain/ports/member_cache.hpp):
// cache-aside of each channel's sorted member ids in Redis, shared by every process.
//
// Keys (one channel's keys share the hash tag {ch:<id>}):
//   <prefix>:{ch:<id>}:m     the list: "L" + 8-byte little-endian ids, or a negative entry
//                            "E" (the loader found no members: an unknown or empty channel)
//                            or "N" (the loader said not_found)
//   <prefix>:{ch:<id>}:lock  the load lock (SET NX PX lock_ttl, random token)
//   <prefix>:{ch:<id>}:v     the invalidation counter
//
// Policies: those of redis::CacheAside (redis_cache_aside.hpp): two-level single flight
// against breakdown, negative entries against penetration (SqliteStore::channel_member_ids
// returns an empty list for an unknown channel; a loader that answers not_found is cached as
// such and members() returns not_found), TTL jitter against avalanche, versioned invalidation,
// degradation to the Store when Redis is unreachable, counters.
//
// Thread-safe, blocking. The loader is called with no lock held.
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "domain/ports/member_cache.hpp"
#include "redis/redis_cache_aside.hpp"
#include "redis/redis_client.hpp"

namespace imd {

using RedisMemberCacheOptions = RedisCacheOptions;  // ttl: config redis.members_ttl_s

class RedisMemberCache final : public MemberCache {
 public:
  using Loader = std::function<Result<std::vector<Id>>(Id channel_id)>;

  RedisMemberCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                   RedisMemberCacheOptions options = {});

  Result<MemberList> members(Id channel_id) override { return cache_.get(channel_id); }
  void invalidate(Id channel_id) override { cache_.invalidate(channel_id); }
  // Loads the lists that are not cached (one pipeline of EXISTS first).
  Result<std::size_t> warm(std::span<const Id> channel_ids) override {
    return cache_.warm(channel_ids);
  }

  using Counters = RedisCacheCounters;
  Counters counters() const { return cache_.counters(); }
  std::uint64_t hits() const { return counters().hits; }
  std::uint64_t misses() const { return counters().misses; }

 private:
  redis::CacheAside<std::vector<Id>> cache_;
};

}  // namespace imd
