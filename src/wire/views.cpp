#include "wire/views.hpp"

#include <algorithm>
#include <memory>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/json.hpp"
#include "domain/attachments.hpp"

namespace imd::wire {

namespace bj = boost::json;
using json::id_str;

bj::object user_json(const User& u, bool with_phone) {
  bj::object o{
      {"id", id_str(u.id)}, {"name", u.name}, {"avatar", u.avatar}, {"created_at", u.created_at}};
  if (with_phone) o["phone"] = u.phone;
  return o;
}

bj::object space_json(const Space& s) {
  return {{"id", id_str(s.id)},         {"name", s.name},
          {"avatar", s.avatar},         {"owner_id", id_str(s.owner_id)},
          {"created_at", s.created_at}, {"discoverable", s.discoverable}};
}

bj::object channel_json(const Channel& c) {
  return {{"id", id_str(c.id)},
          {"space_id", id_str(c.space_id)},
          {"name", c.name},
          {"avatar", c.avatar},
          {"owner_id", id_str(c.owner_id)},
          {"created_at", c.created_at},
          {"last_seq", c.last_seq},
          {"private", c.is_private},
          {"archived", c.archived},
          {"history_from_join", c.history_from_join}};
}

std::string_view role_name(SpaceRole r) {
  switch (r) {
    case SpaceRole::owner:
      return "owner";
    case SpaceRole::admin:
      return "admin";
    case SpaceRole::member:
      break;
  }
  return "member";
}

bj::object presence_json(const PresenceList& list) {
  bj::object o;
  o.reserve(list.size());
  for (const auto& [user, status] : list) o[json::id_str(user)] = presence_name(status);
  return o;
}

bj::object member_json(const Member& m) {
  bj::object o{{"user_id", id_str(m.user_id)},
               {"name", m.name},
               {"avatar", m.avatar},
               {"joined_at", m.joined_at}};
  if (m.role) o["role"] = role_name(*m.role);
  return o;
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

// "channel:<id>" / "dm:<peer id>" written at p (at most 8 + 20 bytes).
char* put_conversation_name(char* p, const ConvKey& conv, Id viewer) {
  if (conv.is_channel()) return json::put::uint(json::put::text(p, "channel:"), conv.channel_id());
  return json::put::uint(json::put::text(p, "dm:"), conv.peer_of(viewer));
}

}  // namespace

std::string conversation_name(const ConvKey& conv, Id viewer) {
  char buf[32];
  return std::string(buf, put_conversation_name(buf, conv, viewer));
}

// The whole object is composed in one buffer and appended once: messages are the values
// written most often (history pages, pushed frames), and member-by-member appends cost several
// times the copying itself.
namespace {

// A file message's body split into its metadata line (a JSON object) and its caption
// (domain/attachments.hpp); nullopt for any other body, a legacy one included.
std::optional<std::pair<std::string_view, std::string_view>> file_parts(const Message& m) {
  if (!is_file_type(m.type) || m.body.empty() || m.body[0] != '{') return std::nullopt;
  const std::string_view body(m.body);
  const auto nl = body.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  const std::string_view meta = body.substr(0, nl);
  boost::system::error_code ec;
  const bj::value v = bj::parse(meta, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::pair{meta, body.substr(nl + 1)};
}

}  // namespace

void write_message(json::Writer& w, const Message& m, Id viewer, std::string_view op) {
  namespace put = json::put;
  // The client id lets the sender's devices match a pending message to its stored copy.
  const bool with_cid = viewer == m.from && !m.cid.empty();
  // Member names and punctuation (< 220 bytes), the conversation name, 4 ids, 4 numbers.
  constexpr std::size_t kFixed =
      220 + 32 + 4 * put::kIdBound + 2 * put::kUintBound + 2 * put::kSintBound;
  std::size_t reactions_bound = 16;
  for (const Reaction& r : m.reactions) {
    reactions_bound += 48 + put::string_bound(r.emoji.size()) + put::kUintBound +
                       r.users.size() * (put::kIdBound + 1);
  }
  // A file message's metadata line is copied as it is, beside the escaped caption.
  const std::size_t file_bound = is_file_type(m.type) ? m.body.size() + 16 : 0;
  const std::size_t bound = kFixed + reactions_bound + file_bound +
                            (op.empty() ? 0 : 8 + put::string_bound(op.size())) +
                            put::string_bound(m.type.size()) + put::string_bound(m.body.size()) +
                            (with_cid ? put::string_bound(m.cid.size()) : 0);
  char local[1024];
  std::unique_ptr<char[]> heap;
  char* const begin =
      bound <= sizeof local ? local : (heap = std::make_unique_for_overwrite<char[]>(bound)).get();
  char* p = put::text(begin, "{");
  if (!op.empty()) p = put::text(put::string(put::text(p, "\"op\":"), op), ",");
  p = put::id(put::text(p, "\"id\":"), m.id);
  char* const name = put::text(p, ",\"conversation\":\"");
  p = put_conversation_name(name, m.conv, viewer);
  // A channel's id is the name's digits ("channel:<id>"): converted once, copied for "channel".
  const std::string_view name_id(std::find(name, p, ':') + 1, p);
  p = put::text(p, "\"");
  p = put::uint(put::text(p, ",\"seq\":"), m.seq);
  p = put::id(put::text(p, ",\"from\":"), m.from);
  p = put::string(put::text(p, ",\"type\":"), m.type);
  // A deleted message is a tombstone: its seq stays, its body is gone.
  if (m.deleted) {
    p = put::text(p, ",\"deleted\":true");
  } else if (auto file = file_parts(m)) {
    p = put::string(put::text(p, ",\"body\":"), file->second);
    p = put::text(put::text(p, ",\"file\":"), file->first);
  } else {
    p = put::string(put::text(p, ",\"body\":"), m.body);
  }
  p = put::sint(put::text(p, ",\"created_at\":"), m.created_at);
  if (m.edited_at != 0 && !m.deleted) p = put::sint(put::text(p, ",\"edited_at\":"), m.edited_at);
  if (m.reply_to != 0) p = put::id(put::text(p, ",\"reply_to\":"), m.reply_to);
  if (m.rev != 0) p = put::uint(put::text(p, ",\"rev\":"), m.rev);
  if (!m.reactions.empty()) {
    p = put::text(p, ",\"reactions\":[");
    for (std::size_t i = 0; i < m.reactions.size(); ++i) {
      const Reaction& r = m.reactions[i];
      if (i != 0) p = put::text(p, ",");
      p = put::string(put::text(p, "{\"emoji\":"), r.emoji);
      p = put::uint(put::text(p, ",\"count\":"), r.users.size());
      p = put::text(p, ",\"users\":[");
      for (std::size_t k = 0; k < r.users.size(); ++k) {
        if (k != 0) p = put::text(p, ",");
        p = put::id(p, r.users[k]);
      }
      p = put::text(p, "]}");
    }
    p = put::text(p, "]");
  }
  if (m.conv.is_channel()) {
    p = put::text(put::text(put::text(p, ",\"channel\":\""), name_id), "\"");
  } else {
    p = put::id(put::text(p, ",\"to\":"), m.to);
  }
  if (with_cid) p = put::string(put::text(p, ",\"cid\":"), m.cid);
  p = put::text(p, "}");
  w.raw({begin, static_cast<std::size_t>(p - begin)});
}

bj::object message_json(const Message& m, Id viewer) {
  std::string text;
  json::Writer w(text);
  write_message(w, m, viewer);
  return bj::parse(text).as_object();
}

void write_conversation(json::Writer& w, const ConversationState& c, Id viewer) {
  char name[32];
  w.begin_object();
  w.key("conversation").string({name, put_conversation_name(name, c.conv, viewer)});
  w.key("kind").string(c.conv.is_channel() ? "channel" : "dm");
  w.key("name").string(c.name);
  w.key("avatar").string(c.avatar);
  w.key("last_seq").uint(c.last_seq);
  w.key("read_seq").uint(c.read_seq);
  w.key("ack_seq").uint(c.ack_seq);
  w.key("last_rev").uint(c.last_rev);
  w.key("unread").uint(unread_of(c));
  w.key("mentions").uint(c.mentions);
  if (c.conv.is_channel()) {
    w.key("channel_id").id(c.conv.channel_id());
    w.key("space_id").id(c.space_id);
  } else {
    w.key("user_id").id(c.conv.peer_of(viewer));
    w.key("peer_read_seq").uint(c.peer_read_seq);
  }
  w.key("last_message");
  if (c.last) {
    write_message(w, *c.last, viewer);
  } else {
    w.raw("null");
  }
  w.end_object();
}

}  // namespace imd::wire
