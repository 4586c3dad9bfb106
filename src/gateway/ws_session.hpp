// The WebSocket protocol of one connection (docs/protocol.md), above its transport: the op
// table (one entry and one handler per client op), the backfill on connect and on `sync`
// (SyncService), and live pushes ordered against it (no duplicate, nothing overtaking the
// backfill). The transport (WsTransport, net::WsConnection) hands it whole text messages that
// passed the rate limit and UTF-8 check, and the pushes the Hub delivered.
//
// Threading: every member function runs on the connection's strand. Blocking service calls go
// to the blocking pool through offload() (common/offload.hpp); reading pauses meanwhile, so
// the ops of one connection keep their order. Owned by the transport, which outlives it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/rate_limiter.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/ports/routes.hpp"
#include "domain/presence_service.hpp"
#include "domain/sync_service.hpp"
#include "gateway/hub.hpp"
#include "gateway/ws_transport.hpp"

namespace imd::gateway {

// What every session of a process shares.
struct WsContext {
  const Config& config;
  AuthService& auth;
  MessagingService& messaging;
  SyncService& sync;
  Routes& routes;
  Hub& hub;
  Clock& clock;
  boost::asio::thread_pool& blocking;
  PresenceService& presence;
};

class WsSession {
 public:
  // `token_expires_ms`: when the access token the client connected with ends (Unix ms);
  // `login_session`: the login session it was issued from (0: none).
  WsSession(WsContext& ctx, WsTransport& transport, Id user, Millis token_expires_ms,
            Id login_session);

  // Attaches to the hub as `self`, adds the route, says hello, then backfills. Reading is
  // paused until the route is added.
  void open(std::weak_ptr<Connection> self);
  // A whole text message from the client.
  void on_text(std::string_view payload);
  // Frames the Hub delivered to this connection, in order.
  void on_deliver(std::vector<OutFrame> frames);
  // The transport closed: detach from the hub and the routes. Once.
  void on_closed();

  void send_error(const Error& e, std::string_view op, const std::string* cid);
  ConnRef ref() const { return ref_; }
  // Whether the access token ended at `now` without an `auth` renewing it (any thread).
  bool token_expired(Millis now) const {
    return now >= token_expires_ms_.load(std::memory_order_relaxed);
  }
  // The login session of the token that opened or last renewed the connection (any thread).
  Id login_session() const { return login_session_.load(std::memory_order_relaxed); }

 private:
  using OpHandler = void (WsSession::*)(const boost::json::object&);
  struct Op {
    std::string_view name;
    OpHandler handler;
  };
  static const Op kOps[];

  void op_ping(const boost::json::object& o);
  void op_send(const boost::json::object& o);
  void op_ack(const boost::json::object& o);
  void op_read(const boost::json::object& o);
  void op_sync(const boost::json::object& o);
  void op_auth(const boost::json::object& o);
  void op_edit(const boost::json::object& o);
  void op_delete(const boost::json::object& o);
  void op_typing(const boost::json::object& o);
  void op_react(const boost::json::object& o);
  void op_presence_sub(const boost::json::object& o);
  void op_idle(const boost::json::object& o);
  void op_away(const boost::json::object& o);
  // idle and away: the boolean field `op`, the presence rate, then apply(value) on the pool.
  void presence_flag(const boost::json::object& o, std::string_view op,
                     std::function<Result<void>(bool)> apply);
  // edit and delete: the message id, then MessagingService::change on the pool.
  void change_op(const boost::json::object& o, ChangeInput in);

  // After the grace (ws.presence_grace_ms), on the pool: PresenceService::settle.
  static void settle_later(WsContext& ctx, Id user, boost::asio::any_io_executor ex);
  // fn() on the blocking pool with reading paused, then then(result) on the strand.
  template <class Fn, class Then>
  void on_pool(Fn fn, Then then);
  // Inline first (common/offload.hpp): messaging.try_fn(args...) on this thread; when it steps
  // aside, messaging.fn(args...) through on_pool(). then(result) on the strand either way.
  template <class R, class... P, class Then, class... A>
  void inline_first(std::optional<R> (MessagingService::*try_fn)(P...),
                    R (MessagingService::*fn)(P...), Then then, A&&... args);

  // imd_ws_frames_sent_total{op}: the frames this session queues itself (the Hub counts pushes).
  static void count_sent(std::string_view op, std::uint64_t n = 1);
  // A backfill request: the client's message cursors (nullopt on connect) and change cursors.
  struct SyncRequest {
    std::optional<SyncCursors> cursors;
    ChangeCursors changes;
  };
  void start_sync(SyncRequest req);
  boost::asio::awaitable<void> sync_loop(SyncRequest req);
  // A live change frame: sent when it is the next rev of its conversation for this connection,
  // dropped when the connection has it; a gap (a change missed) drops it and asks for a
  // backfill, which reads the changes from the Store in order. Returns whether to send it.
  bool take_live_change(const OutFrame& f, bool& gap);
  // Drops the watched users this connection's user may no longer see, on the pool: at once
  // after a removal, else at most once per kPresenceRecheckMs while presence frames arrive (so
  // a watch outlives a lost shared space by at most that long).
  void recheck_presence(bool now);

  WsContext& ctx_;
  WsTransport& t_;
  const Id user_;
  std::atomic<Millis> token_expires_ms_;
  std::atomic<Id> login_session_;
  ConnRef ref_;
  bool syncing_ = false;  // a backfill runs: live message pushes are dropped (dirty_)
  bool dirty_ = false;    // a live message was dropped: the backfill makes another pass
  bool warmed_ = false;
  std::optional<SyncRequest> sync_pending_;  // one `sync` waiting for the running backfill
  Delivered delivered_;  // the last seq sent per conversation, backfill and live alike
  Revs revs_;            // where the connection stands in each conversation's changes
  // `typing` frames of this connection: 1 per second, bursts of 3 (docs/protocol.md).
  TokenBucket typing_rate_{1.0, 3.0};
  // `react` frames of this connection: 5 per second, bursts of 10.
  TokenBucket react_rate_{5.0, 10.0};
  // `presence_sub`, `idle` and `away` frames of this connection together: 2 per second, bursts
  // of 5 (each may cost hundreds of lookups).
  TokenBucket presence_rate_{2.0, 5.0};
  // The users this connection watches (sorted; PresenceService::subscribe computes it on a
  // copy). On the strand only.
  std::vector<Id> watching_;
  std::uint64_t watch_gen_ = 0;  // +1 per presence_sub answer: a recheck of an older list yields
  bool presence_checking_ = false;
  Millis presence_checked_ms_ = 0;
};

}  // namespace imd::gateway
