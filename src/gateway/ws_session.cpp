#include "gateway/ws_session.hpp"

#include <algorithm>
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/json.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/offload.hpp"
#include "wire/views.hpp"

namespace imd::gateway {

namespace asio = boost::asio;
namespace bj = boost::json;

// The client ops of docs/protocol.md. Adding one: an entry here and its handler.
const WsSession::Op WsSession::kOps[] = {
    {"ping", &WsSession::op_ping},
    {"send", &WsSession::op_send},
    {"ack", &WsSession::op_ack},
    {"read", &WsSession::op_read},
    {"sync", &WsSession::op_sync},
    {"edit", &WsSession::op_edit},
    {"delete", &WsSession::op_delete},
    {"typing", &WsSession::op_typing},
    {"react", &WsSession::op_react},
    {"auth", &WsSession::op_auth},
    {"presence_sub", &WsSession::op_presence_sub},
    {"idle", &WsSession::op_idle},
    {"away", &WsSession::op_away},
};

WsSession::WsSession(WsContext& ctx, WsTransport& transport, Id user, Millis token_expires_ms,
                     Id login_session)
    : ctx_(ctx),
      t_(transport),
      user_(user),
      token_expires_ms_(token_expires_ms),
      login_session_(login_session) {}

void WsSession::open(std::weak_ptr<Connection> self) {
  ref_ = ctx_.hub.attach(user_, std::move(self));
  t_.pause_reading();
  asio::co_spawn(
      t_.executor(),
      [this, hold = t_.hold()]() -> asio::awaitable<void> {
        // Routes may live in Redis: a network round trip belongs on the blocking pool.
        co_await offload(ctx_.blocking, [&] {
          ctx_.routes.add(user_, ref_);
          ctx_.presence.connected(user_, ref_);
          return true;
        });
        if (t_.closed()) {
          // on_closed()'s removal may have run first on another pool thread.
          co_await offload(ctx_.blocking, [&] {
            ctx_.routes.remove(user_, ref_);
            if (ctx_.presence.disconnected(user_, ref_)) {
              settle_later(ctx_, user_, t_.executor());
            }
            return true;
          });
          co_return;
        }
        LOG_DEBUG("ws open user=" << user_ << " conn=" << ref_.conn);
        count_sent("hello");
        t_.send(wire::hello_frame(ref_.conn, user_, ctx_.config.ws.heartbeat_s,
                                  token_expires_ms_.load(std::memory_order_relaxed)),
                true);
        start_sync({});
        t_.resume_reading();
      },
      asio::detached);
}

void WsSession::on_closed() {
  ctx_.hub.detach(ref_);
  asio::post(ctx_.blocking, [&ctx = ctx_, user = user_, ref = ref_, ex = t_.executor(),
                             watching = std::move(watching_)]() mutable {
    ctx.routes.remove(user, ref);
    // The user may reconnect through another gateway at once: let it find their ACKs stored.
    ctx.messaging.flush_soon();
    ctx.presence.unsubscribe(ref, watching);
    if (ctx.presence.disconnected(user, ref)) settle_later(ctx, user, ex);
  });
  LOG_DEBUG("ws closed user=" << user_ << " conn=" << ref_.conn);
}

void WsSession::settle_later(WsContext& ctx, Id user, asio::any_io_executor ex) {
  // Offline only if no connection came back within the grace (no flapping on a reconnect).
  auto timer = std::make_shared<asio::steady_timer>(
      ex, std::chrono::milliseconds(ctx.config.ws.presence_grace_ms));
  timer->async_wait([&ctx, user, timer](boost::system::error_code ec) {
    if (ec) return;  // shutting down
    asio::post(ctx.blocking, [&ctx, user] { ctx.presence.settle(user); });
  });
}

void WsSession::send_error(const Error& e, std::string_view op, const std::string* cid) {
  count_sent("error");
  t_.send(wire::error_frame(e, op, cid), true);
}

void WsSession::on_text(std::string_view payload) {
  auto obj = json::parse_object(payload);
  if (!obj) return send_error(obj.error(), "", nullptr);
  auto op = obj->find("op");
  if (op == obj->end() || !op->value().is_string()) {
    return send_error(make_error(Errc::invalid_argument, "op is required"), "", nullptr);
  }
  std::string_view name = op->value().get_string();
  // imd_ws_frames_received_total{op}: each op's counter looked up once, by its table index.
  static const auto received = [] {
    std::array<metrics::Counter*, std::size(kOps) + 1> c{};
    for (std::size_t i = 0; i < std::size(kOps); ++i) {
      c[i] = &metrics::imd().ws_frames_received.at(kOps[i].name);
    }
    c.back() = &metrics::imd().ws_frames_received.at("unknown");
    return c;
  }();
  for (std::size_t i = 0; i < std::size(kOps); ++i) {
    if (kOps[i].name == name) {
      received[i]->inc();
      return (this->*kOps[i].handler)(*obj);
    }
  }
  received.back()->inc();
  send_error(make_error(Errc::invalid_argument, "unknown op"), name.substr(0, 32), nullptr);
}

void WsSession::count_sent(std::string_view op, std::uint64_t n) {
  metrics::imd().ws_frames_sent.at(op).inc(n);
}

template <class Fn, class Then>
void WsSession::on_pool(Fn fn, Then then) {
  t_.pause_reading();
  asio::co_spawn(
      t_.executor(),
      [this, hold = t_.hold(), fn = std::move(fn),
       then = std::move(then)]() mutable -> asio::awaitable<void> {
        auto r = co_await offload(ctx_.blocking, std::move(fn));
        then(r);
        t_.resume_reading();
      },
      asio::detached);
}

template <class R, class... P, class Then, class... A>
void WsSession::inline_first(std::optional<R> (MessagingService::*try_fn)(P...),
                             R (MessagingService::*fn)(P...), Then then, A&&... args) {
  if (auto r = (ctx_.messaging.*try_fn)(args...)) return then(*r);
  // Copied (or moved) only now: the common case above copies nothing.
  on_pool([this, fn, ... args = std::forward<A>(args)] { return (ctx_.messaging.*fn)(args...); },
          std::move(then));
}

// --- ops

void WsSession::op_ping(const bj::object& o) {
  auto t = json::optional_string(o, "t", 64);
  count_sent("pong");
  t_.send(wire::pong_frame(t && *t ? &**t : nullptr), true);
}

void WsSession::op_send(const bj::object& o) {
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
  auto reply_to = json::optional_id(o, "reply_to");
  if (!reply_to) return fail(reply_to.error());
  auto file = json::optional_string(o, "file", 64);
  if (!file) return fail(file.error());
  // A file message's body (its caption) may be left out.
  auto body_it = o.find("body");
  const bool no_body = body_it == o.end() && file->has_value();
  if (!no_body && (body_it == o.end() || !body_it->value().is_string())) {
    return fail(make_error(Errc::invalid_argument, "body must be a string"));
  }
  in.to = *to;
  in.channel = *channel;
  in.type = type->value_or("text");
  in.reply_to = *reply_to;
  in.file = std::move(*file);
  if (!no_body) in.body = std::string(body_it->value().get_string());
  // The `sent` ACK comes later, through the Hub; only a refusal is answered here.
  std::string cid_copy = in.cid;
  inline_first(
      &MessagingService::try_submit, &MessagingService::submit,
      [this, cid = std::move(cid_copy)](const Result<void>& r) {
        if (!r) send_error(r.error(), "send", &cid);
      },
      user_, std::move(in), ref_);
}

namespace {

Result<std::pair<ConvKey, std::uint64_t>> conv_and_seq(const bj::object& o, Id viewer) {
  auto conv = json::required_string(o, "conversation", 64);
  if (!conv) return conv.error();
  auto key = wire::parse_conversation(*conv, viewer);
  if (!key) return key.error();
  auto seq = json::optional_uint(o, "seq");
  if (!seq) return seq.error();
  if (!*seq) return make_error(Errc::invalid_argument, "seq is required");
  return std::pair{*key, **seq};
}

}  // namespace

void WsSession::op_ack(const bj::object& o) {
  auto cs = conv_and_seq(o, user_);
  if (!cs) return send_error(cs.error(), "ack", nullptr);
  auto [conv, seq] = *cs;
  inline_first(
      &MessagingService::try_ack, &MessagingService::ack,
      [this](const Result<void>& r) {
        if (!r) send_error(r.error(), "ack", nullptr);
      },
      user_, conv, seq);
}

void WsSession::op_read(const bj::object& o) {
  auto cs = conv_and_seq(o, user_);
  if (!cs) return send_error(cs.error(), "read", nullptr);
  auto [conv, seq] = *cs;
  // Always a Store write: never answered inline.
  on_pool([this, conv, seq] { return ctx_.messaging.read(user_, conv, seq, ref_); },
          [this](const Result<std::uint64_t>& r) {
            if (!r) send_error(r.error(), "read", nullptr);
          });
}

namespace {

// `name` of a `sync`: an object of at most 10000 conversation -> number (a seq or a rev).
Result<std::map<ConvKey, std::uint64_t>> conversation_numbers(const bj::object& o,
                                                              std::string_view name, Id viewer) {
  std::map<ConvKey, std::uint64_t> out;
  auto it = o.find(name);
  if (it == o.end() || it->value().is_null()) return out;
  if (!it->value().is_object() || it->value().get_object().size() > 10000) {
    return make_error(Errc::invalid_argument,
                      std::string(name) + " must be an object of at most 10000");
  }
  for (const auto& [k, v] : it->value().get_object()) {
    auto key = wire::parse_conversation(k, viewer);
    if (!key) return key.error();
    bj::object one{{"n", v}};
    auto n = json::optional_uint(one, "n");
    if (!n || !*n) {
      return make_error(Errc::invalid_argument,
                        std::string(name) + " values must be non-negative integers");
    }
    out[*key] = **n;
  }
  return out;
}

}  // namespace

void WsSession::op_sync(const bj::object& o) {
  auto cursors = conversation_numbers(o, "cursors", user_);
  if (!cursors) return send_error(cursors.error(), "sync", nullptr);
  auto changes = conversation_numbers(o, "changes", user_);
  if (!changes) return send_error(changes.error(), "sync", nullptr);
  start_sync({std::move(*cursors), std::move(*changes)});
}

void WsSession::op_edit(const bj::object& o) {
  auto body = o.find("body");
  if (body == o.end() || !body->value().is_string()) {
    return send_error(make_error(Errc::invalid_argument, "body must be a string"), "edit", nullptr);
  }
  change_op(o,
            ChangeInput{
                .id = 0, .change = Change::edit, .body = std::string(body->value().get_string())});
}

void WsSession::op_delete(const bj::object& o) {
  change_op(o, ChangeInput{.id = 0, .change = Change::erase, .body = {}});
}

void WsSession::op_react(const bj::object& o) {
  auto emoji = json::required_string(o, "emoji", kMaxEmojiBytes);
  if (!emoji) return send_error(emoji.error(), "react", nullptr);
  auto on = o.find("on");
  if (on == o.end() || !on->value().is_bool()) {
    return send_error(make_error(Errc::invalid_argument, "on must be true or false"), "react",
                      nullptr);
  }
  if (!react_rate_.take(ctx_.clock.now_ms())) {
    return send_error(make_error(Errc::too_many_requests, "react: at most 5 per second"), "react",
                      nullptr);
  }
  change_op(o, ChangeInput{.id = 0,
                           .change = Change::react,
                           .body = std::move(*emoji),
                           .on = on->value().get_bool()});
}

void WsSession::op_typing(const bj::object& o) {
  auto name = json::required_string(o, "conversation", 64);
  if (!name) return send_error(name.error(), "typing", nullptr);
  auto conv = wire::parse_conversation(*name, user_);
  if (!conv) return send_error(conv.error(), "typing", nullptr);
  if (!typing_rate_.take(ctx_.clock.now_ms())) {
    return send_error(make_error(Errc::too_many_requests, "typing: at most one per second"),
                      "typing", nullptr);
  }
  // Member lists and routes may be remote: on the pool (rate-limited above).
  on_pool([this, conv = *conv] { return ctx_.messaging.typing(user_, conv); },
          [this](const Result<void>& r) {
            if (!r) send_error(r.error(), "typing", nullptr);
          });
}

void WsSession::op_presence_sub(const bj::object& o) {
  auto it = o.find("users");
  if (it == o.end() || !it->value().is_array()) {
    return send_error(make_error(Errc::invalid_argument, "users must be an array of ids"),
                      "presence_sub", nullptr);
  }
  const bj::array& a = it->value().get_array();
  if (a.size() > kMaxPresenceSubs) {
    return send_error(make_error(Errc::invalid_argument, "at most 500 users"), "presence_sub",
                      nullptr);
  }
  std::vector<Id> users;
  users.reserve(a.size());
  for (const bj::value& v : a) {
    auto id = v.is_string() ? json::parse_uint(v.get_string()) : std::nullopt;
    if (!id || *id == 0) {
      return send_error(make_error(Errc::invalid_argument, "users must be an array of ids"),
                        "presence_sub", nullptr);
    }
    users.push_back(*id);
  }
  if (!presence_rate_.take(ctx_.clock.now_ms())) {
    return send_error(make_error(Errc::too_many_requests, "presence: at most 2 per second"),
                      "presence_sub", nullptr);
  }
  // The pool works on a copy of the watch list; the strand keeps the result.
  using Answer = Result<std::pair<PresenceList, std::vector<Id>>>;
  on_pool(
      [this, users = std::move(users), watching = watching_]() mutable -> Answer {
        auto r = ctx_.presence.subscribe(user_, ref_, watching, std::move(users));
        if (!r) return r.error();
        return std::pair{std::move(*r), std::move(watching)};
      },
      [this](Answer& r) {
        if (!r) return send_error(r.error(), "presence_sub", nullptr);
        watching_ = std::move(r->second);
        ++watch_gen_;
        if (t_.closed()) {
          // on_closed() ran meanwhile with the old list: drop what this call added.
          asio::post(ctx_.blocking, [&ctx = ctx_, ref = ref_, w = std::move(watching_)]() mutable {
            ctx.presence.unsubscribe(ref, w);
          });
          return;
        }
        count_sent("presence_sub");
        t_.send(wire::presence_sub_frame(r->first), true);
      });
}

void WsSession::presence_flag(const bj::object& o, std::string_view op,
                              std::function<Result<void>(bool)> apply) {
  auto flag = o.find(op);
  if (flag == o.end() || !flag->value().is_bool()) {
    return send_error(
        make_error(Errc::invalid_argument, std::string(op) + " must be true or false"), op,
        nullptr);
  }
  if (!presence_rate_.take(ctx_.clock.now_ms())) {
    return send_error(make_error(Errc::too_many_requests, "presence: at most 2 per second"), op,
                      nullptr);
  }
  on_pool([apply = std::move(apply), on = flag->value().get_bool()] { return apply(on); },
          [this, op](const Result<void>& r) {
            if (!r) send_error(r.error(), op, nullptr);
          });
}

void WsSession::op_idle(const bj::object& o) {
  presence_flag(o, "idle", [this](bool on) { return ctx_.presence.set_idle(user_, ref_, on); });
}

void WsSession::op_away(const bj::object& o) {
  presence_flag(o, "away", [this](bool on) { return ctx_.presence.set_away(user_, on); });
}

void WsSession::change_op(const bj::object& o, ChangeInput in) {
  const std::string_view op = wire::change_op(in.change);
  auto id = json::optional_id(o, "id");
  if (!id) return send_error(id.error(), op, nullptr);
  if (!*id) return send_error(make_error(Errc::invalid_argument, "id is required"), op, nullptr);
  in.id = **id;
  // Reads the message (the Store): always on the pool. Its answer is the change frame itself.
  on_pool([this, in = std::move(in)] { return ctx_.messaging.change(user_, in, ref_); },
          [this, op, id = **id](const Result<void>& r) {
            if (!r) t_.send(wire::error_frame(r.error(), op, nullptr, id), true);
          });
}

// --- backfill and live pushes

void WsSession::start_sync(SyncRequest req) {
  if (syncing_) {
    // Merged into the one pending request (bounded: one pending sync per connection).
    if (!sync_pending_) sync_pending_.emplace();
    if (req.cursors) {
      if (!sync_pending_->cursors) sync_pending_->cursors.emplace();
      for (auto& [k, v] : *req.cursors) (*sync_pending_->cursors)[k] = v;
    }
    for (auto& [k, v] : req.changes) sync_pending_->changes[k] = v;
    return;
  }
  syncing_ = true;
  asio::co_spawn(
      t_.executor(),
      [this, hold = t_.hold(), req = std::move(req)]() mutable {
        return sync_loop(std::move(req));
      },
      asio::detached);
}

// A backfill: passes of SyncService until one ran with no live message dropped meanwhile, then
// `synced`. Pages are read and framed on the blocking pool; the strand only queues them.
asio::awaitable<void> WsSession::sync_loop(SyncRequest req) {
  const auto page = static_cast<std::uint32_t>(ctx_.config.ws.sync_page);
  if (!warmed_) {
    // The user is online now: warm their caches beside the backfill, not before it.
    warmed_ = true;
    asio::post(ctx_.blocking, [&m = ctx_.messaging, user = user_] { m.warm(user); });
  }
  struct Framed {
    ConvKey conv;
    std::uint64_t seq = 0;
    wire::Frame frame;
  };
  std::uint64_t sent = 0, changes = 0;
  bool failed = false;
  std::optional<SyncService::Pass> pass;
  while (!t_.closed() && !failed) {
    dirty_ = false;
    Delivered held = delivered_;  // copied here: the strand owns delivered_ and revs_
    Revs revs = revs_;
    auto begun = co_await offload(ctx_.blocking, [&] {
      return ctx_.sync.begin(user_, req.cursors, std::move(held), req.changes, std::move(revs));
    });
    if (!begun) {
      send_error(begun.error(), "sync", nullptr);
      failed = true;
      break;
    }
    pass = std::move(*begun);
    while (!t_.closed()) {
      auto framed = co_await offload(ctx_.blocking, [&]() -> Result<std::vector<Framed>> {
        auto msgs = ctx_.sync.next(*pass, page);
        if (!msgs) return msgs.error();
        const bool change = pass->changes_page();
        std::vector<Framed> out;
        out.reserve(msgs->size());
        for (const auto& m : *msgs) {
          // A change page's seqs are not the message stream's: 0 keeps delivered_ as it is.
          out.push_back({m.conv, change ? 0 : m.seq,
                         change ? wire::change_frame(m, user_) : wire::msg_frame(m, user_)});
        }
        return out;
      });
      if (!framed) {
        send_error(framed.error(), "sync", nullptr);
        failed = true;
        break;
      }
      if (framed->empty()) break;
      t_.cork();
      for (auto& f : *framed) {
        if (f.seq != 0) {
          delivered_[f.conv] = f.seq;
          ++sent;
        } else {
          ++changes;
        }
        t_.send(std::move(f.frame), true);
      }
      t_.uncork();
      count_sent("msg", framed->size());
      co_await t_.writable();
    }
    if (t_.closed() || failed) break;
    for (const auto& [conv, st] : pass->revs()) revs_[conv] = st;
    if (dirty_) continue;
    auto cleared = co_await offload(ctx_.blocking, [&] { return ctx_.sync.finish(*pass); });
    if (!cleared) LOG_WARN("clearing the inbox overflow of user " << user_ << " failed");
    // Live frames dropped while the clearing ran on the pool: one more pass reads them.
    if (!dirty_) break;
  }
  syncing_ = false;
  if (t_.closed()) co_return;
  if (!failed) {
    metrics::imd().backfill_messages.observe(sent);
    count_sent("synced");
    t_.send(wire::synced_frame(sent, changes), true);
  }
  if (sync_pending_) {
    auto next = std::move(*sync_pending_);
    sync_pending_.reset();
    start_sync(std::move(next));
  }
}

bool WsSession::take_live_change(const OutFrame& f, bool& gap) {
  // A conversation the connection has no state for is new to it (created or joined since its
  // last backfill): its changes start at 0.
  RevState& st = revs_[f.conv];
  if (f.rev <= st.hw) return false;  // sent already, or covered by a backfill
  if (f.rev != st.hw + 1) {
    gap = true;  // one before it is missing: the backfill reads (hw, last] in order
    return false;
  }
  st.hw = f.rev;
  return true;
}

void WsSession::on_deliver(std::vector<OutFrame> frames) {
  bool gap = false;
  auto check = OutFrame::PresenceCheck::none;
  t_.cork();
  for (auto& f : frames) {
    if (t_.closed()) break;
    check = std::max(check, f.presence_check);
    if (f.is_message || f.is_change) {
      if (syncing_) {
        dirty_ = true;  // the running backfill reads it from the store
        continue;
      }
      if (f.is_change) {
        if (!take_live_change(f, gap)) continue;
      } else {
        auto& d = delivered_[f.conv];
        if (f.seq <= d) continue;  // already sent by a backfill
        d = f.seq;
      }
    }
    t_.send(std::move(f.text), false);
  }
  t_.uncork();
  if (gap && !t_.closed()) start_sync({});
  if (check != OutFrame::PresenceCheck::none && !t_.closed()) {
    recheck_presence(check == OutFrame::PresenceCheck::now);
  }
}

void WsSession::recheck_presence(bool now) {
  const Millis at = ctx_.clock.now_ms();
  if (watching_.empty() || presence_checking_) return;
  if (!now && at - presence_checked_ms_ < kPresenceRecheckMs) return;
  presence_checking_ = true;
  presence_checked_ms_ = at;
  using Answer = Result<std::vector<Id>>;
  on_pool(
      [this, watching = watching_]() mutable -> Answer {
        auto r = ctx_.presence.recheck(user_, ref_, watching);
        if (!r) return r.error();
        return std::move(watching);
      },
      [this, gen = watch_gen_](Answer& r) {
        presence_checking_ = false;
        if (!r) {
          LOG_DEBUG("presence recheck of user " << user_ << ": " << r.error().message);
          return;
        }
        // A presence_sub answered meanwhile: its list was checked when it was made.
        if (gen == watch_gen_) watching_ = std::move(*r);
      });
}

// A fresh access token for the same user, before the one the connection opened with ends: the
// connection lives on (without it, it is closed with 4001 when the token ends).
void WsSession::op_auth(const bj::object& o) {
  auto token = json::required_string(o, "token", 4096);
  if (!token) return send_error(token.error(), "auth", nullptr);
  auto claims = ctx_.auth.authenticate_claims(*token);
  if (!claims) return send_error(claims.error(), "auth", nullptr);
  if (claims->user != user_) {
    return send_error(make_error(Errc::forbidden, "the token is another user's"), "auth", nullptr);
  }
  const Millis expires = claims->exp_s * 1000;
  token_expires_ms_.store(expires, std::memory_order_relaxed);
  // Ending the session of the new token ends the connection from now on.
  login_session_.store(claims->session, std::memory_order_relaxed);
  count_sent("auth");
  t_.send(wire::auth_frame(expires), true);
}

}  // namespace imd::gateway
