#include "redis/redis_routes.hpp"

#include <charconv>

#include "common/log.hpp"

namespace imd {

namespace {

using redis::Command;

// KEYS: route key. ARGV: ttl_ms, member. Sets member's deadline to now + ttl.
const char* kTouchScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[1])), ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local ms = math.floor(tonumber(last[2]) - now)
if ms > 0 then redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ms)) end
return 1
)lua";

// KEYS: route key. The members whose deadline is still ahead.
const char* kLookupScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
)lua";

}  // namespace

std::string route_key(std::string_view prefix, Id user) {
  return std::string(prefix) + ":{r:" + std::to_string(user) + "}";
}

std::string route_member(ConnRef c) {
  return std::to_string(c.node) + ":" + std::to_string(c.conn);
}

std::optional<ConnRef> parse_route_member(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  ConnRef c;
  auto [p1, e1] = std::from_chars(s.data(), s.data() + colon, c.node);
  auto [p2, e2] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), c.conn);
  if (e1 != std::errc() || e2 != std::errc() || p1 != s.data() + colon ||
      p2 != s.data() + s.size()) {
    return std::nullopt;
  }
  return c;
}

RedisRoutes::RedisRoutes(std::shared_ptr<redis::RedisClient> client, RedisRoutesOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  touch_sha_ = client_->load_script(kTouchScript);
  lookup_sha_ = client_->load_script(kLookupScript);
}

std::string RedisRoutes::key(Id user) const {
  return route_key(options_.prefix, user);
}

void RedisRoutes::add(Id user_id, ConnRef conn) {
  if (auto r = refresh(user_id, conn); !r.ok()) {
    LOG_WARN("route add for user " << user_id << " failed: " << r.error().message);
  }
}

Result<void> RedisRoutes::refresh(Id user_id, ConnRef conn) {
  std::pair<Id, ConnRef> one{user_id, conn};
  return refresh_many(std::span(&one, 1));
}

Result<void> RedisRoutes::refresh_many(std::span<const std::pair<Id, ConnRef>> conns) {
  if (conns.empty()) return {};
  std::vector<Command> cmds;
  cmds.reserve(conns.size());
  const std::string ttl = std::to_string(options_.ttl.count());
  for (const auto& [user, conn] : conns) {
    cmds.push_back({"EVALSHA", touch_sha_, "1", key(user), ttl, route_member(conn)});
  }
  auto replies = client_->pipeline(cmds);
  if (!replies.ok()) return replies.error();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::reply_to_error(r);
  }
  return {};
}

void RedisRoutes::remove(Id user_id, ConnRef conn) {
  if (auto r = client_->command({"ZREM", key(user_id), route_member(conn)}); !r.ok()) {
    LOG_WARN("route remove for user " << user_id << " failed: " << r.error().message);
  }
}

std::vector<ConnRef> RedisRoutes::lookup(Id user_id) {
  std::vector<ConnRef> out;
  Id one[] = {user_id};
  lookup_many(one, [&](Id, ConnRef c) { out.push_back(c); });
  return out;
}

bool RedisRoutes::lookup_many(std::span<const Id> users,
                              const std::function<void(Id, ConnRef)>& visit) {
  if (users.empty()) return true;
  std::vector<Command> cmds;
  cmds.reserve(users.size());
  for (Id u : users) cmds.push_back({"EVALSHA", lookup_sha_, "1", key(u)});
  auto replies = client_->pipeline(cmds);
  if (!replies.ok()) {
    LOG_WARN("route lookup of " << users.size() << " users failed: " << replies.error().message);
    return false;
  }
  bool all = true;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const redis::Reply& r = (*replies)[i];
    if (r.is_error()) {
      LOG_WARN("route lookup for user " << users[i] << " failed: " << r.str);
      all = false;
      continue;
    }
    for (const redis::Reply& m : r.elements) {
      if (auto c = parse_route_member(m.str)) visit(users[i], *c);
    }
  }
  return all;
}

}  // namespace imd
