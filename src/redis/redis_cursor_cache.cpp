#include "redis/redis_cursor_cache.hpp"

#include <map>

#include "common/log.hpp"
#include "redis/redis_keys.hpp"

namespace imd {

namespace {

using redis::Command;

// KEYS: cur. ARGV: ttl_ms, then pairs of field, hex16(seq). Forward-only.
const std::string kPutScript = std::string(redis::kLuaHexGreater) + R"lua(
for i = 2, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or hex_gt(ARGV[i + 1], cur) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)lua";

std::string field(const ConvKey& c) {
  std::string f(1, c.is_channel() ? 'c' : 'd');
  redis::append_hex16(f, c.a);
  redis::append_hex16(f, c.b);
  return f;
}

std::uint64_t parse_hex(const redis::Reply& r) {
  if (!r.is_string() || r.str.size() != 16) return 0;
  return std::stoull(r.str, nullptr, 16);
}

}  // namespace

RedisCursorCache::RedisCursorCache(std::shared_ptr<redis::RedisClient> client,
                                   RedisCursorCacheOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  put_sha_ = client_->load_script(kPutScript);
}

std::string RedisCursorCache::key(Id user) const {
  return options_.prefix + ":{u:" + std::to_string(user) + "}:cur";
}

std::uint64_t RedisCursorCache::get(Id user_id, const ConvKey& conv) {
  auto r = client_->command({"HGET", key(user_id), field(conv)});
  if (!r.ok()) {
    LOG_WARN("cursor cache: " << r.error().message);
    return 0;
  }
  return parse_hex(*r);
}

std::vector<std::uint64_t> RedisCursorCache::get_many(Id user_id, std::span<const ConvKey> convs) {
  std::vector<std::uint64_t> out(convs.size(), 0);
  if (convs.empty()) return out;
  Command c{"HMGET", key(user_id)};
  for (const ConvKey& conv : convs) c.push_back(field(conv));
  auto r = client_->command(c);
  if (!r.ok()) {
    LOG_WARN("cursor cache: " << r.error().message);
    return out;
  }
  for (std::size_t i = 0; i < out.size() && i < r->elements.size(); ++i) {
    out[i] = parse_hex(r->elements[i]);
  }
  return out;
}

void RedisCursorCache::put(std::span<const DeliveryUpdate> stored) {
  if (stored.empty()) return;
  std::map<Id, Command> by_user;
  const std::string ttl = std::to_string(options_.ttl.count());
  for (const DeliveryUpdate& u : stored) {
    auto [it, fresh] = by_user.try_emplace(u.user);
    if (fresh) it->second = {"EVALSHA", put_sha_, "1", key(u.user), ttl};
    it->second.push_back(field(u.conv));
    it->second.push_back(redis::hex16(u.seq));
  }
  std::vector<Command> cmds;
  cmds.reserve(by_user.size());
  for (auto& [user, c] : by_user) cmds.push_back(std::move(c));
  auto r = client_->pipeline(cmds);
  if (!r.ok())
    LOG_WARN("cursor cache: writing " << stored.size() << " cursors failed: " << r.error().message);
}

}  // namespace imd
