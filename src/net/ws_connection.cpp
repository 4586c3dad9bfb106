#include "net/ws_connection.hpp"

#include <chrono>
#include <cstring>
#include <span>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace imd::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

void WsConnection::FrameQueue::pop_front(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) items_[head_ + i].reset();
  head_ += n;
  if (head_ == items_.size()) {
    // Drained: give a grown buffer back, keep a small one for the next burst.
    if (items_.capacity() > 64) {
      std::vector<wire::Frame>().swap(items_);
    } else {
      items_.clear();
    }
    head_ = 0;
  } else if (head_ >= 1024 && head_ * 2 >= items_.size()) {
    items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

WsConnection::WsConnection(tcp::socket&& socket, gateway::WsContext& ctx, Id user, bool batch,
                           Millis token_expires_ms, Id login_session)
    : sock_(std::move(socket)),
      config_(ctx.config),
      clock_(ctx.clock),
      batch_(batch),
      session_(ctx, *this, user, token_expires_ms, login_session),
      bucket_(static_cast<double>(ctx.config.limits.ws_rate_per_s),
              static_cast<double>(ctx.config.limits.ws_burst)),
      writable_(sock_.get_executor()),
      last_rx_ms_(steady_ms()) {}

std::int64_t WsConnection::steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void WsConnection::start(std::string early) {
  error_code ec;
  sock_.non_blocking(true, ec);  // reads are tried at once and return would_block
  rx_ = std::move(early);
  session_.open(weak_from_this());  // pauses reading until the session is open
  arm_read();
}

void WsConnection::deliver(std::vector<gateway::OutFrame> frames) {
  asio::post(sock_.get_executor(), [self = shared_from_this(), fs = std::move(frames)]() mutable {
    if (!self->closed_) self->session_.on_deliver(std::move(fs));
  });
}

bool WsConnection::stale(std::int64_t idle_cutoff_ms, std::int64_t closing_cutoff_ms) const {
  auto closing = closing_since_ms_.load(std::memory_order_relaxed);
  return last_rx_ms_.load(std::memory_order_relaxed) < idle_cutoff_ms ||
         (closing != 0 && closing < closing_cutoff_ms);
}

void WsConnection::expire() {
  asio::post(sock_.get_executor(), [self = shared_from_this()] {
    if (self->closing_since_ms_.load(std::memory_order_relaxed) != 0) {
      self->finish("close handshake timed out");
    } else {
      // The client heartbeats every heartbeat_s; nothing received for two beats closes.
      self->begin_close(ws::CloseCode::going_away, "idle timeout");
    }
  });
}

void WsConnection::end_session() {
  close_soon(ws::CloseCode::session_ended, "session ended: log in again");
}

void WsConnection::close_if_token_expired() {
  if (closing_since_ms_.load(std::memory_order_relaxed) != 0 ||
      !session_.token_expired(clock_.now_ms())) {
    return;
  }
  close_soon(ws::CloseCode::token_expired, "token expired: refresh it and reconnect");
}

void WsConnection::close_soon(ws::CloseCode code, const char* reason) {
  asio::post(sock_.get_executor(),
             [self = shared_from_this(), code, reason] { self->begin_close(code, reason); });
}

// --- reading. Frames are handled one after the other; while the session has an op on the
// blocking pool (paused_), parsing waits, so the ops of one connection keep their order.

void WsConnection::arm_read() {
  if (!reading() && !discarding_) return;  // resume_reading() or finish() carries on
  sock_.async_wait(tcp::socket::wait_read,
                   [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
}

void WsConnection::on_readable(error_code ec) {
  if (ec || closed_) return finish(nullptr);
  static thread_local std::unique_ptr<char[]> chunk(new char[kReadChunk]);
  // A few reads per wake-up at most, so that one busy client cannot hog the thread.
  for (int round = 0; round < 4; ++round) {
    std::size_t n = sock_.read_some(asio::buffer(chunk.get(), kReadChunk), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) return finish(nullptr);  // end of stream, reset
    if (discarding_) continue;
    last_rx_ms_.store(steady_ms(), std::memory_order_relaxed);
    consume(chunk.get(), n);
    if (!reading()) return;  // resume_reading() or finish() carries on
    if (n < kReadChunk) break;
  }
  arm_read();
}

bool WsConnection::reading() const {
  return !paused_ && !closed_ && closing_since_ms_.load(std::memory_order_relaxed) == 0;
}

// Continues after an op that ran on the blocking pool: the frames that arrived meanwhile,
// then the socket.
void WsConnection::resume_reading() {
  paused_ = false;
  if (closed_) return;
  if (!rx_.empty()) parse_rx();
  if (reading()) arm_read();
}

void WsConnection::consume(char* data, std::size_t n) {
  if (rx_.empty()) {
    std::size_t used = parse(data, n);
    if (used < n && !closed_) rx_.assign(data + used, n - used);
    return;
  }
  rx_.append(data, n);
  parse_rx();
}

// Parses the frames in rx_, keeping what is left of an incomplete one (and no memory when
// nothing is left).
void WsConnection::parse_rx() {
  std::size_t used = parse(rx_.data(), rx_.size());
  rx_.erase(0, used);
  if (rx_.empty()) std::string().swap(rx_);
}

// Handles the complete frames in data[0, n); returns the bytes consumed.
std::size_t WsConnection::parse(char* data, std::size_t n) {
  const auto limit = static_cast<std::size_t>(config_.limits.max_frame_bytes);
  std::size_t off = 0;
  while (off < n && reading()) {
    auto r = ws::parse_frame(data + off, n - off, limit - std::min(limit, msg_.size()));
    if (r.status == ws::ParseStatus::need_more) break;
    if (r.status == ws::ParseStatus::error) {
      if (r.error == ws::CloseCode::too_big) {
        LOG_INFO("ws conn=" << session_.ref().conn << " closed: frame over the size limit");
      }
      begin_close(r.error, r.reason);
      return n;
    }
    off += r.frame.size;
    on_frame(r.frame);
  }
  return off;
}

void WsConnection::on_frame(const ws::FrameView& f) {
  using ws::Opcode;
  switch (f.opcode) {
    case Opcode::ping:
      if (within_rate()) send_control(Opcode::pong, f.payload);
      return;
    case Opcode::pong:
      // Unsolicited pongs are allowed (RFC 6455 §5.5.3) but not free: they count like pings.
      within_rate();
      return;
    case Opcode::close:
      return on_close_frame(f.payload);
    case Opcode::text:
    case Opcode::binary:
      if (in_message_) return begin_close(ws::CloseCode::protocol_error, "expected continuation");
      if (f.fin) return on_message(f.opcode == Opcode::text, f.payload);
      if (!fragment_within_rate()) return;
      in_message_ = true;
      message_text_ = f.opcode == Opcode::text;
      msg_.assign(f.payload);
      return;
    case Opcode::continuation: {
      if (!in_message_) return begin_close(ws::CloseCode::protocol_error, "no message to continue");
      if (!f.fin && !fragment_within_rate()) return;
      msg_.append(f.payload);
      if (!f.fin) return;
      in_message_ = false;
      std::string whole;
      whole.swap(msg_);
      return on_message(message_text_, whole);
    }
  }
}

void WsConnection::on_close_frame(std::string_view payload) {
  if (payload.empty()) return begin_close(ws::CloseCode::normal, "");
  if (payload.size() < 2) return begin_close(ws::CloseCode::protocol_error, "bad close frame");
  auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                         static_cast<unsigned char>(payload[1]));
  bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
               (code >= 3000 && code <= 4999);
  if (!valid || !ws::valid_utf8(payload.substr(2))) {
    return begin_close(ws::CloseCode::protocol_error, "bad close frame");
  }
  begin_close(static_cast<ws::CloseCode>(code), "");  // echo the client's code
}

// The per-connection rate limit, for messages and WebSocket pings alike: over it, an error
// frame; after ws_abuse_close_after in a row, the connection is closed.
bool WsConnection::within_rate() {
  if (bucket_.take(clock_.now_ms())) {
    violations_ = 0;
    return true;
  }
  static auto& refused = metrics::imd().rate_limited.at("ws_frame");
  refused.inc();
  if (++violations_ >= config_.limits.ws_abuse_close_after) {
    LOG_INFO("ws conn=" << session_.ref().conn << " closed: sustained rate-limit violations");
    session_.send_error(make_error(Errc::too_many_requests, "rate limit: closing"), "", nullptr);
    // The error frames already queued go out first (bounded: the close times out).
    begin_close(ws::CloseCode::policy_error, "rate limit");
  } else {
    session_.send_error(make_error(Errc::too_many_requests, "rate limit exceeded, slow down"), "",
                        nullptr);
  }
  return false;
}

// Every fragment but the last counts against the rate (the last counts as the message): a
// stream of empty continuation frames is a flood like any other. A fragment over the limit
// ends the connection; the message it belonged to cannot be completed.
bool WsConnection::fragment_within_rate() {
  if (bucket_.take(clock_.now_ms())) return true;
  LOG_INFO("ws conn=" << session_.ref().conn << " closed: fragments over the rate limit");
  in_message_ = false;
  std::string().swap(msg_);
  begin_close(ws::CloseCode::policy_error, "rate limit");
  return false;
}

void WsConnection::on_message(bool text, std::string_view payload) {
  if (!within_rate()) return;
  if (!text) {
    return session_.send_error(
        make_error(Errc::invalid_argument, "binary frames are not supported"), "", nullptr);
  }
  if (!ws::valid_utf8(payload)) {
    return begin_close(ws::CloseCode::invalid_payload, "text is not UTF-8");
  }
  session_.on_text(payload);
}

// --- writing. Server frames are final and unmasked, so their headers are written here.

void WsConnection::send(wire::Frame frame, bool exempt) {
  if (closed_ || closing_since_ms_.load(std::memory_order_relaxed) != 0) return;
  const auto& lim = config_.limits;
  if (!exempt && (queue_.size() >= static_cast<std::size_t>(lim.ws_write_queue_messages) ||
                  queued_bytes_ >= static_cast<std::size_t>(lim.ws_write_queue_bytes))) {
    LOG_INFO("ws conn=" << session_.ref().conn << " dropped: write queue full (slow client)");
    return finish("too slow");
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (!writing_ && !corked_) write_queued();
}

void WsConnection::uncork() {
  corked_ = false;
  if (!writing_ && !closed_ && (!queue_.empty() || !control_.empty() || !close_frame_.empty())) {
    write_queued();
  }
}

// Pongs and the close frame, ahead of the queued data frames (control frames may go between
// whole messages). Bounded: a client that floods pings without reading is dropped.
void WsConnection::send_control(ws::Opcode op, std::string_view payload) {
  if (closed_) return;
  if (control_.size() > 64 * 1024) return finish("control frames not read");
  control_ += ws::encode_frame(op, payload);
  if (!writing_) write_queued();
}

void WsConnection::write_queued() {
  writing_ = true;
  taken_ = 0;
  taken_bytes_ = 0;
  auto done = [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); };
  if (!control_.empty() || (queue_.empty() && !close_frame_.empty())) {
    // Pongs go first; the close frame last, after every queued frame.
    out_.clear();
    out_.swap(control_.empty() ? close_frame_ : control_);
    return asio::async_write(sock_, asio::buffer(out_), std::move(done));
  }
  out_.clear();
  if ((!batch_ || queue_.size() == 1) && queue_.size() <= kMaxGather) {
    // Each frame's header and its shared text, gathered without a copy: one sendmsg.
    const std::size_t n = queue_.size();
    out_.resize(10 * n);  // the headers
    iov_.clear();
    iov_.reserve(2 * kMaxGather);
    char* head = out_.data();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& text = *queue_[i];
      std::size_t h = ws::encode_header(ws::Opcode::text, text.size(), head);
      iov_.push_back(asio::buffer(head, h));
      iov_.push_back(asio::buffer(text));
      head += h;
      taken_bytes_ += text.size();
    }
    taken_ = n;
    return asio::async_write(sock_, std::span<const asio::const_buffer>(iov_), std::move(done));
  }
  if (batch_) {
    // One {"op":"batch","frames":[...]} frame; its header goes in front once its size is
    // known (kHeadRoom bytes are kept for it).
    static constexpr std::string_view kOpen = R"({"op":"batch","frames":[)";
    const std::size_t limit = static_cast<std::size_t>(config_.limits.max_frame_bytes) * 4;
    out_.resize(kHeadRoom);
    out_.append(kOpen);
    while (taken_ < queue_.size() &&
           (taken_ == 0 || out_.size() + queue_[taken_]->size() < limit)) {
      if (taken_ > 0) out_.push_back(',');
      out_.append(*queue_[taken_]);
      taken_bytes_ += queue_[taken_]->size();
      ++taken_;
    }
    out_.append("]}");
    char head[10];
    std::size_t h = ws::encode_header(ws::Opcode::text, out_.size() - kHeadRoom, head);
    std::memcpy(out_.data() + kHeadRoom - h, head, h);
    return asio::async_write(sock_,
                             asio::buffer(out_.data() + kHeadRoom - h, out_.size() - kHeadRoom + h),
                             std::move(done));
  }
  // A long backlog: copied into one buffer (up to kMaxWriteBytes) for one write.
  while (taken_ < queue_.size() && (taken_ == 0 || out_.size() < kMaxWriteBytes)) {
    const auto& text = *queue_[taken_];
    char head[10];
    std::size_t h = ws::encode_header(ws::Opcode::text, text.size(), head);
    out_.append(head, h);
    out_.append(text);
    taken_bytes_ += text.size();
    ++taken_;
  }
  asio::async_write(sock_, asio::buffer(out_), std::move(done));
}

void WsConnection::on_written(error_code ec) {
  queue_.pop_front(taken_);
  queued_bytes_ -= taken_bytes_;
  taken_ = 0;
  taken_bytes_ = 0;
  if (ec) return finish("write failed");
  if (closed_) return;
  const auto low_water = static_cast<std::size_t>(config_.ws.sync_page);
  if (queue_.size() <= low_water) writable_.cancel();
  if (!control_.empty() || !queue_.empty() || !close_frame_.empty()) return write_queued();
  writing_ = false;
  // An idle connection keeps no write buffers.
  std::string().swap(out_);
  std::vector<asio::const_buffer>().swap(iov_);
  if (closing_since_ms_.load(std::memory_order_relaxed) != 0) linger_close();
}

// Everything, the close frame last, is written: send FIN and read (discarding) until the
// client closes too. Closing at once would make the kernel answer the client's unread bytes
// with a reset, which can destroy frames the client has not read yet. The idle sweep closes
// the socket if the client does not within a second or two.
void WsConnection::linger_close() {
  if (discarding_) return;
  discarding_ = true;
  error_code ignored;
  sock_.shutdown(tcp::socket::shutdown_send, ignored);
  arm_read();
}

asio::awaitable<void> WsConnection::writable() {
  const auto low_water = static_cast<std::size_t>(config_.ws.sync_page);
  while (!closed_ && queue_.size() > low_water) {
    writable_.expires_after(std::chrono::seconds(30));
    auto [ec] = co_await writable_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec && queue_.size() > low_water) {
      finish("too slow");  // 30 s without progress: the client is not reading
    }
  }
}

// The closing handshake: stop reading, send what is queued and a close frame, then close the
// socket (the idle sweep closes it if the write does not finish within a second or two).
void WsConnection::begin_close(ws::CloseCode code, const char* reason) {
  if (closed_ || closing_since_ms_.load(std::memory_order_relaxed) != 0) return;
  LOG_DEBUG("ws conn=" << session_.ref().conn << " closing: " << reason << " (" << int(code)
                       << ")");
  in_message_ = false;
  std::string().swap(msg_);
  std::string().swap(rx_);
  close_frame_ = ws::encode_frame(ws::Opcode::close, ws::close_payload(code, reason));
  closing_since_ms_.store(steady_ms(), std::memory_order_relaxed);
  if (!writing_) write_queued();
}

// Closes the socket and detaches the session; once. `why` is logged when set.
void WsConnection::finish(const char* why) {
  if (closed_) return;
  closed_ = true;
  if (why) LOG_DEBUG("ws conn=" << session_.ref().conn << " closed: " << why);
  writable_.cancel();
  error_code ignored;
  sock_.shutdown(tcp::socket::shutdown_both, ignored);
  sock_.close(ignored);
  slot_.reset();  // the descriptor is free: so is its place under the TCP caps
  session_.on_closed();
  finished_.store(true, std::memory_order_relaxed);
}

// --- the table of connections

WsConnections::WsConnections(asio::any_io_executor ex, std::int64_t heartbeat_s)
    : heartbeat_s_(heartbeat_s), timer_(std::move(ex)) {}

void WsConnections::add(const std::shared_ptr<WsConnection>& c) {
  std::lock_guard lock(mu_);
  conns_.push_back(c);
  if (stopped_) c->close_soon(ws::CloseCode::going_away, "server shutting down: reconnect");
}

void WsConnections::start() {
  asio::post(timer_.get_executor(), [self = shared_from_this()] { self->sweep(); });
}

void WsConnections::sweep() {
  const auto now = WsConnection::steady_ms();
  const auto idle_cutoff = now - 2000 * heartbeat_s_;
  const auto closing_cutoff = now - 1000;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto c = conns_[i].lock();
      if (!c) continue;
      if (c->stale(idle_cutoff, closing_cutoff)) c->expire();
      c->close_if_token_expired();
      if (kept != i) conns_[kept] = std::move(conns_[i]);  // (a self-move would empty it)
      ++kept;
    }
    conns_.resize(kept);
    if (conns_.capacity() > 1024 && kept * 4 < conns_.capacity()) conns_.shrink_to_fit();
  }
  timer_.expires_after(std::chrono::milliseconds(500));
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->sweep();
  });
}

void WsConnections::close_all() {
  std::vector<std::shared_ptr<WsConnection>> live;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (auto& w : conns_) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
  }
  asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  for (auto& c : live) c->close_soon(ws::CloseCode::going_away, "server shutting down: reconnect");
}

std::size_t WsConnections::open() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& w : conns_) {
    if (auto c = w.lock(); c && !c->finished()) ++n;
  }
  return n;
}

}  // namespace imd::net
