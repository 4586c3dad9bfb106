// The server side of the WebSocket wire format (RFC 6455) that imd needs after the HTTP
// upgrade: parsing the client's masked frames in place, and encoding frame headers for the
// server's unmasked, unfragmented frames. No I/O and no allocation here: the session owns the
// bytes (src/net/server.cpp).
//
// Why not Beast's websocket::stream: it keeps ~2.4 KiB of state per connection and answers
// pings by itself, which rules out writing several queued frames in one syscall beside it.
// What Beast still does for us: the HTTP upgrade request and response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imd::net::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes (RFC 6455 §7.4.1) imd sends.
enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  invalid_payload = 1007,  // a text message that is not UTF-8
  policy_error = 1008,
  too_big = 1009,
  try_again_later = 1013,
  // Ours (4000-4999 are for applications; docs/protocol.md "Closing"):
  token_expired = 4001,  // the access token ended and was not renewed with `auth`: refresh it
  session_ended = 4003,  // the user's sessions were ended (password change, logout everywhere)
};

inline bool is_control(Opcode op) {
  return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

// One parsed frame. `payload` points into the buffer given to parse_frame(), already unmasked.
struct FrameView {
  Opcode opcode = Opcode::text;
  bool fin = true;
  std::string_view payload;
  std::size_t size = 0;  // header + payload bytes consumed from the buffer
};

enum class ParseStatus {
  frame,      // `frame` is set; consume frame.size bytes
  need_more,  // the buffer holds part of a frame; read more
  error,      // protocol violation: close with `error`
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  FrameView frame;
  CloseCode error = CloseCode::protocol_error;
  const char* reason = "";
};

// Parses the first frame in data[0, n) (client to server: masked; no extensions, so RSV bits
// must be clear; control frames unfragmented and <= 125 bytes; a data frame's payload at most
// `max_payload`) and unmasks its payload in place.
ParseResult parse_frame(char* data, std::size_t n, std::size_t max_payload);

// Writes the header of an unmasked final frame with `payload` bytes into out (at most 10
// bytes); returns its length.
std::size_t encode_header(Opcode op, std::size_t payload, char* out);

// A whole unmasked frame (header + payload): control frames and tests.
std::string encode_frame(Opcode op, std::string_view payload);

// The payload of a close frame: the code, then up to 123 bytes of reason.
std::string close_payload(CloseCode code, std::string_view reason);

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (base64(SHA-1(key + GUID))).
std::string accept_key(std::string_view client_key);

// A Sec-WebSocket-Key must be the base64 of 16 bytes (24 characters).
bool valid_client_key(std::string_view key);

// Whether `s` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace imd::net::ws
