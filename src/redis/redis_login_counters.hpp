// RedisLoginCounters: the LoginCounters port (domain/ports/login_counters.hpp) in Redis, so the
// login brakes of every process of a cluster count the same failures.
//
// Keys, all in the account's hash tag (one slot: the scripts touch several):
//   <prefix>:{login:<account>}:p:<source>  HASH  f -> failures, t -> last failure (ms);
//                                          expires forget_after_ms after the last failure
//   <prefix>:{login:<account>}:a           HASH  the same over every source
//   <prefix>:{login:<account>}:k           ZSET  source -> last login (ms), the newest
//                                          known_per_account kept; expires known_for_ms
//                                          after the last login
// Every key expires, so memory is bounded by the failures of one forget period (which the
// per-IP auth rate bounds). `<account>` is at most kMaxAccountBytes of the name asked for
// (longer ones are no account: they share a counter).
// A failure is one script (HINCRBY): sent again after a broken connection it may count twice,
// which only brakes harder. Thread-safe, blocking.
#pragma once

#include <memory>
#include <string>

#include "domain/ports/login_counters.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisLoginCountersOptions {
  std::string prefix = "im";
  LoginCounterLimits limits;
};

class RedisLoginCounters final : public LoginCounters {
 public:
  static constexpr std::size_t kMaxAccountBytes = 64;

  RedisLoginCounters(std::shared_ptr<redis::RedisClient> client, RedisLoginCountersOptions options);

  Result<LoginCounts> read(std::string_view account, std::string_view source, Millis now) override;
  Result<void> failed(std::string_view account, std::string_view source, Millis now) override;
  Result<void> succeeded(std::string_view account, std::string_view source, Millis now) override;

 private:
  std::string key(std::string_view account, std::string_view what) const;

  std::shared_ptr<redis::RedisClient> client_;
  RedisLoginCountersOptions options_;
  std::string failed_sha_;
  std::string succeeded_sha_;
};

}  // namespace imd
