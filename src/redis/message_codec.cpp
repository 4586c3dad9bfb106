#include "redis/message_codec.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace imd::redis {

namespace {

constexpr std::int64_t kVersion = 1;

// A uint64 field; JSON integers that fit int64 parse as int64, larger ones as uint64.
bool get_u64(const boost::json::object& o, std::string_view key, std::uint64_t& out) {
  auto* v = o.if_contains(key);
  if (v == nullptr) return false;
  if (v->is_uint64()) {
    out = v->get_uint64();
    return true;
  }
  if (v->is_int64() && v->get_int64() >= 0) {
    out = static_cast<std::uint64_t>(v->get_int64());
    return true;
  }
  return false;
}

bool get_str(const boost::json::object& o, std::string_view key, std::string& out) {
  auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return false;
  out.assign(v->get_string().data(), v->get_string().size());
  return true;
}

}  // namespace

std::string encode_message(const Message& m) {
  boost::json::object o;
  o["v"] = kVersion;
  o["id"] = m.id;
  o["k"] = static_cast<std::uint64_t>(m.conv.kind);
  o["a"] = m.conv.a;
  o["b"] = m.conv.b;
  o["seq"] = m.seq;
  o["from"] = m.from;
  o["to"] = m.to;
  o["type"] = m.type;
  o["body"] = m.body;
  o["at"] = m.created_at;
  o["cid"] = m.cid;
  // Optional (absent: 0), so entries written before they existed still decode.
  if (m.reply_to != 0) o["re"] = m.reply_to;
  if (m.rev != 0) {
    o["rev"] = m.rev;
    o["ch"] = static_cast<std::uint64_t>(m.change);
    o["ed"] = m.edited_at;
    o["del"] = m.deleted;
  }
  return boost::json::serialize(o);
}

Result<Message> decode_message(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return make_error(Errc::internal, "redis: corrupt stored message");
  const auto& o = v.get_object();
  Message m;
  std::uint64_t version = 0, kind = 0;
  auto* at_v = o.if_contains("at");
  bool ok = get_u64(o, "v", version) && version == kVersion && get_u64(o, "id", m.id) &&
            get_u64(o, "k", kind) && (kind == 1 || kind == 2) && get_u64(o, "a", m.conv.a) &&
            get_u64(o, "b", m.conv.b) && get_u64(o, "seq", m.seq) && get_u64(o, "from", m.from) &&
            get_u64(o, "to", m.to) && get_str(o, "type", m.type) && get_str(o, "body", m.body) &&
            get_str(o, "cid", m.cid) && at_v != nullptr && at_v->is_int64();
  if (!ok) return make_error(Errc::internal, "redis: corrupt stored message");
  m.conv.kind = static_cast<ConvKind>(kind);
  m.created_at = at_v->get_int64();
  (void)get_u64(o, "re", m.reply_to);
  if (get_u64(o, "rev", m.rev)) {
    std::uint64_t change = 0;
    if (!get_u64(o, "ch", change) || change > static_cast<std::uint64_t>(Change::react)) {
      return make_error(Errc::internal, "redis: corrupt stored message");
    }
    m.change = static_cast<Change>(change);
    if (auto* ed = o.if_contains("ed"); ed != nullptr && ed->is_int64())
      m.edited_at = ed->get_int64();
    if (auto* del = o.if_contains("del"); del != nullptr && del->is_bool())
      m.deleted = del->get_bool();
  }
  return m;
}

}  // namespace imd::redis
