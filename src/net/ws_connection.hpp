// One WebSocket connection after the upgrade: our own framing (ws_frame.hpp) on a TCP socket,
// the per-connection rate limit, the bounded write queue with its slow-client policy, and the
// closing handshake. The protocol above it is its gateway::WsSession.
//
// Reading: an idle connection has one pending wait for readability and no buffer; bytes are
// read into a per-thread buffer and parsed in place, only an incomplete frame is kept.
// Writing: every frame queued while a write is in flight goes out with the next write (one
// sendmsg for many frames). A live push that finds the queue over its bound (messages or
// bytes) drops the client (it resyncs on reconnect); replies and backfill wait instead.
// Threading: everything on the connection's strand, except deliver(), stale() and close_soon()
// (any thread).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/rate_limiter.hpp"
#include "gateway/ws_session.hpp"
#include "net/ws_frame.hpp"

namespace imd::net {

class WsConnection final : public gateway::WsTransport,
                           public gateway::Connection,
                           public std::enable_shared_from_this<WsConnection> {
 public:
  // `socket` has completed the HTTP upgrade. `batch`: the client asked for batch frames.
  // `token_expires_ms`: when the client's access token ends (Unix ms; see WsSession);
  // `login_session`: the login session it was issued from.
  WsConnection(boost::asio::ip::tcp::socket&& socket, gateway::WsContext& ctx, Id user, bool batch,
               Millis token_expires_ms, Id login_session);

  // Keeps `slot` (the connection's place under the TCP caps) until the connection is gone.
  void hold(std::shared_ptr<void> slot) { slot_ = std::move(slot); }

  // Opens the session, then reads. `early`: bytes the client sent right behind its upgrade
  // request (read along with it).
  void start(std::string early);

  // gateway::Connection (any thread).
  void deliver(std::vector<gateway::OutFrame> frames) override;
  void end_session() override;
  Id login_session() const override { return session_.login_session(); }
  // For the sweep (any thread): the access token ended without a renewal: close with 4001.
  void close_if_token_expired();

  // For the idle sweep (any thread): whether nothing arrived since `idle_cutoff_ms`, or a close
  // started before `closing_cutoff_ms` has not finished.
  bool stale(std::int64_t idle_cutoff_ms, std::int64_t closing_cutoff_ms) const;
  // Idle: starts the closing handshake; a close that did not finish: closes the socket.
  void expire();
  // Starts the closing handshake with `code` (any thread).
  void close_soon(ws::CloseCode code, const char* reason);
  bool finished() const { return finished_.load(std::memory_order_relaxed); }

  static std::int64_t steady_ms();

  // gateway::WsTransport (on the strand).
  boost::asio::any_io_executor executor() override { return sock_.get_executor(); }
  void send(wire::Frame frame, bool exempt) override;
  void cork() override { corked_ = true; }
  void uncork() override;
  boost::asio::awaitable<void> writable() override;
  void pause_reading() override { paused_ = true; }
  void resume_reading() override;
  bool closed() const override { return closed_; }
  std::shared_ptr<void> hold() override { return shared_from_this(); }

 private:
  // A connection's outgoing frames: FIFO, bounded by the caller. Unlike std::deque (which
  // allocates a 512-byte block as soon as it is constructed), an empty queue owns no memory.
  class FrameQueue {
   public:
    bool empty() const { return head_ == items_.size(); }
    std::size_t size() const { return items_.size() - head_; }
    const wire::Frame& operator[](std::size_t i) const { return items_[head_ + i]; }
    void push_back(wire::Frame f) { items_.push_back(std::move(f)); }
    void pop_front(std::size_t n);

   private:
    std::vector<wire::Frame> items_;
    std::size_t head_ = 0;
  };

  void arm_read();
  void on_readable(boost::system::error_code ec);
  bool reading() const;
  void consume(char* data, std::size_t n);
  void parse_rx();
  std::size_t parse(char* data, std::size_t n);
  void on_frame(const ws::FrameView& f);
  void on_close_frame(std::string_view payload);
  void on_message(bool text, std::string_view payload);
  bool within_rate();
  bool fragment_within_rate();

  void send_control(ws::Opcode op, std::string_view payload);
  void write_queued();
  void on_written(boost::system::error_code ec);
  void linger_close();
  void begin_close(ws::CloseCode code, const char* reason);
  void finish(const char* why);

  static constexpr std::size_t kReadChunk = 64 * 1024;
  static constexpr std::size_t kMaxWriteBytes = 256 * 1024;
  static constexpr std::size_t kMaxGather = 32;  // frames per gathered write (64 iovecs)
  static constexpr std::size_t kHeadRoom = 10;

  boost::asio::ip::tcp::socket sock_;
  std::shared_ptr<void> slot_;
  const Config& config_;
  Clock& clock_;
  const bool batch_;
  gateway::WsSession session_;
  TokenBucket bucket_;
  std::int64_t violations_ = 0;
  bool closed_ = false;
  bool paused_ = false;      // an op runs on the blocking pool; parsing waits for it
  bool in_message_ = false;  // a fragmented message is being assembled in msg_
  bool message_text_ = false;
  bool discarding_ = false;  // closed on our side: reading only until the client closes
  std::atomic<bool> finished_{false};
  std::atomic<std::int64_t> closing_since_ms_{0};  // the close handshake started (steady ms)
  std::string rx_;   // the start of a frame that has not fully arrived
  std::string msg_;  // the fragments of a message so far

  FrameQueue queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool corked_ = false;    // frames are being queued in a burst: write once it is over
  std::size_t taken_ = 0;  // frames and bytes of the write in flight
  std::size_t taken_bytes_ = 0;
  std::string out_;  // the write in flight: frame headers, or whole frames
  std::vector<boost::asio::const_buffer> iov_;  // a gathered write in flight
  std::string control_;                         // encoded pongs waiting for the next write
  std::string close_frame_;                     // the close frame, written after everything queued
  boost::asio::steady_timer writable_;
  std::atomic<std::int64_t> last_rx_ms_;
};

// The open WebSocket connections of a server: one idle sweep for all (instead of a timer per
// connection), and the close of them all when the server stops. Thread-safe.
class WsConnections : public std::enable_shared_from_this<WsConnections> {
 public:
  WsConnections(boost::asio::any_io_executor ex, std::int64_t heartbeat_s);
  // Tracks `c`; after close_all(), also starts its close.
  void add(const std::shared_ptr<WsConnection>& c);
  // Sweeps every 500 ms: closes the connections that received nothing for two heartbeat
  // intervals, and the ones whose close handshake did not finish within a second.
  void start();
  // Starts the closing handshake of every connection with 1001 (going away); stops sweeping.
  void close_all();
  // How many connections have not finished closing.
  std::size_t open() const;

 private:
  void sweep();

  const std::int64_t heartbeat_s_;
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<WsConnection>> conns_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;  // guarded by mu_
};

}  // namespace imd::net
