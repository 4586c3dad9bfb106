// `presence`: presence and typing at scale (docs/benchmarks.md, issue 15). N users in one
// space and one channel; W of them are watchers, each subscribed (`presence_sub`) to M users
// of the space, as a client showing a member list would be. Three phases, each with the
// frames the clients received per second and the server's CPU:
//   connect  every user connects (the watchers first): each arrival is a presence change;
//   churn    users leave and come back after --away-ms (past the offline grace: each round trip
//            is an offline and an online change) at --churn-rate per second;
//   typing   --typists members of a second channel of --typing-members send `typing` every
//            1.1 s (under the server's 1/s per connection); every other member online gets
//            each one.

#include <algorithm>
#include <cstdio>

#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "accounts.hpp"
#include "client_behavior.hpp"
#include "clock.hpp"
#include "monitor.hpp"
#include "scan.hpp"
#include "scenarios.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {

// Every user's one connection, on one io_context; counts what arrives.
class Crowd final : public WsClient::Handler {
 public:
  Crowd(asio::io_context& io, Context& ctx, const std::vector<Account>& accounts)
      : io_(io), ctx_(ctx), accounts_(accounts), sweep_(io) {
    peers_.resize(accounts.size());
  }
  ~Crowd() override { close_all(); }

  // The users `watcher` subscribes to once synced.
  void watch(std::size_t watcher, std::string frame) { peers_[watcher].sub = std::move(frame); }

  void connect(std::size_t i) {
    Peer& p = peers_[i];
    if (p.ws) graveyard_.push_back(std::move(p.ws));
    p.ws = std::make_unique<WsClient>(io_, *this, i);
    p.cs = ClientState{};
    p.cs.ack = ctx_.ack_policy;
    p.ws->connect(ctx_.server, ctx_.source_for(i), ctx_.host_header, accounts_[i].token,
                  ctx_.ws_query);
  }
  void disconnect(std::size_t i) {
    Peer& p = peers_[i];
    if (!p.ws) return;
    p.ws->close();
    if (p.cs.synced) --synced_;
    graveyard_.push_back(std::move(p.ws));
  }
  void send(std::size_t i, std::string_view frame) {
    if (peers_[i].ws && peers_[i].ws->is_open()) peers_[i].ws->send_text(frame);
  }
  bool synced(std::size_t i) const { return peers_[i].cs.synced && peers_[i].ws; }

  void start_sweep() {
    sweep_.expires_after(std::chrono::milliseconds(200));
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::int64_t now = now_ns();
      for (auto& p : peers_) {
        if (!p.ws || !p.ws->is_open()) continue;
        p.cs.maybe_ping(*p.ws, now);
        if (p.retry_at != 0 && now >= p.retry_at) {
          p.retry_at = 0;
          ++presence_retries;
          p.ws->send_text(p.sub);
        }
      }
      start_sweep();
    });
  }
  void close_all() {
    sweep_.cancel();
    for (std::size_t i = 0; i < peers_.size(); ++i) disconnect(i);
  }

  std::size_t synced_count() const { return synced_; }
  std::size_t subscribed() const { return subscribed_; }
  std::uint64_t presence_frames = 0, typing_frames = 0, errors = 0, closed = 0;
  // presence_sub refusals the server said were passing (unavailable, too_many_requests): each is
  // asked again as the web client does (model/presence.ts: after 2 s, doubling up to 60 s).
  std::uint64_t presence_refused = 0, presence_retries = 0;
  std::string first_error;

 private:
  struct Peer {
    std::unique_ptr<WsClient> ws;
    ClientState cs;
    std::string sub;                             // the presence_sub frame of a watcher
    std::int64_t retry_ms = 2000, retry_at = 0;  // the next try of a refused sub (0: none)
  };

  void on_text(WsClient& ws, std::string_view frame, std::int64_t now) override {
    Peer& p = peers_[ws.id()];
    if (p.ws.get() != &ws) return;  // a connection replaced since
    std::string_view op = scan::op(frame);
    if (op == "batch") {
      scan::each_in_batch(frame, [&](std::string_view f) { on_text(ws, f, now); });
    } else if (op == "presence") {
      ++presence_frames;
    } else if (op == "typing") {
      ++typing_frames;
    } else if (op == "hello") {
      p.cs.on_hello(frame, now);
    } else if (op == "synced") {
      if (!p.cs.synced) {
        p.cs.synced = true;
        ++synced_;
        if (!p.sub.empty()) ws.send_text(p.sub);
      }
    } else if (op == "presence_sub") {
      ++subscribed_;
      p.retry_ms = 2000;
    } else if (op == "error" && scan::str(frame, "\"ref\":") == "presence_sub" && !p.sub.empty() &&
               (scan::str(frame, "\"code\":") == "unavailable" ||
                scan::str(frame, "\"code\":") == "too_many_requests")) {
      ++presence_refused;
      p.retry_at = now + p.retry_ms * 1'000'000;
      p.retry_ms = std::min<std::int64_t>(p.retry_ms * 2, 60'000);
    } else if (op == "error") {
      ++errors;
      if (first_error.empty()) first_error = std::string(frame.substr(0, 200));
    }
  }

  void on_closed(WsClient& ws, std::string_view why) override {
    Peer& p = peers_[ws.id()];
    if (p.ws.get() != &ws) return;
    ++closed;
    if (first_error.empty()) first_error = std::string(why);
    if (p.cs.synced) --synced_;
    p.cs.synced = false;
  }

  asio::io_context& io_;
  Context& ctx_;
  const std::vector<Account>& accounts_;
  asio::steady_timer sweep_;
  std::vector<Peer> peers_;
  std::vector<std::unique_ptr<WsClient>> graveyard_;  // closed, kept until the io_context ends
  std::size_t synced_ = 0, subscribed_ = 0;
};

struct Phase {
  const char* name = "";
  double seconds = 0;
  std::uint64_t presence = 0, typing = 0;
  Monitor::Summary res;
};

}  // namespace

void run_presence(Context& ctx) {
  auto& o = ctx.opts;
  const auto users = static_cast<std::size_t>(o.integer("users", 5000));
  const auto watchers = static_cast<std::size_t>(o.integer("watchers", 500));
  const auto watch = static_cast<std::size_t>(o.integer("watch", 500));
  const double churn_s = o.num("churn-s", 20);
  const double churn_rate = o.num("churn-rate", 100);
  const auto away_ms = o.integer("away-ms", 8000);
  const auto typists = static_cast<std::size_t>(o.integer("typists", 500));
  const auto typing_members = static_cast<std::size_t>(o.integer("typing-members", 1000));
  const double typing_s = o.num("typing-s", 20);
  const double connect_timeout = o.num("connect-timeout", 300);
  o.check_unused();
  if (users < 2 || users > 19000 || watchers > users || watch > 500 || typists >= typing_members ||
      typing_members > users || typing_members > 1000 || churn_rate <= 0) {
    throw Failure(
        "need 2 <= --users <= 19000, --watchers <= --users, --watch <= 500, --typists < "
        "--typing-members <= min(--users, 1000), --churn-rate > 0");
  }
  std::printf(
      "presence: %zu users in one space, %zu watchers of %zu users each; %zu typists in a "
      "channel of %zu\n",
      users, watchers, watch, typists, typing_members);
  std::fflush(stdout);

  std::vector<Account> accounts;
  std::string typing_channel;
  {
    Workers setup(1);
    Rest rest(ctx, setup);
    accounts = rest.create_accounts(users);
    const Account& owner = accounts[0];
    std::string space = rest.create_space(owner, "presence-" + ctx.tag);
    std::string lobby = rest.create_channel(owner, space, "lobby");
    typing_channel = rest.create_channel(owner, space, "typing");
    std::vector<Account> others(accounts.begin() + 1, accounts.end());
    rest.join(owner, others, space, lobby);
    std::vector<Account> typers(accounts.begin() + 1,
                                accounts.begin() + static_cast<std::ptrdiff_t>(typing_members));
    rest.join_channel(typers, typing_channel);
    rest.close();
    setup.run_for(std::chrono::milliseconds(1500));  // let the server drop the REST sessions
  }
  const std::string typing_frame =
      bj::serialize(bj::object{{"op", "typing"}, {"conversation", "channel:" + typing_channel}});

  asio::io_context io(1);
  Crowd crowd(io, ctx, accounts);
  // Watcher w watches the `watch` users after it (wrapping), itself excluded.
  for (std::size_t w = 0; w < watchers; ++w) {
    bj::array ids;
    for (std::size_t k = 1; k <= watch && k < users; ++k)
      ids.emplace_back(accounts[(w + k) % users].id);
    crowd.watch(w, bj::serialize(bj::object{{"op", "presence_sub"}, {"users", std::move(ids)}}));
  }
  crowd.start_sweep();
  auto guard = asio::make_work_guard(io);
  Monitor mon(ctx.server_pid, 1);
  std::vector<Phase> phases;
  auto run_until = [&](const std::function<bool()>& done, double timeout_s) {
    const std::int64_t deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    while (!done() && now_ns() < deadline) {
      io.run_for(std::chrono::milliseconds(5));
      mon.tick();
    }
    return done();
  };
  auto measure = [&](const char* name, const std::function<void()>& body) {
    Phase ph;
    ph.name = name;
    const std::uint64_t p0 = crowd.presence_frames, t0f = crowd.typing_frames;
    const std::int64_t t0 = now_ns();
    mon.begin();
    body();
    mon.end();
    ph.seconds = static_cast<double>(now_ns() - t0) / 1e9;
    ph.presence = crowd.presence_frames - p0;
    ph.typing = crowd.typing_frames - t0f;
    ph.res = mon.summary();
    phases.push_back(ph);
  };

  // Connect: the watchers first (subscribed before the others arrive), then everyone, at most
  // 512 handshakes in flight.
  bool all_connected = false;
  measure("connect", [&] {
    for (std::size_t i = 0; i < watchers; ++i) crowd.connect(i);
    run_until([&] { return crowd.subscribed() >= watchers; }, connect_timeout);
    std::size_t next = watchers;
    all_connected = run_until(
        [&] {
          while (next < users && next - crowd.synced_count() < 512) crowd.connect(next++);
          return crowd.synced_count() >= users;
        },
        connect_timeout);
  });
  if (!all_connected) {
    throw Failure("only " + std::to_string(crowd.synced_count()) + " of " + std::to_string(users) +
                  " connected: " + crowd.first_error);
  }

  // Churn: the non-watchers by turns, each away for away_ms then back.
  measure("churn", [&] {
    const std::int64_t start = now_ns(), end = start + static_cast<std::int64_t>(churn_s * 1e9);
    std::vector<std::pair<std::int64_t, std::size_t>> back;  // (when, who), in time order
    std::size_t left = 0, next = watchers;
    while (now_ns() < end) {
      const std::int64_t now = now_ns();
      const auto due =
          static_cast<std::size_t>(static_cast<double>(now - start) / 1e9 * churn_rate);
      while (left < due) {
        crowd.disconnect(next);
        back.emplace_back(now + away_ms * kMs, next);
        ++left;
        next = next + 1 < users ? next + 1 : watchers;
      }
      while (!back.empty() && back.front().first <= now) {
        crowd.connect(back.front().second);
        back.erase(back.begin());
      }
      io.run_for(std::chrono::milliseconds(5));
      mon.tick();
    }
    for (auto& [when, who] : back) crowd.connect(who);
    run_until([&] { return crowd.synced_count() >= users; }, connect_timeout);
  });

  // Typing: members 1..typists of the typing channel, one frame every 1.1 s each, spread.
  measure("typing", [&] {
    const std::int64_t start = now_ns(), end = start + static_cast<std::int64_t>(typing_s * 1e9);
    const std::int64_t period = 1100 * kMs;
    std::vector<std::int64_t> next_at(typists);
    for (std::size_t t = 0; t < typists; ++t) {
      next_at[t] =
          start + static_cast<std::int64_t>(t) * period / static_cast<std::int64_t>(typists);
    }
    while (now_ns() < end) {
      const std::int64_t now = now_ns();
      for (std::size_t t = 0; t < typists; ++t) {
        if (next_at[t] > now) continue;
        crowd.send(1 + t, typing_frame);
        next_at[t] += period;
      }
      io.run_for(std::chrono::milliseconds(2));
      mon.tick();
    }
    // The frames in flight arrive.
    run_until([] { return false; }, 1.0);
  });

  crowd.close_all();
  io.poll();

  bj::array jp;
  for (const auto& ph : phases) {
    const double secs = std::max(ph.seconds, 1e-9);
    std::printf(
        "  %-8s %6.1f s: presence frames %8llu (%8.0f/s), typing frames %9llu (%9.0f/s); "
        "cpu: server %.0f%% (peak %.0f%%), imbench %.0f%%, other %.0f%%\n",
        ph.name, ph.seconds, static_cast<unsigned long long>(ph.presence),
        static_cast<double>(ph.presence) / secs, static_cast<unsigned long long>(ph.typing),
        static_cast<double>(ph.typing) / secs, ph.res.server_cpu, ph.res.server_cpu_peak,
        ph.res.imbench_cpu, ph.res.other_cpu);
    jp.push_back(bj::object{{"phase", ph.name},
                            {"seconds", ph.seconds},
                            {"presence_frames", ph.presence},
                            {"presence_frames_per_s", static_cast<double>(ph.presence) / secs},
                            {"typing_frames", ph.typing},
                            {"typing_frames_per_s", static_cast<double>(ph.typing) / secs},
                            {"resources", ph.res.to_json()}});
  }
  std::printf("  presence_sub refused for a passing reason %llu (asked again %llu times)\n",
              static_cast<unsigned long long>(crowd.presence_refused),
              static_cast<unsigned long long>(crowd.presence_retries));
  std::printf("  errors %llu, connections closed by the server %llu%s%s\n",
              static_cast<unsigned long long>(crowd.errors),
              static_cast<unsigned long long>(crowd.closed),
              crowd.first_error.empty() ? "" : ", first: ", crowd.first_error.c_str());
  std::fflush(stdout);
  ctx.reporter->emit(bj::object{{"scenario", "presence"},
                                {"users", users},
                                {"watchers", watchers},
                                {"watch", watch},
                                {"churn_rate", churn_rate},
                                {"away_ms", away_ms},
                                {"typists", typists},
                                {"typing_members", typing_members},
                                {"errors", crowd.errors},
                                {"presence_sub_refused", crowd.presence_refused},
                                {"presence_sub_retries", crowd.presence_retries},
                                {"phases", std::move(jp)}});
}

}  // namespace imbench
