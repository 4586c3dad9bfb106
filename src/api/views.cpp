#include "api/views.hpp"

#include <charconv>
#include <cstring>

#include <boost/json/parse.hpp>
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

namespace {

// "channel:<id>" / "dm:<peer id>" without a temporary string.
std::string_view conversation_name_into(char (&buf)[48], const ConvKey& conv, Id viewer) {
  std::string_view prefix = conv.is_channel() ? "channel:" : "dm:";
  Id id = conv.is_channel() ? conv.channel_id() : conv.peer_of(viewer);
  std::memcpy(buf, prefix.data(), prefix.size());
  auto [end, ec] = std::to_chars(buf + prefix.size(), buf + sizeof buf, id);
  return {buf, static_cast<std::size_t>(end - buf)};
}

}  // namespace

std::string conversation_name(const ConvKey& conv, Id viewer) {
  char buf[48];
  return std::string(conversation_name_into(buf, conv, viewer));
}

void write_message(json::Writer& w, const Message& m, Id viewer, std::string_view op) {
  char name[48];
  w.begin_object();
  if (!op.empty()) w.key("op").string(op);
  w.key("id").id(m.id);
  w.key("conversation").string(conversation_name_into(name, m.conv, viewer));
  w.key("seq").uint(m.seq);
  w.key("from").id(m.from);
  w.key("type").string(m.type);
  w.key("body").string(m.body);
  w.key("created_at").sint(m.created_at);
  if (m.conv.is_channel()) {
    w.key("channel").id(m.conv.channel_id());
  } else {
    w.key("to").id(m.to);
  }
  // The client id lets the sender's devices match a pending message to its stored copy.
  if (viewer == m.from && !m.cid.empty()) w.key("cid").string(m.cid);
  w.end_object();
}

bj::object message_json(const Message& m, Id viewer) {
  std::string text;
  json::Writer w(text);
  write_message(w, m, viewer);
  return bj::parse(text).as_object();
}

void write_conversation(json::Writer& w, const ConversationState& c, Id viewer) {
  char name[48];
  w.begin_object();
  w.key("conversation").string(conversation_name_into(name, c.conv, viewer));
  w.key("kind").string(c.conv.is_channel() ? "channel" : "dm");
  w.key("name").string(c.name);
  w.key("avatar").string(c.avatar);
  w.key("last_seq").uint(c.last_seq);
  w.key("read_seq").uint(c.read_seq);
  w.key("ack_seq").uint(c.ack_seq);
  w.key("unread").uint(unread_of(c));
  if (c.conv.is_channel()) {
    w.key("channel_id").id(c.conv.channel_id());
    w.key("space_id").id(c.space_id);
  } else {
    w.key("user_id").id(c.conv.peer_of(viewer));
  }
  w.key("last_message");
  if (c.last) {
    write_message(w, *c.last, viewer);
  } else {
    w.raw("null");
  }
  w.end_object();
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
