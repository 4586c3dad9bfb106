#include "net/server.hpp"

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
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
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include "api/views.hpp"
#include "common/forwarded.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/rate_limiter.hpp"
#include "net/offload.hpp"

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
};

// ---------------------------------------------------------------------------------------------
// WebSocket session: one per connection, all state on its strand.

class WsSession final : public gateway::Connection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, ServerDeps& deps, Id user, bool batch)
      : ws_(std::move(stream)),
        deps_(deps),
        user_(user),
        batch_(batch),
        bucket_(static_cast<double>(deps.config.limits.ws_rate_per_s),
                static_cast<double>(deps.config.limits.ws_burst)),
        writable_(ws_.get_executor()) {}

  // The handshake runs in a coroutine of its own, so that the upgrade request and the
  // handshake's state are freed once it is done; the long-lived serve() frame stays small.
  void start(http::request<http::string_body> req) {
    auto self = shared_from_this();
    asio::co_spawn(ws_.get_executor(), handshake(std::move(req)),
                   [self](std::exception_ptr e, bool open) {
                     if (!e && open) {
                       asio::co_spawn(self->ws_.get_executor(), self->serve(self), asio::detached);
                     }
                   });
  }

  void deliver(std::vector<gateway::OutFrame> frames) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), fs = std::move(frames)]() mutable {
      for (auto& f : fs) self->on_deliver(std::move(f));
    });
  }

 private:
  using Cursors = std::map<ConvKey, std::uint64_t>;
  using OpHandler = awaitable<void> (WsSession::*)(const bj::object&);

  static const std::unordered_map<std::string_view, OpHandler>& ops() {
    static const std::unordered_map<std::string_view, OpHandler> kOps = {
        {"ping", &WsSession::op_ping}, {"send", &WsSession::op_send}, {"ack", &WsSession::op_ack},
        {"read", &WsSession::op_read}, {"sync", &WsSession::op_sync},
    };
    return kOps;
  }

  awaitable<bool> handshake(http::request<http::string_body> req) {
    const auto& cfg = deps_.config;
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    // The client heartbeats every heartbeat_s; nothing received for two beats closes.
    t.idle_timeout = std::chrono::seconds(2 * cfg.ws.heartbeat_s);
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.read_message_max(static_cast<std::size_t>(cfg.limits.max_frame_bytes));
    ws_.auto_fragment(false);
    auto [ec] = co_await ws_.async_accept(req, kTuple);
    if (ec) co_return false;

    ref_ = deps_.hub.attach(user_, weak_from_this());
    // Routes may live in Redis: a network round trip belongs on the blocking pool.
    co_await offload(deps_.blocking, [&] {
      deps_.routes.add(user_, ref_);
      return 0;
    });
    LOG_DEBUG("ws open user=" << user_ << " conn=" << ref_.conn);
    enqueue(gateway::hello_frame(ref_.conn, user_, cfg.ws.heartbeat_s), true);
    start_sync(std::nullopt);
    co_return true;
  }

  // Reads frames until the connection ends, then detaches it. Lives as long as the connection.
  awaitable<void> serve(std::shared_ptr<WsSession> self) {
    {
      // One message is read in pieces of at most kReadChunk bytes: an idle connection then
      // holds a buffer of that size, not the 1.5 KiB that Beast prepares for a whole read.
      static constexpr std::size_t kReadChunk = 256;
      beast::flat_buffer buf;
      while (!closed_ && !draining_) {
        beast::error_code ec;
        do {
          auto [e, n] = co_await ws_.async_read_some(buf, kReadChunk, kTuple);
          ec = e;
        } while (!ec && !ws_.is_message_done());
        if (ec) {
          if (ec == websocket::error::message_too_big) {
            LOG_INFO("ws conn=" << ref_.conn << " closed: frame over the size limit");
          }
          break;
        }
        std::string text = beast::buffers_to_string(buf.data());
        buf.consume(buf.size());
        if (buf.capacity() > 4 * kReadChunk) buf.shrink_to_fit();  // after a big message
        co_await handle_frame(text);
      }
    }
    if (draining_) {
      // An abusive client still gets the error frames already queued (bounded: 1 s).
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!closed_ && (writing_ || !queue_.empty()) &&
             std::chrono::steady_clock::now() < deadline) {
        writable_.expires_after(std::chrono::milliseconds(20));
        co_await writable_.async_wait(kTuple);
      }
      close_now(websocket::close_code::policy_error, "rate limit");
    }

    closed_ = true;
    co_await offload(deps_.blocking, [&] {
      deps_.routes.remove(user_, ref_);
      return 0;
    });
    deps_.hub.detach(ref_);
    // The user may reconnect through another gateway at once: let it find their ACKs stored.
    deps_.messaging.flush_soon();
    writable_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    LOG_DEBUG("ws closed user=" << user_ << " conn=" << ref_.conn);
  }

  awaitable<void> handle_frame(const std::string& text) {
    const auto& lim = deps_.config.limits;
    if (!bucket_.take(deps_.clock.now_ms())) {
      if (++violations_ >= lim.ws_abuse_close_after) {
        LOG_INFO("ws conn=" << ref_.conn << " closed: sustained rate-limit violations");
        send_error(make_error(Errc::too_many_requests, "rate limit: closing"), "", nullptr);
        draining_ = true;  // stop reading; run() closes once the error frames are out
        co_return;
      }
      send_error(make_error(Errc::too_many_requests, "rate limit exceeded, slow down"), "",
                 nullptr);
      co_return;
    }
    violations_ = 0;
    if (!ws_.got_text()) {
      send_error(make_error(Errc::invalid_argument, "binary frames are not supported"), "",
                 nullptr);
      co_return;
    }
    auto obj = json::parse_object(text);
    if (!obj) {
      send_error(obj.error(), "", nullptr);
      co_return;
    }
    auto op = obj->find("op");
    if (op == obj->end() || !op->value().is_string()) {
      send_error(make_error(Errc::invalid_argument, "op is required"), "", nullptr);
      co_return;
    }
    std::string_view name = op->value().get_string();
    auto it = ops().find(name);
    if (it == ops().end()) {
      send_error(make_error(Errc::invalid_argument, "unknown op"), name.substr(0, 32), nullptr);
      co_return;
    }
    co_await (this->*(it->second))(*obj);
  }

  // --- ops

  awaitable<void> op_ping(const bj::object& o) {
    auto t = json::optional_string(o, "t", 64);
    enqueue(gateway::pong_frame(t && *t ? &**t : nullptr), true);
    co_return;
  }

  awaitable<void> op_send(const bj::object& o) {
    auto cid = json::required_string(o, "cid", kMaxCidBytes);
    if (!cid) {
      send_error(cid.error(), "send", nullptr);
      co_return;
    }
    SendInput in;
    in.cid = std::move(*cid);
    auto fail = [&](const Error& e) { send_error(e, "send", &in.cid); };
    auto to = json::optional_id(o, "to");
    if (!to) co_return fail(to.error());
    auto channel = json::optional_id(o, "channel");
    if (!channel) co_return fail(channel.error());
    auto type = json::optional_string(o, "type", 16);
    if (!type) co_return fail(type.error());
    auto body_it = o.find("body");
    if (body_it == o.end() || !body_it->value().is_string()) {
      co_return fail(make_error(Errc::invalid_argument, "body must be a string"));
    }
    in.to = *to;
    in.channel = *channel;
    in.type = type->value_or("text");
    in.body = std::string(body_it->value().get_string());
    // Published from this thread when every lookup is in memory (the common case standalone):
    // two thread hand-offs fewer per message. Otherwise on the blocking pool.
    auto r = deps_.messaging.try_submit(user_, in, ref_);
    if (!r) {
      r = co_await offload(deps_.blocking, [&] { return deps_.messaging.submit(user_, in, ref_); });
    }
    if (!*r) fail(r->error());
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

  awaitable<void> op_ack(const bj::object& o) {
    auto cs = conv_and_seq(o);
    if (!cs) co_return send_error(cs.error(), "ack", nullptr);
    ConvKey conv = cs->first;
    std::uint64_t seq = cs->second;
    // Answered from memory when it can be (no hand-off), on the blocking pool otherwise.
    auto r = deps_.messaging.try_ack(user_, conv, seq);
    if (!r) {
      r = co_await offload(deps_.blocking, [&] { return deps_.messaging.ack(user_, conv, seq); });
    }
    if (!*r) send_error(r->error(), "ack", nullptr);
  }

  awaitable<void> op_read(const bj::object& o) {
    auto cs = conv_and_seq(o);
    if (!cs) co_return send_error(cs.error(), "read", nullptr);
    ConvKey conv = cs->first;
    std::uint64_t seq = cs->second;
    auto r = co_await offload(deps_.blocking,
                              [&] { return deps_.messaging.read(user_, conv, seq, ref_); });
    if (!r) send_error(r.error(), "read", nullptr);
  }

  awaitable<void> op_sync(const bj::object& o) {
    Cursors cursors;
    auto it = o.find("cursors");
    if (it != o.end() && !it->value().is_null()) {
      if (!it->value().is_object() || it->value().get_object().size() > 10000) {
        co_return send_error(
            make_error(Errc::invalid_argument, "cursors must be an object of at most 10000"),
            "sync", nullptr);
      }
      for (const auto& [k, v] : it->value().get_object()) {
        auto key = api::parse_conversation(k, user_);
        if (!key) co_return send_error(key.error(), "sync", nullptr);
        bj::object one{{"seq", v}};
        auto seq = json::optional_uint(one, "seq");
        if (!seq || !*seq) {
          co_return send_error(make_error(Errc::invalid_argument, "cursor values must be seqs"),
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
    asio::co_spawn(ws_.get_executor(), sync_loop(shared_from_this(), std::move(cursors)),
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
          auto msgs = co_await offload(
              deps_.blocking, [&] { return deps_.messaging.backlog(user_, conv, from, page); });
          if (!msgs) store_gap = true;
          if (!msgs || msgs->empty()) break;
          for (const auto& m : *msgs) {
            if (m.seq > delivered(m.conv)) {
              send_backfill(m);
              ++sent;
            }
            from = m.seq;
          }
          co_await wait_writable();
        }
      }
      std::optional<InboxCursor> after;
      while (!closed_ && !dms_from_store) {
        auto msgs = co_await offload(
            deps_.blocking, [&] { return deps_.messaging.inbox_page(user_, after, page); });
        if (!msgs) {
          send_error(msgs.error(), "sync", nullptr);
          failed = true;
          break;
        }
        for (const auto& m : *msgs) {
          after = InboxCursor{m.conv, m.seq};
          if (cursors && cursors->count(m.conv)) continue;  // served from the store above
          if (m.seq > delivered(m.conv)) {
            send_backfill(m);
            ++sent;
          }
        }
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

  void send_backfill(const Message& m) {
    delivered_[m.conv] = m.seq;
    enqueue(gateway::msg_frame(m, user_), true);
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

  void enqueue(gateway::Frame frame, bool exempt) {
    if (closed_) return;
    const auto& lim = deps_.config.limits;
    if (!exempt && (queue_.size() >= static_cast<std::size_t>(lim.ws_write_queue_messages) ||
                    queued_bytes_ >= static_cast<std::size_t>(lim.ws_write_queue_bytes))) {
      LOG_INFO("ws conn=" << ref_.conn << " dropped: write queue full (slow client)");
      close_now(websocket::close_code::try_again_later, "too slow");
      return;
    }
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    if (!writing_) {
      writing_ = true;
      asio::co_spawn(ws_.get_executor(), write_loop(shared_from_this()), asio::detached);
    }
  }

  // With batching (opt-in at connect: /ws?batch=1), frames that queued up while the previous
  // write was in flight go out together as one {"op":"batch","frames":[...]} frame: one
  // WebSocket frame and one write for many messages.
  awaitable<void> write_loop(std::shared_ptr<WsSession> self) {
    const auto low_water = static_cast<std::size_t>(deps_.config.ws.sync_page);
    std::string batch;
    while (!queue_.empty() && !closed_) {
      std::size_t taken = 1, bytes = queue_.front()->size();
      asio::const_buffer out = asio::buffer(*queue_.front());
      if (batch_ && queue_.size() > 1) {
        static constexpr std::string_view kHead = R"({"op":"batch","frames":[)";
        const std::size_t limit = static_cast<std::size_t>(deps_.config.limits.max_frame_bytes) * 4;
        batch.assign(kHead);
        batch.append(*queue_.front());
        while (taken < queue_.size() && batch.size() + queue_[taken]->size() < limit) {
          batch.push_back(',');
          batch.append(*queue_[taken]);
          bytes += queue_[taken]->size();
          ++taken;
        }
        batch.append("]}");
        out = asio::buffer(batch);
      }
      ws_.text(true);
      auto [ec, n] = co_await ws_.async_write(out, kTuple);
      queue_.pop_front(taken);
      queued_bytes_ -= bytes;
      if (batch.capacity() > 64 * 1024) std::string().swap(batch);
      if (ec) {
        close_now(websocket::close_code::going_away, "write failed");
        break;
      }
      if (queue_.size() <= low_water) writable_.cancel();
    }
    writing_ = false;
    writable_.cancel();
  }

  awaitable<void> wait_writable() {
    const auto low_water = static_cast<std::size_t>(deps_.config.ws.sync_page);
    while (!closed_ && queue_.size() > low_water) {
      writable_.expires_after(std::chrono::seconds(30));
      auto [ec] = co_await writable_.async_wait(kTuple);
      if (!ec && queue_.size() > low_water) {
        // 30 s without progress: the client is not reading.
        close_now(websocket::close_code::try_again_later, "too slow");
      }
    }
  }

  void send_error(const Error& e, std::string_view op, const std::string* cid) {
    enqueue(gateway::error_frame(e, op, cid), true);
  }

  void close_now(websocket::close_code code, const char* reason) {
    if (closed_) return;
    closed_ = true;
    writable_.cancel();
    LOG_DEBUG("ws conn=" << ref_.conn << " closing: " << reason << " (" << int(code) << ")");
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  // permessage-deflate is not offered: compiling it out saves ~1 KiB per connection.
  websocket::stream<beast::tcp_stream, false> ws_;
  ServerDeps& deps_;
  const Id user_;
  const bool batch_;
  ConnRef ref_;
  TokenBucket bucket_;
  std::int64_t violations_ = 0;
  bool closed_ = false;
  bool draining_ = false;  // closing: no more reads, the queued frames still go out

  FrameQueue queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  asio::steady_timer writable_;

  bool syncing_ = false;
  bool sync_running_ = false;
  bool dirty_ = false;
  bool warmed_ = false;
  std::optional<Cursors> sync_pending_;
  std::unordered_map<ConvKey, std::uint64_t, ConvKeyHash> delivered_;
};

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
          std::make_shared<WsSession>(std::move(stream), deps, *user, batch)->start(std::move(req));
          co_return;
        }
      }
      http::response<http::string_body> res{static_cast<http::status>(deny.status), req.version()};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::connection, "close");
      res.body() = std::move(deny.body);
      res.prepare_payload();
      co_await http::async_write(stream, res, kTuple);
      break;
    }

    api::HttpResponse out;
    if (!deps.serve_rest && path != "/healthz") {
      out.status = 404;
      out.body = api::error_body(
          make_error(Errc::not_found, "this process has no api role: no REST API here"));
    } else if (path.rfind("/api/", 0) == 0 || path == "/healthz") {
      api::HttpRequest in;
      in.method = std::string(req.method_string());
      in.target = target;
      in.authorization = std::string(req[http::field::authorization]);
      in.content_type = std::string(req[http::field::content_type]);
      in.body = std::move(req.body());
      in.remote_ip = client_ip(remote_ip, req["X-Forwarded-For"]);
      out = co_await offload(deps.blocking, [&] { return deps.rest.handle(in); });
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
