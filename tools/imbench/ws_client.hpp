// A minimal, allocation-light WebSocket client connection for load generation.
//
// Why not beast::websocket::stream: Beast completes one async_read per message, so a client
// receiving millions of small frames per second pays a full asynchronous operation per frame.
// WsClient reads whatever the socket holds (one read_some, often hundreds of frames), parses
// the frames in place and hands each text payload to the handler as a string_view; writes are
// coalesced: frames queued while a write is in flight go out together in the next one.
//
// Protocol: RFC 6455 client side: masked frames, unmasked server frames, pings answered,
// close answered then the socket closed. The handshake is a plain HTTP/1.1 upgrade request.
//
// Threading: all calls and callbacks on the io_context that owns the socket (one thread).
// Ownership: the owner keeps the object alive until close() was called and the io_context
// has run the aborted handlers (see drain() in runner.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace imbench {

class WsClient {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_open(WsClient&, std::int64_t now_ns) {}
    // One complete text message. `now_ns` is the arrival time of the read that completed it.
    virtual void on_text(WsClient&, std::string_view text, std::int64_t now_ns) = 0;
    virtual void on_closed(WsClient&, std::string_view why) {}
  };

  enum class State { idle, connecting, handshaking, open, closed };

  WsClient(boost::asio::io_context& io, Handler& handler, std::size_t id);
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects (optionally from `source`, bound before connect so that many local addresses
  // multiply the usable source ports) and upgrades GET /ws?token=...
  void connect(const boost::asio::ip::tcp::endpoint& server, const boost::asio::ip::address* source,
               const std::string& host_header, const std::string& token,
               std::string_view extra_query = {});

  void send_text(std::string_view payload);
  // Closes the socket at once (no close handshake). Idempotent; no callback.
  void close();

  State state() const { return state_; }
  bool is_open() const { return state_ == State::open; }
  std::size_t id() const { return id_; }
  std::size_t pending_write_bytes() const { return wpending_.size() + winflight_.size(); }
  std::uint64_t bytes_received() const { return bytes_rx_; }

 private:
  void read_more();
  void on_read(std::size_t n);
  void parse_frames(std::int64_t now_ns);
  void append_frame(std::uint8_t opcode, std::string_view payload);
  void flush();
  void fail(std::string_view why);

  boost::asio::ip::tcp::socket sock_;
  Handler& handler_;
  std::size_t id_;
  State state_ = State::idle;

  std::unique_ptr<char[]> rbuf_;
  std::size_t rcap_ = 0;
  std::size_t rlen_ = 0;
  std::string fragment_;  // a fragmented message being assembled (imd does not fragment)
  std::uint8_t fragment_opcode_ = 0;

  std::string wpending_;   // frames queued while a write is in flight
  std::string winflight_;  // the buffer being written
  bool writing_ = false;
  std::uint32_t mask_state_;
  std::uint64_t bytes_rx_ = 0;
};

}  // namespace imbench
