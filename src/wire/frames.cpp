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

Frame synced_frame(std::uint64_t messages) {
  return make({{"op", "synced"}, {"messages", messages}});
}

Frame msg_frame(const Message& m, Id viewer) {
  auto text = std::make_shared<std::string>();
  text->reserve(m.body.size() + 200);
  json::Writer w(*text);
  wire::write_message(w, m, viewer, "msg");
  return text;
}

Frame error_frame(const Error& e, std::string_view op, const std::string* cid) {
  bj::object o{{"op", "error"}, {"code", errc_name(e.code)}, {"message", public_message(e)}};
  if (!op.empty()) o["ref"] = op;
  if (cid) o["cid"] = *cid;
  return make(o);
}

Frame event_frame(const Event& e, Id viewer) {
  struct Visitor {
    Id viewer;
    Frame operator()(const MessageEvent& ev) const { return msg_frame(ev.msg, viewer); }
    Frame operator()(const SentEvent& ev) const {
      return make({{"op", "sent"},
                   {"cid", ev.cid},
                   {"id", json::id_str(ev.id)},
                   {"seq", ev.seq},
                   {"conversation", wire::conversation_name(ev.conv, viewer)},
                   {"created_at", ev.created_at}});
    }
    Frame operator()(const SendFailedEvent& ev) const {
      return error_frame(ev.error, "send", &ev.cid);
    }
    Frame operator()(const ReadEvent& ev) const {
      return make({{"op", "read"},
                   {"conversation", wire::conversation_name(ev.conv, viewer)},
                   {"seq", ev.seq}});
    }
  };
  return std::visit(Visitor{viewer}, e);
}

}  // namespace imd::wire
