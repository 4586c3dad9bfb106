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
// Policies (each has a test in redis_member_cache_test.cpp that fails without it):
// - Breakdown / stampede: a miss first joins the in-process single flight of that key (one
//   Redis round and one load per key per process); the leader then takes the Redis lock, so
//   one process in the whole cluster loads. Losers poll the key every poll interval for up to
//   lock_wait, re-trying the lock (the holder may have died: the lock expires); after that they
//   load from the Store themselves without caching, so a stuck lock costs latency, not errors.
// - Penetration: an id with no members is cached as a negative entry for negative_ttl, so a
//   flood of lookups for channels that do not exist reaches the Store once per negative_ttl.
//   (SqliteStore::channel_member_ids returns an empty list for an unknown channel; a loader
//   that answers not_found is cached as such and members() returns not_found.)
// - Avalanche: every TTL (positive and negative) is multiplied by a random factor in
//   [1 - jitter, 1 + jitter], so lists warmed together do not expire together.
// - Invalidation: invalidate() (the services call it after the Store write) deletes the list
//   and bumps :v in one script; a load stores its list only if :v is unchanged since before it
//   read the Store, so a list read before a change is never cached after it. Should a delete
//   be lost (Redis unreachable at that moment), the stale list lives at most one TTL.
// - Degradation: when Redis is unreachable, members() loads from the Store (still single
//   flight within the process) and counts it in `degraded`.
//
// Thread-safe, blocking. The loader is called with no lock held.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "domain/ports/member_cache.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisMemberCacheOptions {
  std::string prefix = "im";
  std::chrono::milliseconds ttl{300000};  // config redis.members_ttl_s
  double jitter = 0.1;                    // TTLs vary by +-10%
  std::chrono::milliseconds negative_ttl{5000};
  std::chrono::milliseconds lock_ttl{3000};   // longer than a Store load takes
  std::chrono::milliseconds lock_wait{2000};  // a loser's patience before it loads itself
  std::chrono::milliseconds poll{20};
};

class RedisMemberCache final : public MemberCache {
 public:
  using Loader = std::function<Result<std::vector<Id>>(Id channel_id)>;

  RedisMemberCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                   RedisMemberCacheOptions options = {});

  Result<MemberList> members(Id channel_id) override;
  void invalidate(Id channel_id) override;

  // Warm-up (e.g. the channels of a user who connects, or the busiest ones at start): loads
  // the lists that are not cached, through the same single-flight path. Returns how many were
  // loaded; the first error (after trying every channel) otherwise.
  Result<std::size_t> warm(std::span<const Id> channel_ids);

  struct Counters {
    std::uint64_t hits = 0;           // answered from Redis (negative entries included)
    std::uint64_t misses = 0;         // not in Redis at the first read
    std::uint64_t negative_hits = 0;  // of the hits, negative entries
    std::uint64_t loads = 0;          // Store loads by this process
    std::uint64_t shared = 0;         // misses answered by another thread's load (in-process)
    std::uint64_t lock_waits = 0;     // polls while another process held the lock
    std::uint64_t degraded = 0;       // loads without Redis (unreachable, or lock_wait spent)
  };
  Counters counters() const;
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }

 private:
  struct Flight {
    bool done = false;
    std::optional<Result<MemberList>> result;
  };

  std::string key(Id channel, std::string_view suffix) const;
  std::chrono::milliseconds jittered(std::chrono::milliseconds ttl);
  Result<MemberList> load_through_flight(Id channel_id, bool use_redis);
  Result<MemberList> load_with_lock(Id channel_id);
  Result<MemberList> load_from_store(Id channel_id, std::string* encoded);

  std::shared_ptr<redis::RedisClient> client_;
  Loader load_;
  const RedisMemberCacheOptions options_;
  std::string get_or_lock_sha_, store_sha_, invalidate_sha_;

  std::mutex mu_;
  std::condition_variable landed_;
  std::unordered_map<Id, std::shared_ptr<Flight>> flights_;

  std::atomic<std::uint64_t> hits_{0}, misses_{0}, negative_hits_{0}, loads_{0}, shared_{0},
      lock_waits_{0}, degraded_{0};
};

}  // namespace imd
