// RedisCursorCache: the cluster CursorCache adapter (see domain/ports/cursor_cache.hpp for the
// invariant: a cached cursor is never ahead of the Store's).
//
// Key (in the user's hash tag {u:<id>}, beside the inbox):
//   <prefix>:{u:<id>}:cur  HASH  <kind><hex16(a)><hex16(b)> -> hex16(delivery cursor), kind
//                                 'c' (channel) or 'd' (DM)
// put() is one script per user (pipelined over users), forward-only: a field is set only when
// the new cursor is greater. Each put refreshes the key's TTL (cursor_ttl, default a day), so
// the cursors of users who stopped ACKing leave Redis by themselves.
//
// Redis failures are logged and read as "not cached" (0): they cost cursor writes, nothing
// else. Thread-safe, blocking.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "domain/ports/cursor_cache.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisCursorCacheOptions {
  std::string prefix = "im";
  std::chrono::milliseconds ttl{24 * 3600 * 1000};
};

class RedisCursorCache final : public CursorCache {
 public:
  RedisCursorCache(std::shared_ptr<redis::RedisClient> client,
                   RedisCursorCacheOptions options = {});

  std::uint64_t get(Id user_id, const ConvKey& conv) override;
  std::vector<std::uint64_t> get_many(Id user_id, std::span<const ConvKey> convs) override;
  void put(std::span<const DeliveryUpdate> stored) override;

 private:
  std::string key(Id user) const;

  std::shared_ptr<redis::RedisClient> client_;
  const RedisCursorCacheOptions options_;
  std::string put_sha_;
};

}  // namespace imd
