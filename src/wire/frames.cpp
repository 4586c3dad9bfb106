#include "wire/frames.hpp"

#include <boost/json/serialize.hpp>

#include "common/json.hpp"
#include "wire/http.hpp"
#include "wire/views.hpp"

namespace imd::wire {

namespace bj = boost::json;

namespace {
Frame make(const bj::object& o) {
  return std::make_shared<const std::string>(bj::serialize(o));
}
}  // namespace

Frame hello_frame(std::uint64_t session, Id user, std::int64_t heartbeat_s,
                  std::int64_t token_expires_at) {
  return make({{"op", "hello"},
               {"session", json::id_str(session)},
               {"user", json::id_str(user)},
               {"heartbeat_s", heartbeat_s},
               {"token_expires_at", token_expires_at}});
}

Frame auth_frame(std::int64_t expires_at) {
  return make({{"op", "auth"}, {"expires_at", expires_at}});
}

Frame pong_frame(const std::string* echo) {
  bj::object o{{"op", "pong"}};
  if (echo) o["t"] = *echo;
  return make(o);
}

Frame synced_frame(std::uint64_t messages, std::uint64_t changes) {
  return make({{"op", "synced"}, {"messages", messages}, {"changes", changes}});
}

namespace {

std::string_view frame_op(Change c) {
  switch (c) {
    case Change::none:
      return "msg";
    case Change::edit:
      return "edited";
    case Change::erase:
      return "deleted";
    case Change::react:
      return "reaction";
  }
  return "msg";
}

}  // namespace

std::string_view change_op(Change c) {
  switch (c) {
    case Change::none:
      return "send";
    case Change::edit:
      return "edit";
    case Change::erase:
      return "delete";
    case Change::react:
      return "react";
  }
  return "send";
}

namespace {

Frame message_with_op(const Message& m, Id viewer, std::string_view op) {
  auto text = std::make_shared<std::string>();
  text->reserve(m.body.size() + 240);
  json::Writer w(*text);
  wire::write_message(w, m, viewer, op);
  return text;
}

}  // namespace

Frame msg_frame(const Message& m, Id viewer) {
  return message_with_op(m, viewer, "msg");
}

Frame change_frame(const Message& m, Id viewer) {
  return message_with_op(m, viewer, frame_op(m.change));
}

Frame error_frame(const Error& e, std::string_view op, const std::string* cid, Id id) {
  bj::object o{{"op", "error"}, {"code", errc_name(e.code)}, {"message", public_message(e)}};
  if (!op.empty()) o["ref"] = op;
  if (cid) o["cid"] = *cid;
  if (id != 0) o["id"] = json::id_str(id);
  return make(o);
}

Frame presence_sub_frame(const PresenceList& list) {
  return make({{"op", "presence_sub"}, {"presence", presence_json(list)}});
}

Frame event_frame(const Event& e, Id viewer) {
  struct Visitor {
    Id viewer;
    Frame operator()(const MessageEvent& ev) const {
      return ev.changed ? change_frame(ev.msg, viewer) : msg_frame(ev.msg, viewer);
    }
    Frame operator()(const SentEvent& ev) const {
      return make({{"op", "sent"},
                   {"cid", ev.cid},
                   {"id", json::id_str(ev.id)},
                   {"seq", ev.seq},
                   {"conversation", wire::conversation_name(ev.conv, viewer)},
                   {"created_at", ev.created_at}});
    }
    Frame operator()(const SendFailedEvent& ev) const {
      return error_frame(ev.error, change_op(ev.change), ev.cid.empty() ? nullptr : &ev.cid, ev.id);
    }
    Frame operator()(const RemovedEvent& ev) const {
      if (ev.channel_id != 0) {
        return make({{"op", "removed"},
                     {"space", json::id_str(ev.space_id)},
                     {"conversation", wire::conversation_name(ConvKey::channel(ev.channel_id), 0)},
                     {"reason", ev.reason}});
      }
      return make({{"op", "removed"}, {"space", json::id_str(ev.space_id)}, {"reason", ev.reason}});
    }
    Frame operator()(const TypingEvent& ev) const {
      return make({{"op", "typing"},
                   {"conversation", wire::conversation_name(ev.conv, viewer)},
                   {"user", json::id_str(ev.user_id)},
                   {"expires_ms", kTypingExpiresMs}});
    }
    Frame operator()(const PresenceEvent& ev) const {
      return make({{"op", "presence"},
                   {"user", json::id_str(ev.user_id)},
                   {"status", presence_name(ev.status)}});
    }
    Frame operator()(const ReadEvent& ev) const {
      // A DM's peer sees a read receipt; the reader's other devices their marker.
      if (ev.user_id != viewer) {
        return make({{"op", "seen"},
                     {"conversation", wire::conversation_name(ev.conv, viewer)},
                     {"user", json::id_str(ev.user_id)},
                     {"seq", ev.seq}});
      }
      return make({{"op", "read"},
                   {"conversation", wire::conversation_name(ev.conv, viewer)},
                   {"seq", ev.seq}});
    }
  };
  return std::visit(Visitor{viewer}, e);
}

}  // namespace imd::wire
