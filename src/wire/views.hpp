// JSON views of domain values, shared by REST and WebSocket. Ids are strings.
// Conversations are named from the viewer's side: "channel:<id>" or "dm:<peer user id>".
#pragma once

#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "common/error.hpp"
#include "common/json_writer.hpp"
#include "domain/messaging_service.hpp"
#include "domain/model.hpp"
#include "domain/presence_service.hpp"

namespace imd::wire {

boost::json::object user_json(const User& u, bool with_phone);
boost::json::object space_json(const Space& s);
boost::json::object channel_json(const Channel& c);
boost::json::object member_json(const Member& m);
// {"<user id>": "online" | "away" | "offline", ...}: presence_sub's answer and GET /presence.
boost::json::object presence_json(const PresenceList& list);
// "owner", "admin" or "member".
std::string_view role_name(SpaceRole r);
// A message as `viewer` sees it. write_message writes the same object straight into JSON
// text (the hot path: pushed frames, history pages); `op`, when given, comes first.
void write_message(json::Writer& w, const Message& m, Id viewer, std::string_view op = {});
// The same object as a DOM (for callers that inspect it, e.g. tests).
boost::json::object message_json(const Message& m, Id viewer);
// A conversation of `viewer`'s list, with its last message.
void write_conversation(json::Writer& w, const ConversationState& c, Id viewer);

std::string conversation_name(const ConvKey& conv, Id viewer);
Result<ConvKey> parse_conversation(std::string_view name, Id viewer);

}  // namespace imd::wire
