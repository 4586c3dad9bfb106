// RedisRoutes: the cluster Routes adapter (see domain/ports/routes.hpp): user -> connections
// (gateway node, connection id), shared by every process, each connection with its own expiry.
//
// Key: <prefix>:{r:<user>}, a ZSET with member "<node>:<conn>" and score = its deadline in ms
// of the Redis server's clock (redis.call('TIME') inside the scripts, so gateways' clocks do
// not matter). add() and refresh() set the deadline to now + ttl, drop expired members, and
// PEXPIRE the key to its latest deadline; lookup() returns the members whose deadline has not
// passed. A gateway that dies stops refreshing, and its routes expire by themselves within one
// TTL; the key disappears with its last route.
//
// The gateway must call refresh_many() with all its live connections periodically, every
// ttl / 3 (a timer on the blocking pool; two missed refreshes still leave the routes alive),
// and remove() when a connection closes. A refresh racing with a remove may bring the route
// back until its TTL: a push to it is dropped by the gateway, which no longer knows the
// connection.
//
// The port returns no errors: a Redis failure is logged (warn) and reads as no routes (a
// recipient seems offline: the message stays in the inbox / history and is delivered on
// resume). Thread-safe, blocking (run off the I/O threads).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "domain/ports/routes.hpp"
#include "redis/redis_client.hpp"

namespace imd {

// The route key of a user and the member naming a connection in it; RedisPresence keeps its
// keys under the same hash tag, so that its scripts read the routes.
std::string route_key(std::string_view prefix, Id user);
std::string route_member(ConnRef c);
std::optional<ConnRef> parse_route_member(std::string_view s);

struct RedisRoutesOptions {
  std::string prefix = "im";
  std::chrono::milliseconds ttl{60000};  // config redis.route_ttl_s
};

class RedisRoutes final : public Routes {
 public:
  RedisRoutes(std::shared_ptr<redis::RedisClient> client, RedisRoutesOptions options = {});

  void add(Id user_id, ConnRef conn) override;
  void remove(Id user_id, ConnRef conn) override;
  std::vector<ConnRef> lookup(Id user_id) override;
  // One pipelined script call per user (grouped by node in a cluster).
  // False when the pipeline failed or a user's lookup answered an error (that user skipped).
  bool lookup_many(std::span<const Id> users,
                   const std::function<void(Id, ConnRef)>& visit) override;

  // Not on the port: keeps a live connection's route from expiring (same as add).
  Result<void> refresh(Id user_id, ConnRef conn);
  // Every (user, connection) of a gateway in one pipeline.
  Result<void> refresh_many(std::span<const std::pair<Id, ConnRef>> conns);

  std::chrono::milliseconds ttl() const { return options_.ttl; }

 private:
  std::string key(Id user) const;

  std::shared_ptr<redis::RedisClient> client_;
  const RedisRoutesOptions options_;
  std::string touch_sha_, lookup_sha_;
};

}  // namespace imd
