// redis::CacheAside<V>: the cache-aside machinery shared by the Redis caches of the ports
// (RedisMemberCache: a channel's members; RedisUserCache: a user's spaces and channels). Each
// value of type V is kept under one key per id, loaded from the Store on a miss.
//
// Keys (one id's keys share the hash tag {<tag>:<id>}, so the scripts touch one slot):
//   <prefix>:{<tag>:<id>}<value>    "L" + the encoded value, or a negative entry: "E" (the loader
//                                   returned an empty value) or "N" (it said not_found)
//   <prefix>:{<tag>:<id>}<lock>     the load lock (SET NX PX lock_ttl, random token)
//   <prefix>:{<tag>:<id>}<version>  the invalidation counter
//
// Policies (each has a test in redis_adapters_test.cpp that fails without it):
// - Breakdown / stampede: a miss first joins the in-process single flight of that key (one
//   Redis round and one load per key per process); the leader then takes the Redis lock, so
//   one process in the whole cluster loads. Losers poll the key every poll interval for up to
//   lock_wait, re-trying the lock (the holder may have died: the lock expires); after that they
//   load from the Store themselves without caching, so a stuck lock costs latency, not errors.
// - Penetration: an empty value or a not_found is cached as a negative entry for negative_ttl,
//   so a flood of lookups for ids that do not exist reaches the Store once per negative_ttl.
// - Avalanche: every TTL (positive and negative) is multiplied by a random factor in
//   [1 - jitter, 1 + jitter], so values warmed together do not expire together.
// - Invalidation: invalidate() (the services call it after the Store write) deletes the value
//   and bumps the version in one script; a load stores its value only if the version is
//   unchanged since before it read the Store, so a value read before a change is never cached
//   after it, in any process. Should a delete be lost (Redis unreachable at that moment), the
//   stale value lives at most one TTL.
// - Degradation: when Redis is unreachable, get() loads from the Store (still single flight
//   within the process) and counts it in `degraded`.
//
// Thread-safe, blocking. The loader is called with no lock held. Instantiated (in the .cpp) for
// the value types of the caches above.
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
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisCacheOptions {
  std::string prefix = "im";
  std::chrono::milliseconds ttl{300000};  // config redis.members_ttl_s
  double jitter = 0.1;                    // TTLs vary by +-10%
  std::chrono::milliseconds negative_ttl{5000};
  std::chrono::milliseconds lock_ttl{3000};   // longer than a Store load takes
  std::chrono::milliseconds lock_wait{2000};  // a loser's patience before it loads itself
  std::chrono::milliseconds poll{20};
};

struct RedisCacheCounters {
  std::uint64_t hits = 0;           // answered from Redis (negative entries included)
  std::uint64_t misses = 0;         // not in Redis at the first read
  std::uint64_t negative_hits = 0;  // of the hits, negative entries
  std::uint64_t loads = 0;          // Store loads by this process
  std::uint64_t shared = 0;         // misses answered by another thread's load (in-process)
  std::uint64_t lock_waits = 0;     // polls while another process held the lock
  std::uint64_t degraded = 0;       // loads without Redis (unreachable, or lock_wait spent)
};

namespace redis {

// Ids as 8-byte little-endian words, for the encoded values.
void append_ids(std::string& out, std::span<const Id> ids);
// Sorts and removes duplicates: the normal form of the cached id lists.
void sort_unique(std::vector<Id>& ids);
// Reads `count` ids from the front of `in` and advances it; false if `in` is too short.
bool read_ids(std::string_view& in, std::size_t count, std::vector<Id>& out);

template <class V>
class CacheAside {
 public:
  using Value = std::shared_ptr<const V>;
  using Loader = std::function<Result<V>(Id)>;
  struct Names {
    std::string tag;        // "ch": keys <prefix>:{ch:<id>}...
    std::string value;      // suffix of the value key, e.g. ":m"
    std::string lock;       // suffix of the lock key
    std::string version;    // suffix of the version key
    std::string not_found;  // the message of a cached not_found
  };
  struct Codec {
    std::function<void(const V&, std::string&)> encode;        // appends the payload
    std::function<std::optional<V>(std::string_view)> decode;  // nullopt: not ours (a miss)
    std::function<bool(const V&)> empty;                       // cached as a negative entry
    std::function<void(V&)> normalize;                         // on what the loader returned
  };

  CacheAside(std::shared_ptr<RedisClient> client, RedisCacheOptions options, Names names,
             Loader load, Codec codec);

  Result<Value> get(Id id);
  void invalidate(Id id);
  // Loads the values that are not cached (one pipeline of EXISTS first), through get().
  // Returns how many were loaded; the first error (after trying every id) otherwise.
  Result<std::size_t> warm(std::span<const Id> ids);
  RedisCacheCounters counters() const;

 private:
  struct Flight {
    bool done = false;
    std::optional<Result<Value>> result;
  };

  std::string key(Id id, std::string_view suffix) const;
  std::chrono::milliseconds jittered(std::chrono::milliseconds ttl);
  std::optional<Result<Value>> decode(std::string_view stored) const;
  Result<Value> load_through_flight(Id id, bool use_redis);
  Result<Value> load_with_lock(Id id);
  Result<Value> load_from_store(Id id, std::string* encoded);

  std::shared_ptr<RedisClient> client_;
  const RedisCacheOptions options_;
  const Names names_;
  Loader load_;
  Codec codec_;
  std::string get_or_lock_sha_, store_sha_, invalidate_sha_;

  std::mutex mu_;
  std::condition_variable landed_;
  std::unordered_map<Id, std::shared_ptr<Flight>> flights_;

  std::atomic<std::uint64_t> hits_{0}, misses_{0}, negative_hits_{0}, loads_{0}, shared_{0},
      lock_waits_{0}, degraded_{0};
};

}  // namespace redis
}  // namespace imd
