// `pairs` and `group`: open-loop message traffic over WebSockets.
//
// Message k of a step has the intended send time start + k/R and is sent by sender k % S
// (pairs: every connection to its partner; group: S members to the channel). Its cid is
// "<step>.<k>" and its body starts with "<step>:<k>:", so a `sent` or a `msg` tells the
// receiver k, hence the intended time, without a lookup; latency is measured from the
// intended time, so a stalled sender cannot hide queueing (no coordinated omission).
// Senders catch up on every pacing tick: what is due goes out at once.
//
// Per step and worker: one histogram for send->ACK (`sent`), one for send->deliver (`msg`,
// every receiver), a per-message ACK flag and delivery count to find losses, and per
// receiver and conversation the seq order (duplicates, gaps).
//
// `soak` (Kind::soak, driven by soak.cpp) is pairs with clients that replace their
// connection now and then, on a timer per worker: the new connection resumes with the
// client's cursors, so what the server sends again (everything after its last delivery ACK)
// is counted as redelivered, not duplicated; sends due meanwhile wait in the client's outbox
// and, with those whose `sent` was lost with the old connection, go out after `synced` with
// the same cid (latency still from the intended time).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>

#include "accounts.hpp"
#include "client_behavior.hpp"
#include "clock.hpp"
#include "monitor.hpp"
#include "scenarios.hpp"
#include "traffic.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {

struct Peer {
  std::size_t index = 0;
  int worker = 0;
  Account acct;
  std::string target;  // `"to":"<id>"` or `"channel":"<id>"`
  std::unique_ptr<WsClient> ws;
  ClientState cs;
  // soak, the current step's messages by k: in_flight written and without `sent`; unknown
  // written before a reconnect and still without `sent` (their seqs may be taken), sent again
  // after `synced`; outbox due while the connection was being replaced, never written yet.
  std::vector<std::uint64_t> in_flight, unknown, outbox;
  bool reconnecting = false;  // from the close until the new connection's `synced`
  std::string conv_name;      // "dm:<partner id>"
};

struct StepParams {
  std::uint32_t step = 0;
  bool recording = false;
  double rate = 0;
  std::uint64_t n = 0;
  std::int64_t start_ns = 0;
};

struct WorkerState {
  int index = 0;
  std::vector<Peer*> peers;
  std::vector<Peer*> dirty;
  StepParams p;
  std::uint64_t next_k = 0;

  Histogram ack_lat, del_lat;
  std::vector<std::uint8_t> acked;  // 0 pending, 1 acked, 2 rejected
  std::vector<std::uint16_t> delivered;
  std::uint64_t dup = 0, ooo = 0, stale = 0, dup_acks = 0, skipped = 0;
  std::uint64_t redelivered = 0, echoes = 0;
  std::map<std::string, std::uint64_t> errors;
  std::int64_t last_delivery_ns = 0;

  // Progress, read by the main thread.
  std::atomic<std::uint64_t> sent{0}, acked_n{0}, rejected_n{0}, delivered_n{0}, frames{0};
  std::atomic<std::uint64_t> synced{0}, closed{0};
  std::atomic<std::uint64_t> reconnects{0}, reconnecting{0}, queued{0};  // soak
  std::atomic<bool> pacing_done{true};

  std::unique_ptr<asio::steady_timer> pace, sweep, reconnect;
  std::mt19937_64 rng;
  std::vector<std::pair<std::int64_t, Peer*>> reopen;  // soak: (when, peer) after a failure
  std::int64_t last_ping_sweep = 0;
  std::string scratch;
  std::size_t connect_next = 0;  // index into peers of the next connection to open
  std::size_t connecting = 0;
  std::atomic<std::uint64_t> connect_failed{0};
  // Closed clients (with the time of the close) may still have aborted handlers queued: they
  // are freed a few seconds later.
  std::deque<std::pair<std::int64_t, std::unique_ptr<WsClient>>> graveyard;
};

// A soak client's outbox holds this many sends at most (more: skipped, a failure).
constexpr std::size_t kOutboxMax = 1024;

bool erase_k(std::vector<std::uint64_t>& v, std::uint64_t k) {
  auto it = std::find(v.begin(), v.end(), k);
  if (it == v.end()) return false;
  v.erase(it);
  return true;
}

void append_u64(std::string& s, std::uint64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  s.append(b, r.ptr);
}

// "<step><sep><k>" at the start of s.
bool parse_step_k(std::string_view s, char sep, std::uint64_t& step, std::uint64_t& k) {
  std::size_t used = 0;
  if (!scan::parse_u64(s, step, &used) || used >= s.size() || s[used] != sep) return false;
  return scan::parse_u64(s.substr(used + 1), k);
}

class Traffic final : public WsClient::Handler, public SoakTraffic {
 public:
  enum class Kind { pairs, group, soak };

  Traffic(Context& ctx, Kind kind)
      : ctx_(ctx), kind_(kind), workers_(ctx.threads), monitor_(ctx.server_pid, ctx.threads) {
    auto& o = ctx.opts;
    if (kind != Kind::group) {
      conns_ = static_cast<std::size_t>(o.integer("conns", 1000));
      if (conns_ < 2 || conns_ % 2) throw Failure("--conns must be even and >= 2");
      senders_ = conns_;
      fanout_ = 1;
    } else {
      conns_ = static_cast<std::size_t>(o.integer("members", 500));
      senders_ = static_cast<std::size_t>(o.integer("senders", 4));
      if (conns_ < 2 || senders_ < 1 || senders_ > conns_) {
        throw Failure("need 1 <= --senders <= --members, --members >= 2");
      }
      fanout_ = conns_ - 1;
    }
    body_bytes_ = static_cast<std::size_t>(o.integer("body-bytes", 64));
    grace_s_ = o.num("grace", 5);
    p99_limit_ms_ = o.num("p99-ms", 50);
    if (soak()) {
      double r = o.num("reconnects-per-s", 2);
      if (r < 0 || r > 1000) throw Failure("--reconnects-per-s must be in 0..1000");
      if (r > 0) reconnect_period_ns_ = static_cast<std::int64_t>(workers_.size() * 1e9 / r);
    }
  }

  ~Traffic() override {
    for (auto& p : peers_) {
      if (p->ws) p->ws->close();
    }
    workers_.stop();
  }

  void setup() override {
    Rest rest(ctx_, workers_);
    auto accounts = rest.create_accounts(conns_);
    accounts_ = accounts;
    std::string channel;
    if (kind_ == Kind::group) {
      std::string space = rest.create_space(accounts[0], "imbench-" + ctx_.tag);
      channel = rest.create_channel(accounts[0], space, "group-" + ctx_.tag);
      std::vector<Account> others(accounts.begin() + 1, accounts.end());
      rest.join(accounts[0], others, space, channel);
    }
    rest.close();
    for (int i = 0; i < workers_.size(); ++i) {
      auto w = std::make_unique<WorkerState>();
      w->index = i;
      w->pace = std::make_unique<asio::steady_timer>(workers_.io(i));
      w->sweep = std::make_unique<asio::steady_timer>(workers_.io(i));
      w->reconnect = std::make_unique<asio::steady_timer>(workers_.io(i));
      w->rng.seed(static_cast<std::uint64_t>(i) + 1);
      ws_.push_back(std::move(w));
    }
    for (std::size_t i = 0; i < conns_; ++i) {
      auto p = std::make_unique<Peer>();
      p->index = i;
      p->worker = static_cast<int>(i % static_cast<std::size_t>(workers_.size()));
      p->acct = accounts[i];
      p->target = kind_ != Kind::group ? "\"to\":\"" + accounts[i ^ 1].id + "\""
                                       : "\"channel\":\"" + channel + "\"";
      p->conv_name = "dm:" + accounts[i ^ 1].id;
      ws_[static_cast<std::size_t>(p->worker)]->peers.push_back(p.get());
      peers_.push_back(std::move(p));
    }
    for (std::size_t s = 0; s < senders_; ++s) senders_v_.push_back(peers_[s].get());
    for (int i = 0; i < workers_.size(); ++i) {
      workers_.call(i, [this, i] { schedule_sweep(*ws_[static_cast<std::size_t>(i)]); });
    }
    connect_all();
  }

  // Opens (or reopens) every connection that is not open and waits for `synced`.
  void connect_all() {
    std::int64_t t0 = now_ns();
    for (int i = 0; i < workers_.size(); ++i) {
      workers_.call(i, [this, i] {
        WorkerState& w = *ws_[static_cast<std::size_t>(i)];
        w.connect_next = 0;
        w.connecting = 0;
        pump_connects(w);
      });
    }
    std::uint64_t failed = 0;
    auto all_synced = [&] {
      std::uint64_t n = 0;
      failed = 0;
      for (auto& w : ws_) {
        n += w->synced.load(std::memory_order_relaxed);
        failed += w->connect_failed.load(std::memory_order_relaxed);
      }
      return n + failed >= conns_;
    };
    if (!workers_.run_until(all_synced, std::chrono::seconds(120)) || failed) {
      std::string why;
      for (auto& p : peers_) {
        if (!p->cs.closed_why.empty()) {
          why = ": e.g. " + p->cs.closed_why;
          break;
        }
      }
      throw Failure(std::to_string(failed) +
                    " connections failed or did not reach `synced` within 120 s" + why);
    }
    progress("%zu WebSocket clients connected and synced in %.1f s", conns_,
             static_cast<double>(now_ns() - t0) / 1e9);
  }

  StepResult run_step(double rate, double seconds) override {
    StepResult r;
    r.rate = rate;
    r.seconds = seconds;
    std::uint64_t n = static_cast<std::uint64_t>(std::llround(rate * seconds));
    if (n > 50'000'000) {
      throw Failure("a step of more than 50M messages: lower --rate or --duration");
    }
    r.planned = n;
    ++step_;
    std::int64_t start = now_ns() + 100 * kMs;
    for (int i = 0; i < workers_.size(); ++i) {
      workers_.call(i, [&, i] {
        WorkerState& w = *ws_[static_cast<std::size_t>(i)];
        w.ack_lat.reset();
        w.del_lat.reset();
        w.acked.assign(n, 0);
        w.delivered.assign(n, 0);
        w.dup = w.ooo = w.stale = w.dup_acks = w.skipped = 0;
        w.redelivered = w.echoes = 0;
        w.errors.clear();
        w.last_delivery_ns = 0;
        w.sent = w.acked_n = w.rejected_n = w.delivered_n = 0;
        w.p = StepParams{step_, true, rate, n, start};
        w.next_k = 0;
        w.pacing_done = false;
        if (soak()) begin_soak_step(w, start);
        schedule_pace(w, start);
      });
    }
    monitor_.begin();
    std::int64_t send_end = start + static_cast<std::int64_t>(seconds * 1e9);
    workers_.run_until([&] { return now_ns() >= send_end; },
                       std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000) + 5000),
                       &monitor_);
    auto drained = [&] {
      std::uint64_t sent = 0, done = 0, acked = 0, delivered = 0;
      bool pacing = false;
      for (auto& w : ws_) {
        sent += w->sent.load(std::memory_order_relaxed);
        acked += w->acked_n.load(std::memory_order_relaxed);
        done += w->acked_n.load(std::memory_order_relaxed) +
                w->rejected_n.load(std::memory_order_relaxed);
        delivered += w->delivered_n.load(std::memory_order_relaxed);
        pacing |= !w->pacing_done.load(std::memory_order_relaxed);
      }
      for (auto& w : ws_) {
        pacing |= w->reconnecting.load(std::memory_order_relaxed) > 0 ||
                  w->queued.load(std::memory_order_relaxed) > 0;
      }
      return !pacing && done >= sent && delivered >= acked * fanout_;
    };
    workers_.run_until(
        drained, std::chrono::milliseconds(static_cast<std::int64_t>(grace_s_ * 1000)), &monitor_);
    monitor_.end();
    r.mon = monitor_.summary();
    for (int i = 0; i < workers_.size(); ++i) {
      workers_.call(i, [&, i] {
        WorkerState& w = *ws_[static_cast<std::size_t>(i)];
        w.p.recording = false;
        w.pace->cancel();
        w.reconnect->cancel();
        collect(w, r);
      });
    }
    for (std::uint64_t k = 0; k < n; ++k) {
      if (merged_acked_[k] == 1) {
        ++r.acked;
        if (merged_delivered_[k] < fanout_) {
          ++r.lost_msgs;
          r.lost_deliveries += fanout_ - merged_delivered_[k];
        }
      } else if (merged_acked_[k] == 2) {
        ++r.rejected;
      }
      r.delivered += merged_delivered_[k];
    }
    merged_acked_.clear();
    merged_delivered_.clear();
    r.unacked = r.sent - std::min(r.sent, r.acked + r.rejected);
    r.expected = r.acked * fanout_;
    r.elapsed = std::max(seconds, r.elapsed);
    r.deliveries_per_s = static_cast<double>(r.delivered) / r.elapsed;
    r.acked_per_s = static_cast<double>(r.acked) / seconds;
    for (auto& w : ws_) r.closed += w->closed.load();
    double p99 = static_cast<double>(r.del_lat.percentile(0.99)) / 1000.0;
    auto fail = [&](const std::string& why) {
      if (r.reason.empty()) r.reason = why;
    };
    if (r.sent < r.planned) {
      fail("sent " + std::to_string(r.sent) + " of " + std::to_string(r.planned));
    }
    if (r.rejected) fail(std::to_string(r.rejected) + " sends refused by the server");
    if (r.unacked) fail(std::to_string(r.unacked) + " sends never ACKed");
    if (r.lost_msgs) fail(std::to_string(r.lost_msgs) + " ACKed messages not delivered");
    if (r.dup) fail(std::to_string(r.dup) + " duplicate deliveries");
    if (r.ooo) fail(std::to_string(r.ooo) + " out-of-order deliveries");
    if (r.closed) fail(std::to_string(r.closed) + " connections closed");
    if (p99 > p99_limit_ms_) {
      char b[96];
      std::snprintf(b, sizeof b, "p99 send->deliver %.1f ms > %.0f ms", p99, p99_limit_ms_);
      fail(b);
    }
    r.pass = r.reason.empty();
    // Let the last ACKs go out and late frames of an overloaded step arrive before the next.
    settle();
    return r;
  }

  // Reopens connections closed during a step (they resync) so that the next step is fair.
  void recover() {
    bool any = false;
    for (auto& w : ws_) any |= w->closed.load() > 0;
    if (!any) return;
    for (int i = 0; i < workers_.size(); ++i) {
      workers_.call(i, [this, i] {
        WorkerState& w = *ws_[static_cast<std::size_t>(i)];
        std::uint64_t open = 0;
        for (Peer* p : w.peers) {
          if (p->ws && p->ws->is_open() && p->cs.synced) ++open;
        }
        w.synced = open;
        w.closed = 0;
        w.connect_failed = 0;
      });
    }
    progress("reconnecting closed clients");
    connect_all();
    settle();
  }

  std::size_t conns() const { return conns_; }
  bool soak() const { return kind_ == Kind::soak; }
  std::size_t senders() const { return senders_; }
  std::size_t fanout() const { return fanout_; }

  Workers& workers() override { return workers_; }
  const std::vector<Account>& accounts() const override { return accounts_; }
  void set_token(std::size_t i, std::string token) override {
    Peer* p = peers_.at(i).get();
    asio::post(workers_.io(p->worker),
               [p, t = std::move(token)]() mutable { p->acct.token = std::move(t); });
  }

 private:
  void settle() {
    std::uint64_t last = ~0ull;
    std::int64_t quiet_since = now_ns();
    workers_.run_until(
        [&] {
          std::uint64_t f = 0;
          for (auto& w : ws_) f += w->frames.load(std::memory_order_relaxed);
          std::int64_t now = now_ns();
          if (f != last) {
            last = f;
            quiet_since = now;
          }
          return now - quiet_since >= 300 * kMs;
        },
        std::chrono::seconds(15));
  }

  void pump_connects(WorkerState& w) {
    constexpr std::size_t kWindow = 256;
    while (w.connecting < kWindow && w.connect_next < w.peers.size()) {
      Peer* p = w.peers[w.connect_next++];
      if (p->ws && p->ws->is_open()) continue;
      p->cs = ClientState{};
      p->cs.ack = ctx_.ack_policy;
      ++w.connecting;
      open_ws(w, *p);
    }
  }

  // A new WebSocket for p; the old one (closed) goes to the graveyard.
  void open_ws(WorkerState& w, Peer& p) {
    if (p.ws) w.graveyard.emplace_back(now_ns(), std::move(p.ws));
    p.ws = std::make_unique<WsClient>(workers_.io(w.index), *this, p.index);
    p.ws->connect(ctx_.server, ctx_.source_for(p.index), ctx_.host_header, p.acct.token,
                  ctx_.ws_query);
  }

  // soak, at a step's start: what the last step left in outboxes belonged to it (counted
  // there); reconnects start again with the sending.
  void begin_soak_step(WorkerState& w, std::int64_t start) {
    for (Peer* p : w.peers) {
      p->in_flight.clear();
      p->unknown.clear();
      p->outbox.clear();
      p->cs.conv(p->conv_name).own_unknown = 0;
    }
    w.queued = 0;
    w.closed = 0;
    w.reconnects = 0;
    if (reconnect_period_ns_) schedule_reconnect(w, start + reconnect_period_ns_ / 2);
  }

  void schedule_reconnect(WorkerState& w, std::int64_t when) {
    w.reconnect->expires_at(at_ns(when));
    w.reconnect->async_wait([this, &w, when](const boost::system::error_code& ec) {
      if (ec || !w.p.recording || w.pacing_done) return;
      replace_random(w);
      // A timer that fell far behind (a stalled thread) does not make up for it in a burst.
      schedule_reconnect(w, std::max(when + reconnect_period_ns_, now_ns() - kSec));
    });
  }

  void replace_random(WorkerState& w) {
    std::uniform_int_distribution<std::size_t> pick(0, w.peers.size() - 1);
    for (int tries = 0; tries < 8; ++tries) {
      Peer& p = *w.peers[pick(w.rng)];
      if (p.reconnecting || !p.cs.synced) continue;
      w.reconnects.fetch_add(1, std::memory_order_relaxed);
      replace_connection(w, p, 0);
      return;
    }
  }

  // soak: closes p's WebSocket and opens another at once (reopen_at 0) or at reopen_at, as a
  // client does when its connection drops. Sends without `sent` go again after `synced`.
  void replace_connection(WorkerState& w, Peer& p, std::int64_t reopen_at) {
    for (auto k : p.in_flight) {
      if (std::find(p.unknown.begin(), p.unknown.end(), k) == p.unknown.end()) {
        p.unknown.push_back(k);
      }
    }
    p.in_flight.clear();
    p.cs.conv(p.conv_name).own_unknown = static_cast<std::uint32_t>(p.unknown.size());
    p.cs.on_reconnect();
    if (!p.reconnecting) {
      p.reconnecting = true;
      w.reconnecting.fetch_add(1, std::memory_order_relaxed);
    }
    p.ws->close();
    if (reopen_at) {
      w.reopen.emplace_back(reopen_at, &p);
    } else {
      open_ws(w, p);
    }
  }

  // soak: the new connection is synced: the sends that waited go out, the retries first.
  void resume_sends(WorkerState& w, Peer& p) {
    p.reconnecting = false;
    w.reconnecting.fetch_sub(1, std::memory_order_relaxed);
    for (auto k : p.unknown) write_send(w, p, k);
    for (auto k : p.outbox) write_send(w, p, k);
    w.sent.fetch_add(p.outbox.size(), std::memory_order_relaxed);
    w.queued.fetch_sub(p.outbox.size(), std::memory_order_relaxed);
    p.outbox.clear();
  }

  // soak: message k of p has its answer (`sent`, its echo, or an error).
  void settle_send(Peer& p, std::uint64_t k) {
    erase_k(p.in_flight, k);
    if (erase_k(p.unknown, k)) {
      p.cs.conv(p.conv_name).own_unknown = static_cast<std::uint32_t>(p.unknown.size());
    }
  }

  void schedule_sweep(WorkerState& w) {
    w.sweep->expires_after(std::chrono::milliseconds(10));
    w.sweep->async_wait([this, &w](const boost::system::error_code& ec) {
      if (ec) return;
      std::int64_t now = now_ns();
      std::size_t keep = 0;
      for (Peer* p : w.dirty) {
        if (p->cs.flush_acks(*p->ws, now)) w.dirty[keep++] = p;
      }
      w.dirty.resize(keep);
      keep = 0;
      for (auto& [when, p] : w.reopen) {
        if (when <= now) {
          open_ws(w, *p);
        } else {
          w.reopen[keep++] = {when, p};
        }
      }
      w.reopen.resize(keep);
      while (!w.graveyard.empty() && now - w.graveyard.front().first > 5 * kSec) {
        w.graveyard.pop_front();
      }
      if (now - w.last_ping_sweep >= kSec) {
        w.last_ping_sweep = now;
        for (Peer* p : w.peers) {
          if (p->ws) p->cs.maybe_ping(*p->ws, now);
        }
      }
      schedule_sweep(w);
    });
  }

  void schedule_pace(WorkerState& w, std::int64_t when) {
    w.pace->expires_at(at_ns(when));
    w.pace->async_wait([this, &w](const boost::system::error_code& ec) {
      if (ec) return;
      pace(w);
    });
  }

  void pace(WorkerState& w) {
    if (!w.p.recording) return;
    const StepParams& p = w.p;
    std::int64_t now = now_ns();
    std::uint64_t due = 0;
    if (now >= p.start_ns) {
      double d = static_cast<double>(now - p.start_ns) * p.rate / 1e9;
      due = std::min<std::uint64_t>(p.n, static_cast<std::uint64_t>(d) + 1);
    }
    const std::size_t nsenders = senders_v_.size();
    for (std::uint64_t k = w.next_k; k < due; ++k) {
      Peer* s = senders_v_[k % nsenders];
      if (s->worker != w.index) continue;
      send(w, *s, k);
    }
    w.next_k = std::max(w.next_k, due);
    if (w.next_k >= p.n) {
      w.pacing_done = true;
      return;
    }
    std::int64_t next =
        p.start_ns + static_cast<std::int64_t>(static_cast<double>(w.next_k) * 1e9 / p.rate);
    schedule_pace(w, std::max(next, now + 100'000));
  }

  void send(WorkerState& w, Peer& s, std::uint64_t k) {
    if (s.reconnecting) {
      if (s.outbox.size() >= kOutboxMax) {
        ++w.skipped;
        return;
      }
      s.outbox.push_back(k);
      w.queued.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!s.ws || !s.ws->is_open()) {
      ++w.skipped;
      return;
    }
    write_send(w, s, k);
    w.sent.fetch_add(1, std::memory_order_relaxed);
  }

  void write_send(WorkerState& w, Peer& s, std::uint64_t k) {
    std::string& b = w.scratch;
    b.assign("{\"op\":\"send\",\"cid\":\"");
    append_u64(b, w.p.step);
    b += '.';
    append_u64(b, k);
    b += "\",";
    b += s.target;
    b += ",\"body\":\"";
    std::size_t body_at = b.size();
    append_u64(b, w.p.step);
    b += ':';
    append_u64(b, k);
    b += ':';
    std::size_t used = b.size() - body_at;
    if (used < body_bytes_) b.append(body_bytes_ - used, 'x');
    b += "\"}";
    s.ws->send_text(b);
    if (soak()) s.in_flight.push_back(k);
  }

  std::int64_t intended(const WorkerState& w, std::uint64_t k) const {
    return w.p.start_ns + static_cast<std::int64_t>(static_cast<double>(k) * 1e9 / w.p.rate);
  }

  void on_text(WsClient& ws, std::string_view frame, std::int64_t now) override {
    Peer& p = *peers_[ws.id()];
    WorkerState& w = *ws_[static_cast<std::size_t>(p.worker)];
    w.frames.fetch_add(1, std::memory_order_relaxed);
    std::string_view op = scan::op(frame);
    if (op == "batch") {
      scan::each_in_batch(frame, [&](std::string_view f) { on_text(ws, f, now); });
      return;
    }
    if (op == "msg") {
      on_msg(w, p, frame, now);
    } else if (op == "sent") {
      std::string_view conv = scan::str(frame, "\"conversation\":");
      std::uint64_t seq = 0;
      if (!conv.empty() && scan::num(frame, "\"seq\":", seq)) p.cs.on_sent(p.cs.conv(conv), seq);
      std::uint64_t step = 0, k = 0;
      if (!parse_step_k(scan::str(frame, "\"cid\":"), '.', step, k)) return;
      if (!w.p.recording || step != w.p.step || k >= w.p.n) return;
      if (soak()) settle_send(p, k);
      if (w.acked[k]) {
        ++w.dup_acks;
        return;
      }
      w.acked[k] = 1;
      w.ack_lat.record(
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - intended(w, k)) / 1000));
      w.acked_n.fetch_add(1, std::memory_order_relaxed);
    } else if (op == "pong") {
      ++p.cs.pongs;
    } else if (op == "hello") {
      p.cs.on_hello(frame, now);
    } else if (op == "synced") {
      if (!p.cs.synced) {
        p.cs.synced = true;
        if (p.reconnecting) {
          resume_sends(w, p);
          return;
        }
        w.synced.fetch_add(1, std::memory_order_relaxed);
        --w.connecting;
        pump_connects(w);
      }
    } else if (op == "error") {
      std::string code(scan::str(frame, "\"code\":"));
      ++w.errors[code.empty() ? "?" : code];
      std::uint64_t step = 0, k = 0;
      if (parse_step_k(scan::str(frame, "\"cid\":"), '.', step, k) && w.p.recording &&
          step == w.p.step && k < w.p.n && w.acked[k] == 0) {
        if (soak()) settle_send(p, k);
        w.acked[k] = 2;
        w.rejected_n.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  void on_msg(WorkerState& w, Peer& p, std::string_view frame, std::int64_t now) {
    scan::Cursor fields(frame);
    std::string_view conv = fields.str("\"conversation\":");
    std::uint64_t seq = 0;
    if (conv.empty() || !fields.num("\"seq\":", seq)) return;
    // A message sent on a connection that was then replaced is pushed to the sender's other
    // connections, the new one: for the sender it is the `sent` that the old one missed.
    if (soak() && fields.str("\"from\":") == p.acct.id)
      return on_echo(w, p, fields, conv, seq, now);
    bool was_dirty = p.cs.dirty;
    int order = p.cs.on_message(*p.ws, p.cs.conv(conv), seq, now);
    if (!was_dirty && p.cs.dirty) w.dirty.push_back(&p);
    if (order == kRedelivered) {
      ++w.redelivered;
      return;
    }
    std::uint64_t step = 0, k = 0;
    if (!parse_step_k(fields.str("\"body\":"), ':', step, k) || !w.p.recording ||
        step != w.p.step || k >= w.p.n) {
      ++w.stale;
      return;
    }
    if (order < 0) {
      ++w.dup;
      return;
    }
    if (order > 0) ++w.ooo;
    if (w.delivered[k] < 0xFFFF) ++w.delivered[k];
    w.del_lat.record(
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - intended(w, k)) / 1000));
    w.delivered_n.fetch_add(1, std::memory_order_relaxed);
    w.last_delivery_ns = std::max(w.last_delivery_ns, now);
  }

  void on_echo(WorkerState& w, Peer& p, scan::Cursor& fields, std::string_view conv,
               std::uint64_t seq, std::int64_t now) {
    p.cs.on_sent(p.cs.conv(conv), seq);
    ++w.echoes;
    std::uint64_t step = 0, k = 0;
    if (!parse_step_k(fields.str("\"body\":"), ':', step, k) || !w.p.recording ||
        step != w.p.step || k >= w.p.n) {
      return;
    }
    settle_send(p, k);
    if (w.acked[k]) return;
    w.acked[k] = 1;
    w.ack_lat.record(
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - intended(w, k)) / 1000));
    w.acked_n.fetch_add(1, std::memory_order_relaxed);
  }

  void on_closed(WsClient& ws, std::string_view why) override {
    Peer& p = *peers_[ws.id()];
    WorkerState& w = *ws_[static_cast<std::size_t>(p.worker)];
    w.closed.fetch_add(1, std::memory_order_relaxed);
    if (++closes_logged_ <= 5) {
      progress("connection %zu closed: %.*s", p.index, static_cast<int>(why.size()), why.data());
    }
    if (soak() && (p.cs.synced || p.reconnecting)) {
      // Not asked for, so a failure of this window; but a client comes back, and so does this
      // one (after a pause, in case the server refuses).
      replace_connection(w, p, now_ns() + 200 * kMs);
      p.cs.closed_why = std::string(why);
      return;
    }
    p.cs.closed_why = std::string(why);
    if (!p.cs.synced && w.connecting) {
      --w.connecting;
      w.connect_failed.fetch_add(1, std::memory_order_relaxed);
      pump_connects(w);
    }
  }

  // Runs on worker w's thread while the main thread waits.
  void collect(WorkerState& w, StepResult& r) {
    if (merged_acked_.size() != w.acked.size()) {
      merged_acked_.assign(w.acked.size(), 0);
      merged_delivered_.assign(w.delivered.size(), 0);
    }
    for (std::size_t k = 0; k < w.acked.size(); ++k) {
      merged_acked_[k] = std::max(merged_acked_[k], w.acked[k]);
      merged_delivered_[k] += w.delivered[k];
    }
    r.ack_lat.merge(w.ack_lat);
    r.del_lat.merge(w.del_lat);
    r.sent += w.sent.load();
    r.dup += w.dup;
    r.ooo += w.ooo;
    r.stale += w.stale;
    r.dup_acks += w.dup_acks;
    r.skipped += w.skipped;
    r.redelivered += w.redelivered;
    r.echoes += w.echoes;
    r.reconnects += w.reconnects.load();
    r.queued += w.queued.load();
    for (auto& [k, v] : w.errors) r.errors[k] += v;
    if (w.last_delivery_ns) {
      r.elapsed = std::max(r.elapsed, static_cast<double>(w.last_delivery_ns - w.p.start_ns) / 1e9);
    }
  }

  Context& ctx_;
  Kind kind_;
  std::int64_t reconnect_period_ns_ = 0;  // per worker; 0: no reconnects
  std::vector<Account> accounts_;
  Workers workers_;
  Monitor monitor_;
  std::size_t conns_ = 0, senders_ = 0, fanout_ = 1, body_bytes_ = 64;
  double grace_s_ = 5, p99_limit_ms_ = 50;
  std::vector<std::unique_ptr<WorkerState>> ws_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> senders_v_;
  std::uint32_t step_ = 0;
  int closes_logged_ = 0;
  std::vector<std::uint8_t> merged_acked_;
  std::vector<std::uint32_t> merged_delivered_;
};

void print_step(const StepResult& r, bool group) {
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "  offered %.0f msgs/s for %.1f s: sent %llu, ACKed %llu, refused %llu, "
      "unACKed %llu\n",
      r.rate, r.seconds, u(r.sent), u(r.acked), u(r.rejected), u(r.unacked));
  std::printf(
      "  delivered %llu of %llu expected; lost %llu msgs (%llu deliveries), "
      "duplicated %llu, out-of-order %llu, closed %llu\n",
      u(r.delivered), u(r.expected), u(r.lost_msgs), u(r.lost_deliveries), u(r.dup), u(r.ooo),
      u(r.closed));
  std::printf("  throughput: %.0f %s/s delivered, %.0f msgs/s ACKed\n", r.deliveries_per_s,
              group ? "deliveries" : "msgs", r.acked_per_s);
  std::printf("  send->ACK     %s\n", latency_line(r.ack_lat).c_str());
  std::printf("  send->deliver %s\n", latency_line(r.del_lat).c_str());
  if (!r.errors.empty()) {
    std::printf("  errors:");
    for (auto& [k, v] : r.errors) std::printf(" %s=%llu", k.c_str(), u(v));
    std::printf("\n");
  }
  std::printf(
      "  cpu: server %.0f%% (peak %.0f%%), imbench %.0f%%, other %.0f%%; server RSS max %.1f "
      "MiB\n",
      r.mon.server_cpu, r.mon.server_cpu_peak, r.mon.imbench_cpu, r.mon.other_cpu,
      static_cast<double>(r.mon.server_rss_kib_max) / 1024.0);
  for (auto& [name, pct] : r.mon.server_threads) {
    std::printf("    server thread %-34s %5.0f%%\n", name.c_str(), pct);
  }
  std::printf("  bottleneck: %s\n", r.mon.verdict.c_str());
  std::printf("  => %s%s\n", r.pass ? "PASS" : "FAIL: ", r.reason.c_str());
  std::fflush(stdout);
}

void run_traffic(Context& ctx, Traffic::Kind kind) {
  bool group = kind == Traffic::Kind::group;
  auto& o = ctx.opts;
  bool find_max = o.flag("find-max");
  double rate = o.num("rate", group ? 1000 : 10000);
  double duration = o.num("duration", 10);
  double step_s = o.num("step-duration", 3);
  double max_rate = o.num("max-rate", group ? 100000 : 1000000);
  double budget = o.num("max-time", 150);
  int max_steps = static_cast<int>(o.integer("max-steps", 12));
  double precision = o.num("precision", 0.1);
  double growth = o.num("growth", 2);
  double noisy_other = o.num("noisy-other-pct", 25);
  double p99_ms = o.num("p99-ms", 50);
  Traffic t(ctx, kind);
  o.check_unused();
  if (rate <= 0 || duration <= 0) throw Failure("--rate and --duration must be positive");
  if (growth <= 1.01 || growth > 16) throw Failure("--growth must be in (1.01, 16]");
  t.setup();
  const char* name = group ? "group" : "pairs";
  auto base = [&]() {
    bj::object j{{"scenario", name},
                 {"connections", t.conns()},
                 {"senders", t.senders()},
                 {"fanout", t.fanout()},
                 {"threads", ctx.threads}};
    return j;
  };
  if (!find_max) {
    std::printf("%s: %zu connections, %zu senders, %.0f msgs/s for %.0f s\n", name, t.conns(),
                t.senders(), rate, duration);
    std::fflush(stdout);
    StepResult r = t.run_step(rate, duration);
    print_step(r, group);
    bj::object j = base();
    j["mode"] = "fixed";
    for (auto& kv : step_json(r, group)) j[kv.key()] = kv.value();
    ctx.reporter->emit(std::move(j));
    return;
  }
  // Find the highest rate that passes: grow by `growth` (2: double) until a failure, then
  // bisect to `precision`. A smaller growth overloads the server less deeply before the
  // bisection: a step far past the limit leaves the server slower for the steps after it
  // (measured in docs/benchmarks.md).
  std::printf("%s --find-max: %zu connections, %zu senders, steps of %.0f s from %.0f msgs/s\n",
              name, t.conns(), t.senders(), step_s, rate);
  std::fflush(stdout);
  std::int64_t t0 = now_ns();
  double lo = 0, hi = 0;
  std::optional<StepResult> best, lowest_fail;
  bj::array steps;
  // A step that failed while other processes took much of the machine is repeated once: on a
  // shared machine that failure says more about the neighbours than about the server.
  bool repeated = false;
  for (int i = 0; i < max_steps; ++i) {
    if (static_cast<double>(now_ns() - t0) / 1e9 + step_s + 3 > budget) break;
    std::printf("step %d: %.0f msgs/s\n", i + 1, rate);
    std::fflush(stdout);
    StepResult r = t.run_step(rate, step_s);
    print_step(r, group);
    bool noisy = !r.pass && !repeated && r.mon.other_cpu > noisy_other;
    steps.push_back(
        bj::object{{"rate_msgs_s", rate},
                   {"pass", r.pass},
                   {"p99_deliver_ms", static_cast<double>(r.del_lat.percentile(0.99)) / 1000.0},
                   {group ? "deliveries_s" : "throughput_msgs_s", r.deliveries_per_s},
                   {"lost", r.lost_msgs},
                   {"server_cpu_pct", r.mon.server_cpu},
                   {"imbench_cpu_pct", r.mon.imbench_cpu},
                   {"other_cpu_pct", r.mon.other_cpu},
                   {"repeated_as_noisy", noisy},
                   {"fail_reason", r.reason}});
    t.recover();
    if (noisy) {
      std::printf("  (other processes used %.0f%% CPU during this step: repeating it once)\n",
                  r.mon.other_cpu);
      std::fflush(stdout);
      repeated = true;
      continue;
    }
    repeated = false;
    if (r.pass) {
      lo = rate;
      best = r;
    } else {
      hi = rate;
      if (!lowest_fail || rate < lowest_fail->rate) lowest_fail = r;
    }
    if (hi > 0 && lo > 0 && (hi - lo) <= precision * hi) break;
    if (lo >= max_rate) break;
    double next = hi == 0 ? lo * growth : (lo == 0 ? hi / 2 : (lo + hi) / 2);
    next = std::min(next, max_rate);
    if (next < 1) break;
    rate = std::round(next);
  }
  bj::object j = base();
  j["mode"] = "find-max";
  j["criteria"] = bj::object{{"p99_send_to_deliver_ms", p99_ms}, {"lost", 0}};
  j["max_rate_msgs_s"] = lo;
  j["first_failing_rate_msgs_s"] = hi;
  j["steps"] = std::move(steps);
  const StepResult* show = best ? &*best : (lowest_fail ? &*lowest_fail : nullptr);
  if (show) {
    j[group ? "max_deliveries_s" : "max_throughput_msgs_s"] = best ? best->deliveries_per_s : 0.0;
    j["at_max"] = step_json(*show, group);
  }
  std::printf("%s: highest passing rate %.0f msgs/s", name, lo);
  if (best) {
    std::printf(" (%.0f %s/s delivered, p99 send->deliver %.1f ms)", best->deliveries_per_s,
                group ? "deliveries" : "msgs",
                static_cast<double>(best->del_lat.percentile(0.99)) / 1000.0);
  }
  if (hi > 0) std::printf("; fails at %.0f msgs/s", hi);
  std::printf("\n");
  std::fflush(stdout);
  ctx.reporter->emit(std::move(j));
}

}  // namespace

bj::object step_json(const StepResult& r, bool group) {
  bj::object errors;
  for (auto& [k, v] : r.errors) errors[k] = v;
  bj::object o{{"rate_msgs_s", r.rate},
               {"duration_s", r.seconds},
               {"planned", r.planned},
               {"sent", r.sent},
               {"acked", r.acked},
               {"rejected", r.rejected},
               {"unacked", r.unacked},
               {"delivered", r.delivered},
               {"expected_deliveries", r.expected},
               {"lost", r.lost_msgs},
               {"lost_deliveries", r.lost_deliveries},
               {"duplicated", r.dup},
               {"out_of_order", r.ooo},
               {"stale_frames", r.stale},
               {"duplicate_acks", r.dup_acks},
               {"connections_closed", r.closed},
               {"reconnects", r.reconnects},
               {"redelivered", r.redelivered},
               {"own_echoes", r.echoes},
               {"queued_at_end", r.queued},
               {"errors", std::move(errors)},
               {"acked_msgs_s", r.acked_per_s},
               {group ? "deliveries_s" : "throughput_msgs_s", r.deliveries_per_s},
               {"send_to_ack", latency_json(r.ack_lat)},
               {"send_to_deliver", latency_json(r.del_lat)},
               {"pass", r.pass},
               {"fail_reason", r.reason},
               {"resources", r.mon.to_json()}};
  return o;
}

std::unique_ptr<SoakTraffic> make_soak_traffic(Context& ctx) {
  return std::make_unique<Traffic>(ctx, Traffic::Kind::soak);
}

void run_pairs(Context& ctx) {
  run_traffic(ctx, Traffic::Kind::pairs);
}
void run_group(Context& ctx) {
  run_traffic(ctx, Traffic::Kind::group);
}

}  // namespace imbench
