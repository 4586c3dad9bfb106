#include "net/ws_frame.hpp"

#include <cstring>

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace imd::net::ws {

namespace {

// XORs the 4-byte mask over the payload, 8 bytes at a time.
void unmask(char* p, std::size_t n, const unsigned char key[4]) {
  std::uint64_t k8;
  unsigned char k[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::memcpy(&k8, k, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    w ^= k8;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

ParseResult fail(CloseCode code, const char* reason) {
  ParseResult r;
  r.status = ParseStatus::error;
  r.error = code;
  r.reason = reason;
  return r;
}

}  // namespace

ParseResult parse_frame(char* data, std::size_t n, std::size_t max_payload) {
  ParseResult r;
  if (n < 2) return r;
  const auto* u = reinterpret_cast<const unsigned char*>(data);
  const bool fin = (u[0] & 0x80) != 0;
  if ((u[0] & 0x70) != 0) return fail(CloseCode::protocol_error, "reserved bits set");
  const auto op = static_cast<Opcode>(u[0] & 0x0F);
  switch (op) {
    case Opcode::continuation:
    case Opcode::text:
    case Opcode::binary:
    case Opcode::close:
    case Opcode::ping:
    case Opcode::pong:
      break;
    default:
      return fail(CloseCode::protocol_error, "unknown opcode");
  }
  if ((u[1] & 0x80) == 0) return fail(CloseCode::protocol_error, "client frames must be masked");
  std::uint64_t len = u[1] & 0x7F;
  std::size_t pos = 2;
  if (is_control(op)) {
    if (!fin) return fail(CloseCode::protocol_error, "fragmented control frame");
    if (len > 125) return fail(CloseCode::protocol_error, "control frame over 125 bytes");
  }
  if (len == 126) {
    if (n < 4) return r;
    len = (std::uint64_t{u[2]} << 8) | u[3];
    if (len < 126) return fail(CloseCode::protocol_error, "non-minimal length");
    pos = 4;
  } else if (len == 127) {
    if (n < 10) return r;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | u[2 + i];
    if (len >> 63) return fail(CloseCode::protocol_error, "length over 2^63");
    if (len <= 0xFFFF) return fail(CloseCode::protocol_error, "non-minimal length");
    pos = 10;
  }
  if (!is_control(op) && len > max_payload) return fail(CloseCode::too_big, "frame too big");
  if (n < pos + 4) return r;
  unsigned char key[4];
  std::memcpy(key, data + pos, 4);
  pos += 4;
  if (n - pos < len) return r;
  unmask(data + pos, static_cast<std::size_t>(len), key);
  r.status = ParseStatus::frame;
  r.frame.opcode = op;
  r.frame.fin = fin;
  r.frame.payload = std::string_view(data + pos, static_cast<std::size_t>(len));
  r.frame.size = pos + static_cast<std::size_t>(len);
  return r;
}

std::size_t encode_header(Opcode op, std::size_t payload, char* out) {
  auto* u = reinterpret_cast<unsigned char*>(out);
  u[0] = static_cast<unsigned char>(0x80 | static_cast<std::uint8_t>(op));
  if (payload < 126) {
    u[1] = static_cast<unsigned char>(payload);
    return 2;
  }
  if (payload <= 0xFFFF) {
    u[1] = 126;
    u[2] = static_cast<unsigned char>(payload >> 8);
    u[3] = static_cast<unsigned char>(payload);
    return 4;
  }
  u[1] = 127;
  auto len = static_cast<std::uint64_t>(payload);
  for (int i = 7; i >= 0; --i) {
    u[2 + i] = static_cast<unsigned char>(len);
    len >>= 8;
  }
  return 10;
}

std::string encode_frame(Opcode op, std::string_view payload) {
  char head[10];
  std::size_t h = encode_header(op, payload.size(), head);
  std::string out(head, h);
  out.append(payload);
  return out;
}

std::string close_payload(CloseCode code, std::string_view reason) {
  auto c = static_cast<std::uint16_t>(code);
  std::string out;
  out.push_back(static_cast<char>(c >> 8));
  out.push_back(static_cast<char>(c & 0xFF));
  out.append(reason.substr(0, 123));
  return out;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string in(client_key);
  in.append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

bool valid_client_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII runs, 8 bytes at a time.
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ULL) break;
      p += 8;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;  // a continuation byte, an overlong lead (C0, C1) or beyond F4
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

}  // namespace imd::net::ws
