#include "net/server.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include "api/views.hpp"
#include "common/forwarded.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/rate_limiter.hpp"
#include "net/offload.hpp"
#include "net/ws_frame.hpp"

namespace imd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace bj = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

std::string_view content_type_for(std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"}};
  for (auto [ext, type] : kTypes) {
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return type;
  }
  return "application/octet-stream";
}

// Maps a URL path to a file under `root`, or nullopt for anything that could leave it.
std::optional<std::string> static_path(const std::string& root, std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  std::string path;
  for (auto seg : url->segments()) {
    std::string s(seg);
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos ||
        s.find('\\') != std::string::npos || s.find('\0') != std::string::npos) {
      if (s.empty()) continue;
      return std::nullopt;
    }
    path += "/" + s;
  }
  if (path.empty()) path = "/index.html";
  return root + path;
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// A connection's outgoing frames: FIFO, bounded by the caller. Unlike std::deque (which
// allocates a 512-byte block as soon as it is constructed), an empty queue owns no memory: an
// idle connection pays nothing for it.
class FrameQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  const gateway::Frame& front() const { return items_[head_]; }
  const gateway::Frame& operator[](std::size_t i) const { return items_[head_ + i]; }
  void push_back(gateway::Frame f) { items_.push_back(std::move(f)); }
  void pop_front(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) items_[head_ + i].reset();
    head_ += n;
    if (head_ == items_.size()) {
      // Drained: give a grown buffer back, keep a small one for the next burst.
      if (items_.capacity() > 64) {
        std::vector<gateway::Frame>().swap(items_);
      } else {
        items_.clear();
      }
      head_ = 0;
    } else if (head_ >= 1024 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<gateway::Frame> items_;
  std::size_t head_ = 0;
};

}  // namespace

class WsSession;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, ServerDeps d)
      : io(io), deps(std::move(d)), acceptor(io), proxies(deps.config.trusted_proxies) {}

  asio::io_context& io;
  ServerDeps deps;
  tcp::acceptor acceptor;
  TrustedProxies proxies;  // whose X-Forwarded-For names the client

  std::string client_ip(const std::string& peer, std::string_view forwarded_for) const {
    return proxies.empty() ? peer : proxies.client_ip(peer, forwarded_for);
  }

  awaitable<void> accept_loop();
  awaitable<void> http_session(tcp::socket socket);
  api::HttpResponse serve_static(const std::string& target);

  // Open WebSocket sessions, for the idle sweep: one timer for all connections instead of one
  // per connection.
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<WsSession>> sessions;
  std::unique_ptr<asio::steady_timer> sweep_timer;
  void track(std::weak_ptr<WsSession> s);
  void sweep();
};

// ---------------------------------------------------------------------------------------------
// WebSocket session: one per connection, all state on its strand.

class WsSession final : public gateway::Connection, public std::enable_shared_from_this<WsSession> {
 public:
  // `socket` has completed the HTTP upgrade; `early` holds bytes the client sent after its
  // upgrade request (read along with it).
  WsSession(tcp::socket&& socket, ServerDeps& deps, Id user, bool batch)
      : sock_(std::move(socket)),
        deps_(deps),
        user_(user),
        batch_(batch),
        bucket_(static_cast<double>(deps.config.limits.ws_rate_per_s),
                static_cast<double>(deps.config.limits.ws_burst)),
        writable_(sock_.get_executor()),
        last_rx_ms_(steady_ms()) {}

  // Attaches to the hub, adds the route, says hello, starts the backfill and then reads.
  void start(std::string early) {
    beast::error_code ec;
    sock_.non_blocking(true, ec);  // reads are tried at once and return would_block
    rx_ = std::move(early);
    ref_ = deps_.hub.attach(user_, weak_from_this());
    paused_ = true;
    // Routes may live in Redis: a network round trip belongs on the blocking pool.
    asio::post(deps_.blocking, [self = shared_from_this()] {
      self->deps_.routes.add(self->user_, self->ref_);
      asio::post(self->sock_.get_executor(), [self] {
        LOG_DEBUG("ws open user=" << self->user_ << " conn=" << self->ref_.conn);
        self->enqueue(
            gateway::hello_frame(self->ref_.conn, self->user_, self->deps_.config.ws.heartbeat_s),
            true);
        self->start_sync(std::nullopt);
        self->resume();
      });
    });
  }

  void deliver(std::vector<gateway::OutFrame> frames) override {
    asio::post(sock_.get_executor(), [self = shared_from_this(), fs = std::move(frames)]() mutable {
      // Queue them all, then write: one write for the lot.
      self->corked_ = true;
      for (auto& f : fs) self->on_deliver(std::move(f));
      self->uncork();
    });
  }

  // For the server's idle sweep (any thread): whether nothing arrived since `cutoff_ms`, or a
  // close started before it has not finished.
  bool stale(std::int64_t idle_cutoff_ms, std::int64_t closing_cutoff_ms) const {
    auto closing = closing_since_ms_.load(std::memory_order_relaxed);
    return last_rx_ms_.load(std::memory_order_relaxed) < idle_cutoff_ms ||
           (closing != 0 && closing < closing_cutoff_ms);
  }
  void expire() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] {
      if (self->closing_since_ms_.load(std::memory_order_relaxed) != 0) {
        self->finish("close handshake timed out");
      } else {
        // The client heartbeats every heartbeat_s; nothing received for two beats closes.
        self->begin_close(ws::CloseCode::going_away, "idle timeout");
      }
    });
  }

  static std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

 private:
  using Cursors = std::map<ConvKey, std::uint64_t>;
  using OpHandler = void (WsSession::*)(const bj::object&);

  static const std::unordered_map<std::string_view, OpHandler>& ops() {
    static const std::unordered_map<std::string_view, OpHandler> kOps = {
        {"ping", &WsSession::op_ping}, {"send", &WsSession::op_send}, {"ack", &WsSession::op_ack},
        {"read", &WsSession::op_read}, {"sync", &WsSession::op_sync},
    };
    return kOps;
  }

  // --- reading. An idle connection has one pending wait for readability and no buffer: the
  // bytes are read into a per-thread buffer and parsed in place; only the part of a frame that
  // has not fully arrived is copied into rx_ (and freed once the frame is complete).
  // Frames are handled one after the other; an op that needs the blocking pool pauses the
  // parsing (paused_) until it is done, so the ops of one connection keep their order.

  static constexpr std::size_t kReadChunk = 64 * 1024;

  void arm_read() {
    sock_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](beast::error_code ec) { self->on_readable(ec); });
  }

  void on_readable(beast::error_code ec) {
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
      if (!reading()) return;  // resume() or finish() carries on
      if (n < kReadChunk) break;
    }
    arm_read();
  }

  bool reading() const { return !paused_ && !closed_ && closing_since_ms_.load() == 0; }

  // Continues after an op that ran on the blocking pool: the frames that arrived meanwhile,
  // then the socket.
  void resume() {
    paused_ = false;
    if (closed_) return finish(nullptr);
    if (!rx_.empty()) parse_rx();
    if (reading()) arm_read();
  }

  void consume(char* data, std::size_t n) {
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
  void parse_rx() {
    std::size_t used = parse(rx_.data(), rx_.size());
    rx_.erase(0, used);
    if (rx_.empty()) std::string().swap(rx_);
  }

  // Handles the complete frames in data[0, n); returns the bytes consumed.
  std::size_t parse(char* data, std::size_t n) {
    const auto limit = static_cast<std::size_t>(deps_.config.limits.max_frame_bytes);
    std::size_t off = 0;
    while (off < n && reading()) {
      auto r = ws::parse_frame(data + off, n - off, limit - std::min(limit, msg_.size()));
      if (r.status == ws::ParseStatus::need_more) break;
      if (r.status == ws::ParseStatus::error) {
        if (r.error == ws::CloseCode::too_big) {
          LOG_INFO("ws conn=" << ref_.conn << " closed: frame over the size limit");
        }
        begin_close(r.error, r.reason);
        return n;
      }
      off += r.frame.size;
      on_frame(r.frame);
    }
    return off;
  }

  void on_frame(const ws::FrameView& f) {
    using ws::Opcode;
    switch (f.opcode) {
      case Opcode::ping:
        if (within_rate()) send_control(Opcode::pong, f.payload);
        return;
      case Opcode::pong:
        return;
      case Opcode::close:
        return on_close_frame(f.payload);
      case Opcode::text:
      case Opcode::binary:
        if (in_message_) return begin_close(ws::CloseCode::protocol_error, "expected continuation");
        if (f.fin) return on_message(f.opcode == Opcode::text, f.payload);
        in_message_ = true;
        message_text_ = f.opcode == Opcode::text;
        msg_.assign(f.payload);
        return;
      case Opcode::continuation: {
        if (!in_message_)
          return begin_close(ws::CloseCode::protocol_error, "no message to continue");
        msg_.append(f.payload);
        if (!f.fin) return;
        in_message_ = false;
        std::string whole;
        whole.swap(msg_);
        return on_message(message_text_, whole);
      }
    }
  }

  void on_close_frame(std::string_view payload) {
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
  bool within_rate() {
    if (bucket_.take(deps_.clock.now_ms())) {
      violations_ = 0;
      return true;
    }
    if (++violations_ >= deps_.config.limits.ws_abuse_close_after) {
      LOG_INFO("ws conn=" << ref_.conn << " closed: sustained rate-limit violations");
      send_error(make_error(Errc::too_many_requests, "rate limit: closing"), "", nullptr);
      // The error frames already queued go out first (bounded: the close times out).
      begin_close(ws::CloseCode::policy_error, "rate limit");
    } else {
      send_error(make_error(Errc::too_many_requests, "rate limit exceeded, slow down"), "",
                 nullptr);
    }
    return false;
  }

  void on_message(bool text, std::string_view payload) {
    if (!within_rate()) return;
    if (!text) {
      return send_error(make_error(Errc::invalid_argument, "binary frames are not supported"), "",
                        nullptr);
    }
    if (!ws::valid_utf8(payload)) {
      return begin_close(ws::CloseCode::invalid_payload, "text is not UTF-8");
    }
    auto obj = json::parse_object(payload);
    if (!obj) return send_error(obj.error(), "", nullptr);
    auto op = obj->find("op");
    if (op == obj->end() || !op->value().is_string()) {
      return send_error(make_error(Errc::invalid_argument, "op is required"), "", nullptr);
    }
    std::string_view name = op->value().get_string();
    auto it = ops().find(name);
    if (it == ops().end()) {
      return send_error(make_error(Errc::invalid_argument, "unknown op"), name.substr(0, 32),
                        nullptr);
    }
    (this->*(it->second))(*obj);
  }

  // Runs fn on the blocking pool and then `then(result)` on this connection's strand. Parsing
  // pauses meanwhile: the next frame is handled after `then`.
  template <class Fn, class Then>
  void blocking_then(Fn fn, Then then) {
    paused_ = true;
    asio::post(deps_.blocking, [self = shared_from_this(), fn = std::move(fn),
                                then = std::move(then)]() mutable {
      auto r = fn();
      auto ex = self->sock_.get_executor();
      asio::post(ex, [self = std::move(self), r = std::move(r), then = std::move(then)]() mutable {
        then(r);
        self->resume();
      });
    });
  }

  // --- ops

  void op_ping(const bj::object& o) {
    auto t = json::optional_string(o, "t", 64);
    enqueue(gateway::pong_frame(t && *t ? &**t : nullptr), true);
  }

  void op_send(const bj::object& o) {
    auto cid = json::required_string(o, "cid", kMaxCidBytes);
    if (!cid) return send_error(cid.error(), "send", nullptr);
    SendInput in;
    in.cid = std::move(*cid);
    auto fail = [&](const Error& e) { send_error(e, "send", &in.cid); };
    auto to = json::optional_id(o, "to");
    if (!to) return fail(to.error());
    auto channel = json::optional_id(o, "channel");
    if (!channel) return fail(channel.error());
    auto type = json::optional_string(o, "type", 16);
    if (!type) return fail(type.error());
    auto body_it = o.find("body");
    if (body_it == o.end() || !body_it->value().is_string()) {
      return fail(make_error(Errc::invalid_argument, "body must be a string"));
    }
    in.to = *to;
    in.channel = *channel;
    in.type = type->value_or("text");
    in.body = std::string(body_it->value().get_string());
    // Published from this thread when every lookup is in memory (the common case standalone):
    // two thread hand-offs fewer per message. Otherwise on the blocking pool.
    if (auto r = deps_.messaging.try_submit(user_, in, ref_)) {
      if (!*r) fail(r->error());
      return;
    }
    blocking_then([this, in]() { return deps_.messaging.submit(user_, in, ref_); },
                  [this, cid = in.cid](const Result<void>& r) {
                    if (!r) send_error(r.error(), "send", &cid);
                  });
  }

  Result<std::pair<ConvKey, std::uint64_t>> conv_and_seq(const bj::object& o) {
    auto conv = json::required_string(o, "conversation", 64);
    if (!conv) return conv.error();
    auto key = api::parse_conversation(*conv, user_);
    if (!key) return key.error();
    auto seq = json::optional_uint(o, "seq");
    if (!seq) return seq.error();
    if (!*seq) return make_error(Errc::invalid_argument, "seq is required");
    return std::pair{*key, **seq};
  }

  void op_ack(const bj::object& o) {
    auto cs = conv_and_seq(o);
    if (!cs) return send_error(cs.error(), "ack", nullptr);
    auto [conv, seq] = *cs;
    // Answered from memory when it can be (no hand-off), on the blocking pool otherwise.
    if (auto r = deps_.messaging.try_ack(user_, conv, seq)) {
      if (!*r) send_error(r->error(), "ack", nullptr);
      return;
    }
    blocking_then([this, conv, seq] { return deps_.messaging.ack(user_, conv, seq); },
                  [this](const Result<void>& r) {
                    if (!r) send_error(r.error(), "ack", nullptr);
                  });
  }

  void op_read(const bj::object& o) {
    auto cs = conv_and_seq(o);
    if (!cs) return send_error(cs.error(), "read", nullptr);
    auto [conv, seq] = *cs;
    blocking_then([this, conv, seq] { return deps_.messaging.read(user_, conv, seq, ref_); },
                  [this](const Result<std::uint64_t>& r) {
                    if (!r) send_error(r.error(), "read", nullptr);
                  });
  }

  void op_sync(const bj::object& o) {
    Cursors cursors;
    auto it = o.find("cursors");
    if (it != o.end() && !it->value().is_null()) {
      if (!it->value().is_object() || it->value().get_object().size() > 10000) {
        return send_error(
            make_error(Errc::invalid_argument, "cursors must be an object of at most 10000"),
            "sync", nullptr);
      }
      for (const auto& [k, v] : it->value().get_object()) {
        auto key = api::parse_conversation(k, user_);
        if (!key) return send_error(key.error(), "sync", nullptr);
        bj::object one{{"seq", v}};
        auto seq = json::optional_uint(one, "seq");
        if (!seq || !*seq) {
          return send_error(make_error(Errc::invalid_argument, "cursor values must be seqs"),
                            "sync", nullptr);
        }
        cursors[*key] = **seq;
      }
    }
    start_sync(std::move(cursors));
  }
  // --- backfill: what the client misses, in seq order per conversation, then `synced`.
  // While it runs, live message pushes are dropped and flagged; the backfill then reads the
  // store again, so nothing is lost and nothing overtakes the backfill.
  // DMs come from the inbox, unless the client named cursors for them, or the inbox overflowed
  // (its bound dropped entries): then every DM conversation is served from the Store from its
  // delivery cursor. The overflow signal is cleared only by a backfill from the Store that
  // completed and found every DM delivered (delivery cursor at the last seq): until the client
  // has ACKed what the inbox dropped, each (re)connect serves DMs from the Store again.

  void start_sync(std::optional<Cursors> cursors) {
    if (sync_running_) {
      // Merge into the one pending request (bounded: one pending sync per connection).
      if (!sync_pending_) sync_pending_.emplace();
      if (cursors)
        for (auto& [k, v] : *cursors) (*sync_pending_)[k] = v;
      return;
    }
    sync_running_ = true;
    syncing_ = true;
    asio::co_spawn(sock_.get_executor(), sync_loop(shared_from_this(), std::move(cursors)),
                   asio::detached);
  }

  awaitable<void> sync_loop(std::shared_ptr<WsSession> self, std::optional<Cursors> cursors) {
    const auto page = static_cast<std::uint32_t>(deps_.config.ws.sync_page);
    if (!warmed_) {
      // The user is online now: warm their caches beside the backfill, not before it.
      warmed_ = true;
      asio::post(deps_.blocking, [&m = deps_.messaging, user = user_] { m.warm(user); });
    }
    std::uint64_t sent = 0;
    bool failed = false;
    std::uint64_t overflow = 0;   // inbox entries dropped by its bound, as read by this pass
    bool dms_from_store = false;  // this pass serves every DM from the Store
    bool store_gap = false;       // a Store read failed: the overflow is not handled yet
    bool dm_undelivered = false;  // a DM conversation's delivery cursor is behind its last seq
    while (!closed_ && !failed) {
      dirty_ = false;
      store_gap = false;
      dm_undelivered = false;
      // ACKs are written in batches: write the pending ones so the backfill starts from the
      // cursors the client's devices have reported.
      auto state = co_await offload(deps_.blocking, [&] {
        (void)deps_.messaging.flush_acks();
        auto over = deps_.messaging.inbox_overflow(user_);
        overflow = over ? *over : 0;
        // Unknown (the inbox is unreachable): the Store is the safe source.
        dms_from_store = !over || *over > 0;
        return deps_.messaging.sync_state(user_);
      });
      if (!state) {
        send_error(state.error(), "sync", nullptr);
        failed = true;
        break;
      }
      for (const auto& c : *state) {
        bool client_cursor = cursors && cursors->count(c.conv);
        // Channels resume from the member's delivery cursor; DMs come from the inbox below,
        // unless the client named a cursor for them or the inbox overflowed.
        if (c.conv.is_dm() && !client_cursor && !dms_from_store) continue;
        if (c.conv.is_dm() && c.ack_seq < c.last_seq) dm_undelivered = true;
        std::uint64_t from = client_cursor ? cursors->at(c.conv) : c.ack_seq;
        from = std::max(from, delivered(c.conv));
        while (from < c.last_seq && !closed_) {
          auto conv = c.conv;
          auto msgs = co_await offload(deps_.blocking, [&] {
            return framed(deps_.messaging.backlog(user_, conv, from, page));
          });
          if (!msgs) store_gap = true;
          if (!msgs || msgs->empty()) break;
          corked_ = true;
          for (auto& m : *msgs) {
            from = m.seq;
            if (m.seq > delivered(m.conv)) {
              send_backfill(std::move(m));
              ++sent;
            }
          }
          uncork();
          co_await wait_writable();
        }
      }
      std::optional<InboxCursor> after;
      while (!closed_ && !dms_from_store) {
        auto msgs = co_await offload(
            deps_.blocking, [&] { return framed(deps_.messaging.inbox_page(user_, after, page)); });
        if (!msgs) {
          send_error(msgs.error(), "sync", nullptr);
          failed = true;
          break;
        }
        corked_ = true;
        for (auto& m : *msgs) {
          after = InboxCursor{m.conv, m.seq};
          if (cursors && cursors->count(m.conv)) continue;  // served from the store above
          if (m.seq > delivered(m.conv)) {
            send_backfill(std::move(m));
            ++sent;
          }
        }
        uncork();
        if (msgs->size() < page) break;
        co_await wait_writable();
      }
      if (!dirty_) break;
    }
    if (!closed_ && !failed && !store_gap && !dm_undelivered && overflow > 0) {
      auto cleared = co_await offload(
          deps_.blocking, [&] { return deps_.messaging.inbox_overflow_handled(user_, overflow); });
      if (!cleared) LOG_WARN("clearing the inbox overflow of user " << user_ << " failed");
    }
    syncing_ = false;
    sync_running_ = false;
    if (closed_) co_return;
    if (!failed) enqueue(gateway::synced_frame(sent), true);
    if (sync_pending_) {
      auto next = std::move(*sync_pending_);
      sync_pending_.reset();
      start_sync(std::move(next));
    }
  }

  std::uint64_t delivered(const ConvKey& c) const {
    auto it = delivered_.find(c);
    return it == delivered_.end() ? 0 : it->second;
  }

  // A backfill page's messages as frames, built on the blocking pool with the page's read:
  // the connection's strand then only queues them.
  struct Framed {
    ConvKey conv;
    std::uint64_t seq = 0;
    gateway::Frame frame;
  };
  Result<std::vector<Framed>> framed(Result<std::vector<Message>> page) const {
    if (!page) return page.error();
    std::vector<Framed> out;
    out.reserve(page->size());
    for (const auto& m : *page) out.push_back({m.conv, m.seq, gateway::msg_frame(m, user_)});
    return out;
  }

  void send_backfill(Framed&& m) {
    delivered_[m.conv] = m.seq;
    enqueue(std::move(m.frame), true);
  }

  void on_deliver(gateway::OutFrame f) {
    if (closed_) return;
    if (f.is_message) {
      if (syncing_) {
        dirty_ = true;  // the running backfill will read it from the store
        return;
      }
      auto& d = delivered_[f.conv];
      if (f.seq <= d) return;  // already sent by a backfill
      d = f.seq;
    }
    enqueue(std::move(f.text), false);
  }

  // --- writing: a bounded queue; a client that cannot keep up with live traffic is dropped
  // (it resyncs on reconnect). Backfill and replies wait for room instead of dropping.
  // Every frame queued while a write is in flight goes out with the next write: one syscall
  // for many frames. Server frames are final and unmasked, so their headers are written here.

  void enqueue(gateway::Frame frame, bool exempt) {
    if (closed_ || closing_since_ms_.load(std::memory_order_relaxed) != 0) return;
    const auto& lim = deps_.config.limits;
    if (!exempt && (queue_.size() >= static_cast<std::size_t>(lim.ws_write_queue_messages) ||
                    queued_bytes_ >= static_cast<std::size_t>(lim.ws_write_queue_bytes))) {
      LOG_INFO("ws conn=" << ref_.conn << " dropped: write queue full (slow client)");
      return finish("too slow");
    }
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    if (!writing_ && !corked_) write_queued();
  }

  // Writes what was queued while corked_ was set.
  void uncork() {
    corked_ = false;
    if (!writing_ && !closed_ && (!queue_.empty() || !control_.empty() || !close_frame_.empty())) {
      write_queued();
    }
  }

  // Pongs and the close frame, ahead of the queued data frames (control frames may go between
  // whole messages). Bounded: a client that floods pings without reading is dropped.
  void send_control(ws::Opcode op, std::string_view payload) {
    if (closed_) return;
    if (control_.size() > 64 * 1024) return finish("control frames not read");
    control_ += ws::encode_frame(op, payload);
    if (!writing_) write_queued();
  }

  void write_queued() {
    writing_ = true;
    taken_ = 0;
    taken_bytes_ = 0;
    auto done = [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_written(ec);
    };
    if (!control_.empty() || (queue_.empty() && !close_frame_.empty())) {
      // Pongs go first; the close frame last, after every queued frame.
      out_.clear();
      out_.swap(control_.empty() ? close_frame_ : control_);
      return asio::async_write(sock_, asio::buffer(out_), std::move(done));
    }
    out_.clear();
    if (!batch_ || queue_.size() == 1) {
      if (queue_.size() <= kMaxGather) {
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
    }
    const std::size_t max_bytes = kMaxWriteBytes;
    if (batch_) {
      // One {"op":"batch","frames":[...]} frame; its header goes in front once its size is
      // known (kHeadRoom bytes are kept for it).
      static constexpr std::string_view kOpen = R"({"op":"batch","frames":[)";
      const std::size_t limit = static_cast<std::size_t>(deps_.config.limits.max_frame_bytes) * 4;
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
      return asio::async_write(
          sock_, asio::buffer(out_.data() + kHeadRoom - h, out_.size() - kHeadRoom + h),
          std::move(done));
    }
    // A long backlog: copied into one buffer (up to kMaxWriteBytes) for one write.
    while (taken_ < queue_.size() && (taken_ == 0 || out_.size() < max_bytes)) {
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

  void on_written(beast::error_code ec) {
    queue_.pop_front(taken_);
    queued_bytes_ -= taken_bytes_;
    taken_ = 0;
    taken_bytes_ = 0;
    if (ec) return finish("write failed");
    if (closed_) return;
    const auto low_water = static_cast<std::size_t>(deps_.config.ws.sync_page);
    if (queue_.size() <= low_water) writable_.cancel();
    if (!control_.empty() || !queue_.empty() || !close_frame_.empty()) return write_queued();
    writing_ = false;
    // An idle connection keeps no write buffers.
    std::string().swap(out_);
    std::vector<asio::const_buffer>().swap(iov_);
    if (closing_since_ms_.load(std::memory_order_relaxed) != 0) linger_close();
  }

  // Everything, the close frame last, is written: send FIN and read (discarding) until the
  // client closes too. Closing at once would make the kernel answer the client's unread
  // bytes with a reset, which can destroy frames the client has not read yet. The idle sweep
  // closes the socket if the client does not within a second or two.
  void linger_close() {
    if (discarding_) return;
    discarding_ = true;
    beast::error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_send, ignored);
    arm_read();
  }

  awaitable<void> wait_writable() {
    const auto low_water = static_cast<std::size_t>(deps_.config.ws.sync_page);
    while (!closed_ && queue_.size() > low_water) {
      writable_.expires_after(std::chrono::seconds(30));
      auto [ec] = co_await writable_.async_wait(kTuple);
      if (!ec && queue_.size() > low_water) {
        // 30 s without progress: the client is not reading.
        finish("too slow");
      }
    }
  }

  void send_error(const Error& e, std::string_view op, const std::string* cid) {
    enqueue(gateway::error_frame(e, op, cid), true);
  }

  // The closing handshake: stop reading, send what is queued and a close frame, then close
  // the socket (the idle sweep closes it if the write does not finish within a second or two).
  void begin_close(ws::CloseCode code, const char* reason) {
    if (closed_ || closing_since_ms_.load(std::memory_order_relaxed) != 0) return;
    LOG_DEBUG("ws conn=" << ref_.conn << " closing: " << reason << " (" << int(code) << ")");
    in_message_ = false;
    std::string().swap(msg_);
    std::string().swap(rx_);
    close_frame_ = ws::encode_frame(ws::Opcode::close, ws::close_payload(code, reason));
    closing_since_ms_.store(steady_ms(), std::memory_order_relaxed);
    if (!writing_) write_queued();
  }

  // Closes the socket and detaches the connection; once. `why` is logged when set.
  void finish(const char* why) {
    if (closed_) return;
    closed_ = true;
    if (why) LOG_DEBUG("ws conn=" << ref_.conn << " closed: " << why);
    writable_.cancel();
    beast::error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_both, ignored);
    sock_.close(ignored);
    deps_.hub.detach(ref_);
    asio::post(deps_.blocking, [self = shared_from_this()] {
      self->deps_.routes.remove(self->user_, self->ref_);
      // The user may reconnect through another gateway at once: let it find their ACKs stored.
      self->deps_.messaging.flush_soon();
    });
    LOG_DEBUG("ws closed user=" << user_ << " conn=" << ref_.conn);
  }

  static constexpr std::size_t kMaxWriteBytes = 256 * 1024;
  static constexpr std::size_t kMaxGather = 32;  // frames per gathered write (64 iovecs)
  static constexpr std::size_t kHeadRoom = 10;

  tcp::socket sock_;
  ServerDeps& deps_;
  const Id user_;
  const bool batch_;
  ConnRef ref_;
  TokenBucket bucket_;
  std::int64_t violations_ = 0;
  bool closed_ = false;
  bool paused_ = false;      // an op runs on the blocking pool; parsing waits for it
  bool in_message_ = false;  // a fragmented message is being assembled in msg_
  bool message_text_ = false;
  bool discarding_ = false;  // closed on our side: reading only until the client closes
  std::atomic<std::int64_t> closing_since_ms_{0};  // the close handshake started (steady ms)
  std::string rx_;   // the start of a frame that has not fully arrived
  std::string msg_;  // the fragments of a message so far

  FrameQueue queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool corked_ = false;    // frames are being queued in a burst: write once it is over
  std::size_t taken_ = 0;  // frames and bytes of the write in flight
  std::size_t taken_bytes_ = 0;
  std::string out_;                      // the write in flight: frame headers, or whole frames
  std::vector<asio::const_buffer> iov_;  // a gathered write in flight
  std::string control_;                  // encoded pongs waiting for the next write
  std::string close_frame_;              // the close frame, written after everything queued
  asio::steady_timer writable_;
  std::atomic<std::int64_t> last_rx_ms_;

  bool syncing_ = false;
  bool sync_running_ = false;
  bool dirty_ = false;
  bool warmed_ = false;
  std::optional<Cursors> sync_pending_;
  std::unordered_map<ConvKey, std::uint64_t, ConvKeyHash> delivered_;
};

void Server::Impl::track(std::weak_ptr<WsSession> s) {
  std::lock_guard lock(sessions_mu);
  sessions.push_back(std::move(s));
}

// Closes the connections that received nothing for two heartbeat intervals, and the ones whose
// close handshake did not finish within a second; forgets the closed ones.
void Server::Impl::sweep() {
  const auto now = WsSession::steady_ms();
  const auto idle_cutoff = now - 2000 * deps.config.ws.heartbeat_s;
  const auto closing_cutoff = now - 1000;
  {
    std::lock_guard lock(sessions_mu);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      auto s = sessions[i].lock();
      if (!s) continue;
      if (s->stale(idle_cutoff, closing_cutoff)) s->expire();
      if (kept != i) sessions[kept] = std::move(sessions[i]);  // (a self-move would empty it)
      ++kept;
    }
    sessions.resize(kept);
    if (sessions.capacity() > 1024 && kept * 4 < sessions.capacity()) sessions.shrink_to_fit();
  }
  sweep_timer->expires_after(std::chrono::milliseconds(500));
  sweep_timer->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->sweep();
  });
}

// ---------------------------------------------------------------------------------------------

Server::Server(asio::io_context& io, ServerDeps deps)
    : impl_(std::make_shared<Impl>(io, std::move(deps))) {}

Server::~Server() = default;

std::string Server::start() {
  const std::string& listen = impl_->deps.config.listen;
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)));
  tcp::resolver resolver(impl_->io);
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive);
  tcp::endpoint ep = results.begin()->endpoint();
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol());
  acc.set_option(asio::socket_base::reuse_address(true));
  acc.bind(ep);
  acc.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->sweep_timer = std::make_unique<asio::steady_timer>(asio::make_strand(impl_->io));
  impl_->sweep();
  auto bound = acc.local_endpoint();
  std::ostringstream os;
  if (bound.address().is_v6()) {
    os << "[" << bound.address().to_string() << "]:" << bound.port();
  } else {
    os << bound.address().to_string() << ":" << bound.port();
  }
  return os.str();
}

void Server::stop() {
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  if (impl_->sweep_timer) {
    asio::post(impl_->sweep_timer->get_executor(), [impl = impl_] { impl->sweep_timer->cancel(); });
  }
}

awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      LOG_WARN("accept failed: " << ec.message());
      asio::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    auto ex = socket.get_executor();
    asio::co_spawn(ex, http_session(std::move(socket)), asio::detached);
  }
}

api::HttpResponse Server::Impl::serve_static(const std::string& target) {
  api::HttpResponse r;
  auto not_found = [&] {
    r.status = 404;
    r.body = api::error_body(make_error(Errc::not_found, "no such page"));
    return r;
  };
  if (deps.web_root.empty()) return not_found();
  auto path = static_path(deps.web_root, target);
  if (!path) return not_found();
  std::string body;
  bool spa_fallback = false;
  if (!read_file(*path, body)) {
    // SPA fallback: client-side routes (no file extension) get index.html.
    auto slash = path->rfind('/');
    if (path->find('.', slash) != std::string::npos) return not_found();
    if (!read_file(deps.web_root + "/index.html", body)) return not_found();
    spa_fallback = true;
  }
  r.content_type = spa_fallback ? "text/html; charset=utf-8" : std::string(content_type_for(*path));
  r.body = std::move(body);
  bool hashed = target.rfind("/assets/", 0) == 0;
  r.headers.emplace_back("Cache-Control",
                         hashed ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

awaitable<void> Server::Impl::http_session(tcp::socket socket) {
  auto self = shared_from_this();
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buf;
  std::string remote_ip;
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote_ip = ep.address().to_string();
  }
  const auto& cfg = deps.config;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(static_cast<std::uint64_t>(cfg.limits.max_http_body_bytes));
    parser.header_limit(16 * 1024);
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(stream, buf, parser, kTuple);
    if (ec) {
      if (ec == http::error::body_limit) {
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::connection, "close");
        res.body() = api::error_body(make_error(Errc::payload_too_large, "request body too large"));
        res.prepare_payload();
        co_await http::async_write(stream, res, kTuple);
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::connection_reset && ec != asio::error::eof) {
        http::response<http::string_body> res{http::status::bad_request, 11};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::connection, "close");
        res.body() = api::error_body(make_error(Errc::invalid_argument, "malformed HTTP request"));
        res.prepare_payload();
        co_await http::async_write(stream, res, kTuple);
      }
      break;
    }
    http::request<http::string_body> req = parser.release();
    std::string target(req.target());
    std::string_view path = std::string_view(target).substr(0, target.find('?'));

    if (websocket::is_upgrade(req)) {
      api::HttpResponse deny;
      deny.status = 0;
      if (path != "/ws") {
        deny.status = 404;
        deny.body = api::error_body(make_error(Errc::not_found, "WebSocket endpoint is /ws"));
      } else if (!deps.serve_ws) {
        deny.status = 404;
        deny.body = api::error_body(
            make_error(Errc::not_found, "this process has no gateway role: no WebSocket here"));
      } else if (req[http::field::sec_websocket_version] != "13") {
        deny.status = 426;
        deny.body =
            api::error_body(make_error(Errc::invalid_argument, "Sec-WebSocket-Version must be 13"));
      } else if (!ws::valid_client_key(req[http::field::sec_websocket_key])) {
        deny.status = 400;
        deny.body = api::error_body(
            make_error(Errc::invalid_argument, "Sec-WebSocket-Key must be 16 bytes in base64"));
      } else {
        std::string token;
        bool batch = false;
        if (auto url = boost::urls::parse_origin_form(target)) {
          for (auto qp : url->params()) {
            if (qp.key == "token" || qp.key == "access_token") token = qp.value;
            if (qp.key == "batch") batch = qp.value == "1" || qp.value == "true";
          }
        }
        auto h = req[http::field::authorization];
        if (token.empty() && h.size() > 7 && h.substr(0, 7) == "Bearer ") {
          token = std::string(h.substr(7));
        }
        auto user = deps.auth.authenticate(token);
        if (!user) {
          deny.status = 401;
          deny.body = api::error_body(user.error());
        } else if (deps.hub.size() >= static_cast<std::size_t>(cfg.limits.max_connections)) {
          deny.status = 503;
          deny.body = api::error_body(make_error(Errc::unavailable, "too many connections"));
        } else {
          http::response<http::empty_body> res{http::status::switching_protocols, req.version()};
          res.set(http::field::server, "imd");
          res.set(http::field::upgrade, "websocket");
          res.set(http::field::connection, "Upgrade");
          res.set(http::field::sec_websocket_accept,
                  ws::accept_key(req[http::field::sec_websocket_key]));
          auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
          if (wec) break;
          // From here on the connection speaks WebSocket through our own frame codec (see
          // ws_frame.hpp); bytes the client sent right behind its request go along.
          std::string early = beast::buffers_to_string(buf.data());
          stream.expires_never();
          auto session = std::make_shared<WsSession>(stream.release_socket(), deps, *user, batch);
          track(session);
          session->start(std::move(early));
          co_return;
        }
      }
      http::response<http::string_body> res{static_cast<http::status>(deny.status), req.version()};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::connection, "close");
      if (deny.status == 426) res.set(http::field::sec_websocket_version, "13");
      res.body() = std::move(deny.body);
      res.prepare_payload();
      co_await http::async_write(stream, res, kTuple);
      break;
    }

    api::HttpResponse out;
    // /healthz and /metrics are served by every role.
    const bool every_role = path == "/healthz" || path == "/metrics";
    if (!deps.serve_rest && !every_role) {
      out.status = 404;
      out.body = api::error_body(
          make_error(Errc::not_found, "this process has no api role: no REST API here"));
    } else if (path.rfind("/api/", 0) == 0 || every_role) {
      api::HttpRequest in;
      in.method = std::string(req.method_string());
      in.target = target;
      in.authorization = std::string(req[http::field::authorization]);
      in.content_type = std::string(req[http::field::content_type]);
      in.body = std::move(req.body());
      in.remote_ip = client_ip(remote_ip, req["X-Forwarded-For"]);
      // Answered on this thread when everything it needs is in memory (a history page read
      // before): two thread hand-offs fewer. Otherwise on the blocking pool.
      if (auto fast = deps.rest.try_handle(in)) {
        out = std::move(*fast);
      } else {
        out = co_await offload(deps.blocking, [&] { return deps.rest.handle(in); });
      }
    } else if (req.method() == http::verb::get || req.method() == http::verb::head) {
      out = co_await offload(deps.blocking, [&] { return serve_static(target); });
    } else {
      out.status = 405;
      out.body = api::error_body(make_error(Errc::invalid_argument, "method not allowed"));
    }

    http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
    res.set(http::field::server, "imd");
    if (!out.content_type.empty()) res.set(http::field::content_type, out.content_type);
    for (auto& [k, v] : out.headers) res.set(k, v);
    res.keep_alive(req.keep_alive());
    if (req.method() != http::verb::head) res.body() = std::move(out.body);
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace imd::net
