// RedisUserCache: the cluster UserCache adapter (see domain/ports/user_cache.hpp): cache-aside
// of each user's space and channel ids in Redis, shared by every process.
//
// Keys (in the user's hash tag {u:<id>}, beside the inbox):
//   <prefix>:{u:<id>}:sc       "L" + count of spaces (8 bytes) + the space ids + the channel ids
//                              (8-byte little-endian each, ascending), or a negative entry:
//                              "E" (a user with no space and no channel) or "N" (no such user)
//   <prefix>:{u:<id>}:sc:lock  the load lock
//   <prefix>:{u:<id>}:sc:v     the invalidation counter
//
// Policies: those of redis::CacheAside (redis_cache_aside.hpp), shared with RedisMemberCache:
// two-level single flight (breakdown), negative entries for a user id that does not exist
// (penetration; the Store answers not_found) and for a user without memberships, TTL jitter
// (avalanche), versioned invalidation after every membership change, degradation, counters.
//
// Thread-safe, blocking.
#pragma once

#include <functional>
#include <memory>

#include "domain/ports/user_cache.hpp"
#include "redis/redis_cache_aside.hpp"
#include "redis/redis_client.hpp"

namespace imd {

using RedisUserCacheOptions = RedisCacheOptions;  // ttl: config redis.members_ttl_s

class RedisUserCache final : public UserCache {
 public:
  using Loader = std::function<Result<Memberships>(Id user_id)>;

  RedisUserCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                 RedisUserCacheOptions options = {});

  Result<MembershipsPtr> memberships(Id user_id) override { return cache_.get(user_id); }
  void invalidate(Id user_id) override { cache_.invalidate(user_id); }

  RedisCacheCounters counters() const { return cache_.counters(); }

 private:
  redis::CacheAside<Memberships> cache_;
};

}  // namespace imd
