// Server -> client WebSocket frames (JSON text), documented in docs/protocol.md.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/presence_service.hpp"

namespace imd::wire {

using Frame = std::shared_ptr<const std::string>;

// `token_expires_at`: when the access token ends (Unix ms): renew it with `auth` before.
Frame hello_frame(std::uint64_t session, Id user, std::int64_t heartbeat_s,
                  std::int64_t token_expires_at);
Frame pong_frame(const std::string* echo);
// The answer to `auth`: the new token's end (Unix ms).
Frame auth_frame(std::int64_t expires_at);
Frame synced_frame(std::uint64_t messages, std::uint64_t changes = 0);
// A message ("msg": new, or backfilled as it is now).
Frame msg_frame(const Message& m, Id viewer);
// A change of a stored message: the message as it is now, with the op of its last change
// ("edited", "deleted", "reaction").
Frame change_frame(const Message& m, Id viewer);
// The op a client uses for a change ("edit", "delete", "react"; "send" for none).
std::string_view change_op(Change c);
// `id`: the message a failed change named (0: none).
Frame error_frame(const Error& e, std::string_view op, const std::string* cid, Id id = 0);
// The answer to `presence_sub`: the status of each user now watched.
Frame presence_sub_frame(const PresenceList& list);
// How long a client shows a `typing` frame unless another one comes (docs/protocol.md).
inline constexpr std::int64_t kTypingExpiresMs = 6000;
// Frames of non-message events (sent, send failure, read, typing) for `viewer`.
Frame event_frame(const Event& e, Id viewer);

}  // namespace imd::wire
