// RedisPresence: the cluster PresenceStore adapter (domain/ports/presence.hpp), shared by every
// process, beside the routes it folds.
//
// Keys, under the user's route hash tag (redis_routes.hpp) so one script reads both:
//   <prefix>:{r:<user>}:p  HASH  "i:<node>:<conn>" = 1 per connection that reported idle,
//                                "away" = 1 when set, "last" = the last reported status (0..2)
//   <prefix>:{r:<user>}:s  SET   "<node>:<conn>" of the connections watching the user
// fold() is one script: the live routes (deadline ahead, as RedisRoutes::lookup), the states,
// the comparison with "last" and its update, atomically, so that gateways folding the same user
// at once report one change once. Both keys expire `ttl` after their last write; a dead
// gateway's watcher entries and idle marks linger until then (harmless: pushes to a gone
// connection are dropped, idle marks count only for live routes).
//
// Thread-safe, blocking; Redis failures are unavailable/internal (redis::reply_to_error).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "domain/ports/presence.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisPresenceOptions {
  std::string prefix = "im";  // the routes' prefix (RedisRoutesOptions::prefix)
  std::chrono::milliseconds ttl{24 * 3600 * 1000};
};

class RedisPresence final : public PresenceStore {
 public:
  RedisPresence(std::shared_ptr<redis::RedisClient> client, RedisPresenceOptions options = {});

  Result<void> set_idle(Id user, ConnRef conn, bool idle) override;
  Result<void> forget(Id user, ConnRef conn) override;
  Result<void> set_away(Id user, bool away) override;
  Result<PresenceFold> fold(Id user, bool allow_offline) override;
  Result<std::vector<PresenceStatus>> statuses(std::span<const Id> users) override;
  // One pipeline for all the users named.
  Result<void> subscribe(ConnRef conn, std::span<const Id> add,
                         std::span<const Id> remove) override;
  Result<std::vector<ConnRef>> subscribers(Id user) override;

 private:
  std::string state_key(Id user) const;
  std::string watch_key(Id user) const;
  // Runs the commands in one pipeline; the first error reply is the result.
  Result<std::vector<redis::Reply>> run(const std::vector<redis::Command>& cmds);

  std::shared_ptr<redis::RedisClient> client_;
  const RedisPresenceOptions options_;
  const std::string ttl_ms_;
  std::string fold_sha_;
};

}  // namespace imd
