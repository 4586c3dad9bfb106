// Pusher port: hands events to connections, wherever they live (in-process gateway in
// standalone mode, a gateway's gRPC Push service in a cluster).
//
// Contract: thread-safe, never blocks; an event to a connection that is gone is dropped
// (the client resyncs on reconnect). Events of one caller reach a connection in call order.
#pragma once

#include <memory>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"
#include "domain/ports/presence.hpp"

namespace imd {

// A new message, or (`changed`) a change of a stored one: msg is then the message as it is
// after the change, msg.change names it and msg.rev is its number in the conversation.
struct MessageEvent {
  Message msg;
  bool changed = false;
};
// The ACK of a send, to the connection that sent it.
struct SentEvent {
  std::string cid;
  Id id = 0;
  std::uint64_t seq = 0;
  ConvKey conv;
  Id sender = 0;
  Millis created_at = 0;
};
// A send (or a change: `change` not none, `id` the message) that was accepted by the gateway
// but could not be stored.
struct SendFailedEvent {
  std::string cid;
  Error error;
  Change change = Change::none;
  Id id = 0;
};
// A user's read cursor moved (to their other connections).
struct ReadEvent {
  Id user_id = 0;
  ConvKey conv;
  std::uint64_t seq = 0;
};

// A user is typing in a conversation (to the other members' connections; never stored).
struct TypingEvent {
  Id user_id = 0;
  ConvKey conv;
};

// The user was removed or banned from a space (to their connections): its channels are gone
// for them; `reason` is "removed" or "banned". With a channel_id, only that channel of the space
// is gone for them: they were removed from it ("removed") or it was deleted ("deleted").
struct RemovedEvent {
  Id space_id = 0;
  std::string reason;
  Id channel_id = 0;
};

// A user's presence changed (to the connections that watch them; never stored).
struct PresenceEvent {
  Id user_id = 0;
  PresenceStatus status = PresenceStatus::offline;
};

using Event = std::variant<MessageEvent, SentEvent, SendFailedEvent, ReadEvent, TypingEvent,
                           RemovedEvent, PresenceEvent>;

struct Push {
  std::vector<ConnRef> targets;
  std::shared_ptr<const Event> event;
  // User-addressed (the routes could not be read, docs/architecture.md §10): every connection
  // of these users, wherever they are, but `except`; `targets` is then empty. The Hub resolves
  // them against its own connections; RemotePusher sends them to every gateway that declared
  // it can (docs/operations.md, "Versions and rolling upgrades").
  std::vector<Id> users{};  // the initializers keep two-member aggregate inits warning-free
  ConnRef except{};
};

class Pusher {
 public:
  virtual ~Pusher() = default;
  virtual void push(std::vector<Push> pushes) = 0;
};

}  // namespace imd
