#include "ws_client.hpp"

#include <netinet/in.h>

#include <cstring>

#include <boost/asio/write.hpp>

#include "clock.hpp"

namespace imbench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kInitialBuffer = 2048;        // idle connections stay small
constexpr std::size_t kMaxGrowBuffer = 256 * 1024;  // busy ones read big chunks

std::string base64(const unsigned char* p, std::size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(p[i]) << 16;
    if (i + 1 < n) v |= static_cast<std::uint32_t>(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < n ? k[(v >> 6) & 63] : '=';
    out += i + 2 < n ? k[v & 63] : '=';
  }
  return out;
}

std::uint32_t xorshift(std::uint32_t& s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

}  // namespace

WsClient::WsClient(asio::io_context& io, Handler& handler, std::size_t id)
    : sock_(io),
      handler_(handler),
      id_(id),
      mask_state_(static_cast<std::uint32_t>(id * 2654435761u) | 1u) {}

void WsClient::connect(const tcp::endpoint& server, const asio::ip::address* source,
                       const std::string& host_header, const std::string& token,
                       std::string_view extra_query) {
  state_ = State::connecting;
  boost::system::error_code ec;
  sock_.open(server.protocol(), ec);
  if (ec) return fail("open: " + ec.message());
  if (source) {
    // Pick the port at connect time (4-tuple unique) instead of at bind time.
    int one = 1;
    ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sock_.bind(tcp::endpoint(*source, 0), ec);
    if (ec) return fail("bind: " + ec.message());
  }
  unsigned char key[16];
  for (auto& b : key) b = static_cast<unsigned char>(xorshift(mask_state_));
  std::string req = "GET /ws?token=" + token + std::string(extra_query) +
                    " HTTP/1.1\r\nHost: " + host_header +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                    base64(key, sizeof key) + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  sock_.async_connect(server, [this, req = std::move(req)](const boost::system::error_code& ec) {
    if (state_ == State::closed) return;
    if (ec) return fail("connect: " + ec.message());
    sock_.set_option(tcp::no_delay(true));
    state_ = State::handshaking;
    wpending_ = req;
    flush();
    read_more();
  });
}

void WsClient::read_more() {
  if (!rbuf_) {
    rcap_ = kInitialBuffer;
    rbuf_.reset(new char[rcap_]);
  } else if (rlen_ == rcap_) {
    // Full with one partial message or a busy socket: grow.
    std::size_t cap = rcap_ * 2;
    std::unique_ptr<char[]> b(new char[cap]);
    std::memcpy(b.get(), rbuf_.get(), rlen_);
    rbuf_ = std::move(b);
    rcap_ = cap;
  }
  sock_.async_read_some(asio::buffer(rbuf_.get() + rlen_, rcap_ - rlen_),
                        [this](const boost::system::error_code& ec, std::size_t n) {
                          if (state_ == State::closed) return;
                          if (ec)
                            return fail(ec == asio::error::eof ? "server closed the connection"
                                                               : "read: " + ec.message());
                          on_read(n);
                        });
}

void WsClient::on_read(std::size_t n) {
  bool filled = rlen_ + n == rcap_;
  rlen_ += n;
  bytes_rx_ += n;
  std::int64_t now = now_ns();
  if (state_ == State::handshaking) {
    std::string_view head(rbuf_.get(), rlen_);
    auto end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (rlen_ > 16384) return fail("handshake: response headers too large");
      return read_more();
    }
    if (head.substr(0, 12) != "HTTP/1.1 101") {
      auto eol = head.find("\r\n");
      std::string why = "handshake refused: " + std::string(head.substr(0, eol));
      // The JSON error body, when it already arrived, says why.
      std::string_view body = head.substr(end + 4);
      if (!body.empty()) why += " " + std::string(body.substr(0, 200));
      return fail(why);
    }
    std::size_t used = end + 4;
    std::memmove(rbuf_.get(), rbuf_.get() + used, rlen_ - used);
    rlen_ -= used;
    state_ = State::open;
    handler_.on_open(*this, now);
    if (state_ != State::open) return;
  }
  parse_frames(now);
  if (state_ == State::closed) return;
  if (filled && rcap_ < kMaxGrowBuffer && rlen_ < rcap_ / 2) {
    std::size_t cap = rcap_ * 2;
    std::unique_ptr<char[]> b(new char[cap]);
    std::memcpy(b.get(), rbuf_.get(), rlen_);
    rbuf_ = std::move(b);
    rcap_ = cap;
  }
  read_more();
}

void WsClient::parse_frames(std::int64_t now) {
  char* buf = rbuf_.get();
  std::size_t pos = 0;
  while (rlen_ - pos >= 2) {
    auto b0 = static_cast<std::uint8_t>(buf[pos]);
    auto b1 = static_cast<std::uint8_t>(buf[pos + 1]);
    bool fin = b0 & 0x80;
    std::uint8_t opcode = b0 & 0x0F;
    bool masked = b1 & 0x80;
    std::uint64_t len = b1 & 0x7F;
    std::size_t hdr = 2;
    if (len == 126) {
      if (rlen_ - pos < 4) break;
      len = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(buf[pos + 2])) << 8) |
            static_cast<std::uint8_t>(buf[pos + 3]);
      hdr = 4;
    } else if (len == 127) {
      if (rlen_ - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(buf[pos + 2 + i]);
      hdr = 10;
    }
    std::size_t mask_at = pos + hdr;
    if (masked) hdr += 4;
    if (len > (64u << 20)) return fail("frame over 64 MiB");
    if (rlen_ - pos < hdr + len) {
      // Incomplete: make sure the whole frame fits once the consumed part is moved out.
      std::size_t need = hdr + static_cast<std::size_t>(len);
      if (need > rcap_) {
        std::size_t cap = rcap_;
        while (cap < need) cap *= 2;
        std::unique_ptr<char[]> b(new char[cap]);
        std::memcpy(b.get(), buf + pos, rlen_ - pos);
        rbuf_ = std::move(b);
        rcap_ = cap;
        rlen_ -= pos;
        return;
      }
      break;
    }
    char* payload = buf + pos + hdr;
    if (masked) {
      for (std::uint64_t i = 0; i < len; ++i) payload[i] ^= buf[mask_at + (i & 3)];
    }
    std::string_view data(payload, static_cast<std::size_t>(len));
    pos += hdr + static_cast<std::size_t>(len);
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (fin) {
          if (opcode == 0x1) handler_.on_text(*this, data, now);
        } else {
          fragment_opcode_ = opcode;
          fragment_.assign(data);
        }
        break;
      case 0x0:
        fragment_.append(data);
        if (fin) {
          if (fragment_opcode_ == 0x1) handler_.on_text(*this, fragment_, now);
          fragment_.clear();
        }
        break;
      case 0x8: {
        std::string why = "server sent close";
        if (len >= 2) {
          int code = (static_cast<std::uint8_t>(data[0]) << 8) | static_cast<std::uint8_t>(data[1]);
          why += " " + std::to_string(code) + " " + std::string(data.substr(2));
        }
        append_frame(0x8, data.substr(0, 2));
        if (!writing_) flush();
        return fail(why);
      }
      case 0x9:
        append_frame(0xA, data);
        if (!writing_) flush();
        break;
      default:
        break;  // pong, reserved
    }
    if (state_ == State::closed) return;
  }
  if (pos) {
    std::memmove(buf, buf + pos, rlen_ - pos);
    rlen_ -= pos;
  }
}

void WsClient::append_frame(std::uint8_t opcode, std::string_view payload) {
  std::size_t n = payload.size();
  char hdr[14];
  std::size_t h = 0;
  hdr[h++] = static_cast<char>(0x80 | opcode);
  if (n < 126) {
    hdr[h++] = static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    hdr[h++] = static_cast<char>(0x80 | 126);
    hdr[h++] = static_cast<char>(n >> 8);
    hdr[h++] = static_cast<char>(n);
  } else {
    hdr[h++] = static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i)
      hdr[h++] = static_cast<char>(static_cast<std::uint64_t>(n) >> (8 * i));
  }
  std::uint32_t key = xorshift(mask_state_);
  char mask[4];
  std::memcpy(mask, &key, 4);
  std::memcpy(hdr + h, mask, 4);
  h += 4;
  std::size_t at = wpending_.size();
  wpending_.resize(at + h + n);
  char* out = wpending_.data() + at;
  std::memcpy(out, hdr, h);
  out += h;
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
}

void WsClient::send_text(std::string_view payload) {
  if (state_ != State::open) return;
  append_frame(0x1, payload);
  if (!writing_) flush();
}

void WsClient::flush() {
  if (wpending_.empty() || state_ == State::closed) return;
  writing_ = true;
  std::swap(wpending_, winflight_);
  wpending_.clear();
  asio::async_write(sock_, asio::buffer(winflight_),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      if (state_ == State::closed) return;
                      writing_ = false;
                      winflight_.clear();
                      if (ec) return fail("write: " + ec.message());
                      flush();
                    });
}

void WsClient::fail(std::string_view why) {
  if (state_ == State::closed) return;
  close();
  handler_.on_closed(*this, why);
}

void WsClient::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  boost::system::error_code ignored;
  sock_.close(ignored);
}

}  // namespace imbench
