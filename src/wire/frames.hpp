// Server -> client WebSocket frames (JSON text), documented in docs/protocol.md.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "domain/ports/pusher.hpp"

namespace imd::wire {

using Frame = std::shared_ptr<const std::string>;

// `token_expires_at`: when the access token ends (Unix ms): renew it with `auth` before.
Frame hello_frame(std::uint64_t session, Id user, std::int64_t heartbeat_s,
                  std::int64_t token_expires_at);
Frame pong_frame(const std::string* echo);
// The answer to `auth`: the new token's end (Unix ms).
Frame auth_frame(std::int64_t expires_at);
Frame synced_frame(std::uint64_t messages);
Frame msg_frame(const Message& m, Id viewer);
Frame error_frame(const Error& e, std::string_view op, const std::string* cid);
// Frames of non-message events (sent, send failure, read) for `viewer`.
Frame event_frame(const Event& e, Id viewer);

}  // namespace imd::wire
