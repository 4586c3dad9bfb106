#include "redis/redis_presence.hpp"

#include "redis/redis_routes.hpp"

namespace imd {

namespace {

using redis::Command;

// KEYS: route key, state key. ARGV: mode ("fold" or "read"), allow_offline (0/1), ttl_ms.
// Returns {status, changed}: status 0 offline, 1 online, 2 away (PresenceStatus's values).
const char* kFoldScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
local status = 0
if #live > 0 then
  status = 2
  if redis.call('HEXISTS', KEYS[2], 'away') == 0 then
    for _, m in ipairs(live) do
      if redis.call('HEXISTS', KEYS[2], 'i:' .. m) == 0 then
        status = 1
        break
      end
    end
  end
end
if ARGV[1] == 'read' then return {status, 0} end
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
if status == last or (status == 0 and ARGV[2] == '0') then return {status, 0} end
redis.call('HSET', KEYS[2], 'last', status)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {status, 1}
)lua";

Result<PresenceFold> parse_fold(const redis::Reply& r) {
  if (r.is_error()) return redis::reply_to_error(r);
  if (!r.is_array() || r.elements.size() != 2 || r.elements[0].integer < 0 ||
      r.elements[0].integer > 2) {
    return make_error(Errc::internal, "presence fold: unexpected reply");
  }
  return PresenceFold{static_cast<PresenceStatus>(r.elements[0].integer),
                      r.elements[1].integer != 0};
}

}  // namespace

RedisPresence::RedisPresence(std::shared_ptr<redis::RedisClient> client,
                             RedisPresenceOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      ttl_ms_(std::to_string(options_.ttl.count())) {
  fold_sha_ = client_->load_script(kFoldScript);
}

std::string RedisPresence::state_key(Id user) const {
  return route_key(options_.prefix, user) + ":p";
}

std::string RedisPresence::watch_key(Id user) const {
  return route_key(options_.prefix, user) + ":s";
}

Result<std::vector<redis::Reply>> RedisPresence::run(const std::vector<Command>& cmds) {
  if (cmds.empty()) return std::vector<redis::Reply>{};
  auto replies = client_->pipeline(cmds);
  if (!replies.ok()) return replies.error();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::reply_to_error(r);
  }
  return replies;
}

Result<void> RedisPresence::set_idle(Id user, ConnRef conn, bool idle) {
  const std::string key = state_key(user), field = "i:" + route_member(conn);
  std::vector<Command> cmds;
  if (idle) {
    cmds.push_back({"HSET", key, field, "1"});
    cmds.push_back({"PEXPIRE", key, ttl_ms_});
  } else {
    cmds.push_back({"HDEL", key, field});
  }
  IMD_TRY(run(cmds));
  return {};
}

Result<void> RedisPresence::forget(Id user, ConnRef conn) {
  return set_idle(user, conn, false);
}

Result<void> RedisPresence::set_away(Id user, bool away) {
  const std::string key = state_key(user);
  std::vector<Command> cmds;
  if (away) {
    cmds.push_back({"HSET", key, "away", "1"});
    cmds.push_back({"PEXPIRE", key, ttl_ms_});
  } else {
    cmds.push_back({"HDEL", key, "away"});
  }
  IMD_TRY(run(cmds));
  return {};
}

Result<PresenceFold> RedisPresence::fold(Id user, bool allow_offline) {
  auto r = client_->command({"EVALSHA", fold_sha_, "2", route_key(options_.prefix, user),
                             state_key(user), "fold", allow_offline ? "1" : "0", ttl_ms_});
  if (!r.ok()) return r.error();
  return parse_fold(*r);
}

Result<std::vector<PresenceStatus>> RedisPresence::statuses(std::span<const Id> users) {
  std::vector<Command> cmds;
  cmds.reserve(users.size());
  for (Id u : users) {
    cmds.push_back({"EVALSHA", fold_sha_, "2", route_key(options_.prefix, u), state_key(u), "read",
                    "0", ttl_ms_});
  }
  auto replies = run(cmds);
  if (!replies) return replies.error();
  std::vector<PresenceStatus> out;
  out.reserve(users.size());
  for (const redis::Reply& r : *replies) {
    auto f = parse_fold(r);
    if (!f) return f.error();
    out.push_back(f->status);
  }
  return out;
}

Result<void> RedisPresence::subscribe(ConnRef conn, std::span<const Id> add,
                                      std::span<const Id> remove) {
  const std::string m = route_member(conn);
  std::vector<Command> cmds;
  cmds.reserve(remove.size() + 2 * add.size());
  for (Id u : remove) cmds.push_back({"SREM", watch_key(u), m});
  for (Id u : add) {
    cmds.push_back({"SADD", watch_key(u), m});
    cmds.push_back({"PEXPIRE", watch_key(u), ttl_ms_});
  }
  IMD_TRY(run(cmds));
  return {};
}

Result<std::vector<ConnRef>> RedisPresence::subscribers(Id user) {
  auto r = client_->command({"SMEMBERS", watch_key(user)});
  if (!r.ok()) return r.error();
  if (r->is_error()) return redis::reply_to_error(*r);
  std::vector<ConnRef> out;
  out.reserve(r->elements.size());
  for (const redis::Reply& m : r->elements) {
    if (auto c = parse_route_member(m.str)) out.push_back(*c);
  }
  return out;
}

}  // namespace imd
