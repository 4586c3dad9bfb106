// Filler: one client that stores `total` messages in a conversation as fast as the server
// ACKs them, keeping `window` sends unACKed; a send refused with too_many_requests or
// unavailable is retried with the same cid after a short pause, as a client does.
// Threading: the io_context's thread. Set-up helper of `catchup` and `history`.
#pragma once

#include <deque>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "accounts.hpp"
#include "client_behavior.hpp"
#include "context.hpp"
#include "ws_client.hpp"

namespace imbench {

class Filler final : public WsClient::Handler {
 public:
  Filler(boost::asio::io_context& io, std::string target, std::uint64_t total, std::size_t window,
         std::size_t body_bytes)
      : ws_(io, *this, 0),
        retry_(io),
        target_(std::move(target)),
        total_(total),
        window_(window),
        body_bytes_(body_bytes),
        sweep_(io) {}

  void connect(Context& ctx, const Account& a) {
    cs_.ack = ctx.ack_policy;
    ws_.connect(ctx.server, nullptr, ctx.host_header, a.token, ctx.ws_query);
    schedule_sweep();
  }
  bool synced() const { return cs_.synced; }
  bool done() const { return acked_ + hard_errors_ >= total_; }
  std::uint64_t hard_errors() const { return hard_errors_; }
  const std::string& error() const { return error_; }
  bool failed() const {
    return !ws_.is_open() && ws_.state() != WsClient::State::connecting &&
           ws_.state() != WsClient::State::handshaking;
  }
  const std::string& why() const { return cs_.closed_why; }
  std::uint64_t acked() const { return acked_; }
  std::uint64_t refused() const { return refused_; }
  void start() { fill(); }
  void close() {
    sweep_.cancel();
    retry_.cancel();
    ws_.close();
  }

 private:
  void send(std::uint64_t k) {
    std::string b = "{\"op\":\"send\",\"cid\":\"f" + std::to_string(k) + "\"," + target_ +
                    ",\"body\":\"" + std::to_string(k) + ":";
    std::size_t used = std::to_string(k).size() + 1;
    if (used < body_bytes_) b.append(body_bytes_ - used, 'x');
    b += "\"}";
    ws_.send_text(b);
    ++in_flight_;
  }

  void fill() {
    while (in_flight_ < window_ && !retries_.empty()) {
      send(retries_.front());
      retries_.pop_front();
    }
    while (in_flight_ < window_ && next_ < total_) send(next_++);
  }

  void schedule_sweep() {
    sweep_.expires_after(std::chrono::milliseconds(100));
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::int64_t now = now_ns();
      cs_.maybe_ping(ws_, now);
      cs_.flush_acks(ws_, now);
      schedule_sweep();
    });
  }

  void on_text(WsClient& ws, std::string_view frame, std::int64_t now) override {
    std::string_view op = scan::op(frame);
    if (op == "batch") {
      scan::each_in_batch(frame, [&](std::string_view f) { on_text(ws, f, now); });
      return;
    }
    if (op == "sent") {
      --in_flight_;
      ++acked_;
      fill();
    } else if (op == "error") {
      std::uint64_t k = 0;
      std::string_view cid = scan::str(frame, "\"cid\":");
      if (cid.size() > 1 && cid[0] == 'f' && scan::parse_u64(cid.substr(1), k)) {
        --in_flight_;
        std::string_view code = scan::str(frame, "\"code\":");
        if (code != "too_many_requests" && code != "unavailable") {
          ++hard_errors_;
          if (error_.empty()) error_ = std::string(frame);
          return fill();
        }
        ++refused_;
        retries_.push_back(k);
        // Back off a little: the server said too many requests (its queue is full).
        retry_.expires_after(std::chrono::milliseconds(20));
        retry_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) fill();
        });
      }
    } else if (op == "hello") {
      cs_.on_hello(frame, now);
    } else if (op == "synced") {
      cs_.synced = true;
    } else if (op == "msg") {
      std::string_view conv = scan::str(frame, "\"conversation\":");
      std::uint64_t seq = 0;
      if (!conv.empty() && scan::num(frame, "\"seq\":", seq))
        cs_.on_message(ws, cs_.conv(conv), seq, now);
    }
  }
  void on_closed(WsClient&, std::string_view why) override { cs_.closed_why = std::string(why); }

  WsClient ws_;
  boost::asio::steady_timer retry_;
  ClientState cs_;
  std::string target_;
  std::uint64_t total_;
  std::size_t window_, body_bytes_;
  boost::asio::steady_timer sweep_;
  std::uint64_t next_ = 0, acked_ = 0, refused_ = 0, hard_errors_ = 0;
  std::string error_;
  std::size_t in_flight_ = 0;
  std::deque<std::uint64_t> retries_;
};

}  // namespace imbench
