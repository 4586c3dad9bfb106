#include "redis/redis_inbox.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "common/log.hpp"
#include "redis/message_codec.hpp"
#include "redis/redis_keys.hpp"

namespace imd {

namespace {

using redis::append_hex16;
using redis::Command;
using redis::hex16;

// A page bound, as in SqliteInbox.
constexpr std::uint32_t kMaxInboxPage = 1000;
// Members per ZREM/HDEL call inside the scripts (Lua's unpack has a stack limit).
constexpr const char* kChunk = "500";

// KEYS: ib, age, msg, ack, over. ARGV: max, chunk, then per item: member, conversation (the
// first 32 hex digits of member), seq (hex16), created_at, encoded message.
// Returns {added, dropped}.
const std::string kPushScript = std::string(redis::kLuaHexGreater) + R"lua(
local max, chunk = tonumber(ARGV[1]), tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV, 5 do
  local cursor = redis.call('HGET', KEYS[4], ARGV[i + 1])
  if (not cursor) or hex_gt(ARGV[i + 2], cursor) then
    if redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[i]) == 1 then
      redis.call('ZADD', KEYS[2], ARGV[i + 3], ARGV[i])
      redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 4])
      added = added + 1
    end
  end
end
local dropped = 0
local excess = redis.call('ZCARD', KEYS[1]) - max
while excess > 0 do
  local popped = redis.call('ZPOPMIN', KEYS[2], math.min(excess, chunk))
  local members = {}
  for j = 1, #popped, 2 do members[#members + 1] = popped[j] end
  if #members == 0 then break end
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('HDEL', KEYS[3], unpack(members))
  dropped = dropped + #members
  excess = excess - #members
end
if dropped > 0 then redis.call('INCRBY', KEYS[5], dropped) end
return {added, dropped}
)lua";

// KEYS: ib, age, msg, ack. ARGV: conversation (32 hex), up_to (hex16), chunk.
// Advances the cursor (never back), then removes the conversation's entries <= up_to.
const std::string kAckScript = std::string(redis::kLuaHexGreater) + R"lua(
local cursor = redis.call('HGET', KEYS[4], ARGV[1])
if (not cursor) or hex_gt(ARGV[2], cursor) then redis.call('HSET', KEYS[4], ARGV[1], ARGV[2]) end
local removed = 0
while true do
  local members = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1], '[' .. ARGV[1] .. ARGV[2],
                             'LIMIT', 0, tonumber(ARGV[3]))
  if #members == 0 then break end
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('ZREM', KEYS[2], unpack(members))
  redis.call('HDEL', KEYS[3], unpack(members))
  removed = removed + #members
end
return removed
)lua";

// KEYS: ib, msg. ARGV: lower bound ('-' or '(' .. member), limit. The messages, in order.
const char* kListScript = R"lua(
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #members == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(members))
)lua";

// KEYS: over. ARGV: seen. Subtracts what the caller saw; deletes the counter at 0.
const char* kClearOverflowScript = R"lua(
local left = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if left > 0 then redis.call('SET', KEYS[1], left) else redis.call('DEL', KEYS[1]) end
return math.max(left, 0)
)lua";

std::string conv_hex(const ConvKey& c) {
  std::string s;
  s.reserve(48);
  append_hex16(s, c.a);
  append_hex16(s, c.b);
  return s;
}

}  // namespace

RedisInbox::RedisInbox(std::shared_ptr<redis::RedisClient> client, RedisInboxOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  push_sha_ = client_->load_script(kPushScript);
  ack_sha_ = client_->load_script(kAckScript);
  list_sha_ = client_->load_script(kListScript);
  clear_overflow_sha_ = client_->load_script(kClearOverflowScript);
}

std::string RedisInbox::key(Id user, std::string_view suffix) const {
  std::string k = options_.prefix + ":{u:" + std::to_string(user) + "}:ib";
  k += suffix;
  return k;
}

Result<void> RedisInbox::push(std::span<const InboxItem> items) {
  for (const InboxItem& item : items) {
    if (!item.msg.conv.is_dm() || item.msg.conv.a >= item.msg.conv.b) {
      return make_error(Errc::invalid_argument, "inbox entries are for DM conversations only");
    }
  }
  if (items.empty()) return {};
  std::map<Id, std::vector<const InboxItem*>> by_user;
  for (const InboxItem& item : items) by_user[item.user_id].push_back(&item);

  std::vector<Command> cmds;
  cmds.reserve(by_user.size());
  const std::string max = std::to_string(std::max<std::uint32_t>(options_.max_entries, 1));
  for (const auto& [user, mine] : by_user) {
    Command c{"EVALSHA",
              push_sha_,
              "5",
              key(user, ""),
              key(user, ":age"),
              key(user, ":msg"),
              key(user, ":ack"),
              key(user, ":over"),
              max,
              kChunk};
    c.reserve(c.size() + mine.size() * 5);
    for (const InboxItem* item : mine) {
      const Message& m = item->msg;
      std::string conv = conv_hex(m.conv);
      std::string seq = hex16(m.seq);
      c.push_back(conv + seq);
      c.push_back(std::move(conv));
      c.push_back(std::move(seq));
      c.push_back(std::to_string(m.created_at));
      c.push_back(redis::encode_message(m));
    }
    cmds.push_back(std::move(c));
  }
  auto replies = client_->pipeline(cmds);
  if (!replies.ok()) return replies.error();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::reply_to_error(r);
    if (r.is_array() && r.elements.size() == 2 && r.elements[1].integer > 0) {
      LOG_DEBUG("inbox bound: dropped " << r.elements[1].integer << " oldest entries");
    }
  }
  return {};
}

Result<std::vector<Message>> RedisInbox::list(Id user_id, const std::optional<InboxCursor>& after,
                                              std::uint32_t limit) {
  std::vector<Message> out;
  const std::uint32_t page = std::min(limit, kMaxInboxPage);
  if (page == 0) return out;
  std::string from = "-";
  if (after) from = "(" + conv_hex(after->conv) + hex16(after->seq);
  auto r = client_->command({"EVALSHA", list_sha_, "2", key(user_id, ""), key(user_id, ":msg"),
                             std::move(from), std::to_string(page)});
  if (!r.ok()) return r.error();
  out.reserve(r->elements.size());
  for (const redis::Reply& e : r->elements) {
    if (!e.is_string()) continue;  // cannot happen: entries and messages change together
    auto m = redis::decode_message(e.str);
    if (!m.ok()) return m.error();
    out.push_back(std::move(*m));
  }
  return out;
}

Result<void> RedisInbox::ack(Id user_id, const ConvKey& conv, std::uint64_t up_to_seq) {
  if (!conv.is_dm()) return {};  // channels have no inbox entries: nothing to remove
  auto r = client_->command({"EVALSHA", ack_sha_, "4", key(user_id, ""), key(user_id, ":age"),
                             key(user_id, ":msg"), key(user_id, ":ack"), conv_hex(conv),
                             hex16(up_to_seq), kChunk});
  if (!r.ok()) return r.error();
  return {};
}

Result<std::uint64_t> RedisInbox::overflowed(Id user_id) {
  auto r = client_->command({"GET", key(user_id, ":over")});
  if (!r.ok()) return r.error();
  if (r->is_nil()) return std::uint64_t{0};
  return static_cast<std::uint64_t>(std::stoull(r->str));
}

Result<void> RedisInbox::clear_overflow(Id user_id, std::uint64_t seen) {
  if (seen == 0) return {};
  auto r = client_->command(
      {"EVALSHA", clear_overflow_sha_, "1", key(user_id, ":over"), std::to_string(seen)});
  if (!r.ok()) return r.error();
  return {};
}

Result<std::uint64_t> RedisInbox::take_overflow(Id user_id) {
  auto r = client_->command({"GETDEL", key(user_id, ":over")});
  if (!r.ok()) return r.error();
  if (r->is_nil()) return std::uint64_t{0};
  return static_cast<std::uint64_t>(std::stoull(r->str));
}

}  // namespace imd
