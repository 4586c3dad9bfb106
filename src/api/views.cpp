#include "api/views.hpp"

#include <boost/json/serialize.hpp>

#include "common/json.hpp"

namespace imd::api {

namespace bj = boost::json;
using json::id_str;

bj::object user_json(const User& u, bool with_phone) {
  bj::object o{
      {"id", id_str(u.id)}, {"name", u.name}, {"avatar", u.avatar}, {"created_at", u.created_at}};
  if (with_phone) o["phone"] = u.phone;
  return o;
}

bj::object space_json(const Space& s) {
  return {{"id", id_str(s.id)},
          {"name", s.name},
          {"avatar", s.avatar},
          {"owner_id", id_str(s.owner_id)},
          {"created_at", s.created_at}};
}

bj::object channel_json(const Channel& c) {
  return {{"id", id_str(c.id)},    {"space_id", id_str(c.space_id)}, {"name", c.name},
          {"avatar", c.avatar},    {"owner_id", id_str(c.owner_id)}, {"created_at", c.created_at},
          {"last_seq", c.last_seq}};
}

bj::object member_json(const Member& m) {
  return {{"user_id", id_str(m.user_id)},
          {"name", m.name},
          {"avatar", m.avatar},
          {"joined_at", m.joined_at}};
}

std::string conversation_name(const ConvKey& conv, Id viewer) {
  if (conv.is_channel()) return "channel:" + id_str(conv.channel_id());
  return "dm:" + id_str(conv.peer_of(viewer));
}

Result<ConvKey> parse_conversation(std::string_view name, Id viewer) {
  auto bad = [] {
    return make_error(Errc::invalid_argument,
                      "conversation must be \"channel:<id>\" or \"dm:<user id>\"");
  };
  auto colon = name.find(':');
  if (colon == std::string_view::npos) return bad();
  auto id = json::parse_uint(name.substr(colon + 1));
  if (!id || *id == 0) return bad();
  auto kind = name.substr(0, colon);
  if (kind == "channel") return ConvKey::channel(*id);
  if (kind == "dm") {
    if (*id == viewer) return bad();
    return ConvKey::dm(viewer, *id);
  }
  return bad();
}

bj::object message_json(const Message& m, Id viewer) {
  bj::object o{{"id", id_str(m.id)},
               {"conversation", conversation_name(m.conv, viewer)},
               {"seq", m.seq},
               {"from", id_str(m.from)},
               {"type", m.type},
               {"body", m.body},
               {"created_at", m.created_at}};
  if (m.conv.is_channel()) {
    o["channel"] = id_str(m.conv.channel_id());
  } else {
    o["to"] = id_str(m.to);
  }
  // The client id lets the sender's devices match a pending message to its stored copy.
  if (viewer == m.from && !m.cid.empty()) o["cid"] = m.cid;
  return o;
}

bj::object conversation_json(const ConversationState& c, Id viewer) {
  bj::object o{{"conversation", conversation_name(c.conv, viewer)},
               {"kind", c.conv.is_channel() ? "channel" : "dm"},
               {"name", c.name},
               {"avatar", c.avatar},
               {"last_seq", c.last_seq},
               {"read_seq", c.read_seq},
               {"ack_seq", c.ack_seq},
               {"unread", unread_of(c)}};
  if (c.conv.is_channel()) {
    o["channel_id"] = id_str(c.conv.channel_id());
    o["space_id"] = id_str(c.space_id);
  } else {
    o["user_id"] = id_str(c.conv.peer_of(viewer));
  }
  o["last_message"] = c.last ? bj::value(message_json(*c.last, viewer)) : bj::value(nullptr);
  return o;
}

int http_status(Errc e) {
  switch (e) {
    case Errc::invalid_argument:
      return 400;
    case Errc::unauthenticated:
      return 401;
    case Errc::forbidden:
      return 403;
    case Errc::not_found:
      return 404;
    case Errc::conflict:
      return 409;
    case Errc::payload_too_large:
      return 413;
    case Errc::too_many_requests:
      return 429;
    case Errc::unavailable:
      return 503;
    case Errc::internal:
      return 500;
  }
  return 500;
}

std::string error_body(const Error& e) {
  bj::object err{{"code", errc_name(e.code)}, {"message", e.message}};
  return bj::serialize(bj::object{{"error", std::move(err)}});
}

}  // namespace imd::api
