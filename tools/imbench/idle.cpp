// `idle`: K authenticated WebSocket connections that only heartbeat; the server's RSS before
// and after gives its memory per connection.
//
// Limits: one process opens at most ~19,000 sockets (RLIMIT_NOFILE 20,000) and a source
// address has 28,232 ephemeral ports (32768-60999), so connections are spread over source
// addresses 127.0.0.2, 127.0.0.3, ... (--per-source each), and --procs N forks N helpers that
// each hold a share of the connections.

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <boost/asio/steady_timer.hpp>

#include "accounts.hpp"
#include "client_behavior.hpp"
#include "clock.hpp"
#include "monitor.hpp"
#include "scenarios.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {

// A share of idle connections on one io_context.
class Fleet final : public WsClient::Handler {
 public:
  Fleet(asio::io_context& io, Context& ctx, std::vector<const Account*> accounts,
        std::size_t first_index)
      : io_(io), ctx_(ctx), accounts_(std::move(accounts)), first_(first_index), sweep_(io) {
    peers_.resize(accounts_.size());
  }

  ~Fleet() override { close_all(); }

  void start() {
    pump();
    schedule_sweep();
  }

  bool settled() const { return synced_ + failed_ >= peers_.size(); }
  std::size_t synced() const { return synced_; }
  std::size_t failed() const { return failed_; }
  std::size_t closed_after_sync() const { return closed_after_sync_; }
  std::uint64_t pongs() const {
    std::uint64_t n = 0;
    for (auto& p : peers_) n += p.cs.pongs;
    return n;
  }
  std::size_t open() const {
    std::size_t n = 0;
    for (auto& p : peers_) n += p.ws && p.ws->is_open();
    return n;
  }
  const std::string& first_error() const { return first_error_; }

  void close_all() {
    sweep_.cancel();
    for (auto& p : peers_) {
      if (p.ws) p.ws->close();
    }
  }

 private:
  struct Peer {
    std::unique_ptr<WsClient> ws;
    ClientState cs;
  };

  void pump() {
    constexpr std::size_t kWindow = 512;  // handshakes in flight
    while (connecting_ < kWindow && next_ < peers_.size()) {
      std::size_t i = next_++;
      peers_[i].ws = std::make_unique<WsClient>(io_, *this, i);
      peers_[i].cs.ack = ctx_.ack_policy;
      ++connecting_;
      peers_[i].ws->connect(ctx_.server, ctx_.source_for(first_ + i), ctx_.host_header,
                            accounts_[i]->token, ctx_.ws_query);
    }
  }

  void schedule_sweep() {
    sweep_.expires_after(std::chrono::milliseconds(200));
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::int64_t now = now_ns();
      for (auto& p : peers_) {
        if (p.ws) {
          p.cs.maybe_ping(*p.ws, now);
          p.cs.flush_acks(*p.ws, now);
        }
      }
      schedule_sweep();
    });
  }

  void on_text(WsClient& ws, std::string_view frame, std::int64_t now) override {
    Peer& p = peers_[ws.id()];
    std::string_view op = scan::op(frame);
    if (op == "batch") {
      scan::each_in_batch(frame, [&](std::string_view f) { on_text(ws, f, now); });
      return;
    }
    if (op == "pong") {
      ++p.cs.pongs;
    } else if (op == "hello") {
      // Stagger the heartbeats over the first interval, as devices connected at random times.
      p.cs.on_hello(frame, now);
      p.cs.next_ping_ns = now + static_cast<std::int64_t>(ws.id() % 997) * p.cs.heartbeat_ns / 997;
    } else if (op == "synced") {
      if (!p.cs.synced) {
        p.cs.synced = true;
        ++synced_;
        --connecting_;
        pump();
      }
    } else if (op == "msg") {
      std::string_view conv = scan::str(frame, "\"conversation\":");
      std::uint64_t seq = 0;
      if (!conv.empty() && scan::num(frame, "\"seq\":", seq))
        p.cs.on_message(ws, p.cs.conv(conv), seq, now);
    }
  }

  void on_closed(WsClient& ws, std::string_view why) override {
    Peer& p = peers_[ws.id()];
    p.cs.closed_why = std::string(why);
    if (first_error_.empty()) first_error_ = std::string(why);
    if (p.cs.synced) {
      ++closed_after_sync_;
    } else {
      ++failed_;
      --connecting_;
      pump();
    }
  }

  asio::io_context& io_;
  Context& ctx_;
  std::vector<const Account*> accounts_;
  std::size_t first_;
  asio::steady_timer sweep_;
  std::vector<Peer> peers_;
  std::size_t next_ = 0, connecting_ = 0, synced_ = 0, failed_ = 0, closed_after_sync_ = 0;
  std::string first_error_;
};

// Reads one line from fd within timeout_ms (ticking the monitor); empty on timeout/EOF.
std::string read_line(int fd, int timeout_ms, Monitor& mon) {
  std::string line;
  std::int64_t deadline = now_ns() + static_cast<std::int64_t>(timeout_ms) * kMs;
  while (now_ns() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    mon.tick();
    if (r <= 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return line;
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

struct ChildReport {
  std::size_t synced = 0, failed = 0, open = 0, closed = 0;
  std::uint64_t pongs = 0;
};

}  // namespace

void run_idle(Context& ctx) {
  auto& o = ctx.opts;
  std::size_t k = static_cast<std::size_t>(o.integer("conns", 19000));
  std::size_t per_user = static_cast<std::size_t>(o.integer("conns-per-user", 1));
  int procs = static_cast<int>(o.integer("procs", 1));
  double hold = o.num("hold", 10);
  double max_conn_time = o.num("connect-timeout", 300);
  o.check_unused();
  if (k < 1 || per_user < 1 || procs < 1 || procs > 16)
    throw Failure("bad --conns/--conns-per-user/--procs");
  if (k / static_cast<std::size_t>(procs) > 19000) {
    throw Failure("more than 19,000 connections per process: raise --procs");
  }
  std::size_t users = (k + per_user - 1) / per_user;
  std::printf("idle: %zu connections (%zu users, %d process%s, %zu source address%s)\n", k, users,
              procs, procs > 1 ? "es" : "", (k + ctx.per_source - 1) / ctx.per_source,
              k > ctx.per_source ? "es" : "");
  std::fflush(stdout);

  Monitor mon(ctx.server_pid, 1);
  std::vector<Account> accounts;
  {
    Workers setup(1);
    Rest rest(ctx, setup);
    accounts = rest.create_accounts(users);
    rest.close();
    setup.run_for(std::chrono::milliseconds(1500));  // let the server drop the REST sessions
  }
  std::vector<const Account*> per_conn(k);
  for (std::size_t i = 0; i < k; ++i) per_conn[i] = &accounts[i / per_user];

  std::uint64_t rss_before = rss_kib(ctx.server_pid);
  std::int64_t t0 = now_ns();
  mon.begin();
  ChildReport total;
  double connect_s = 0;
  std::uint64_t rss_after = 0;
  std::string first_error;

  if (procs == 1) {
    asio::io_context io(1);
    Fleet fleet(io, ctx, per_conn, 0);
    fleet.start();
    auto guard = asio::make_work_guard(io);
    std::int64_t deadline = t0 + static_cast<std::int64_t>(max_conn_time * 1e9);
    std::int64_t last_report = t0;
    while (!fleet.settled() && now_ns() < deadline) {
      io.run_for(std::chrono::milliseconds(5));
      mon.tick();
      if (now_ns() - last_report > 5 * kSec) {
        last_report = now_ns();
        progress("connected %zu/%zu (failed %zu)", fleet.synced(), k, fleet.failed());
      }
    }
    connect_s = static_cast<double>(now_ns() - t0) / 1e9;
    std::int64_t end = now_ns() + static_cast<std::int64_t>(hold * 1e9);
    while (now_ns() < end) {
      io.run_for(std::chrono::milliseconds(5));
      mon.tick();
    }
    rss_after = rss_kib(ctx.server_pid);
    mon.end();
    total = {fleet.synced(), fleet.failed(), fleet.open(), fleet.closed_after_sync(),
             fleet.pongs()};
    first_error = fleet.first_error();
    fleet.close_all();
    io.poll();
  } else {
    struct Child {
      pid_t pid;
      int status_fd, ctl_fd;
    };
    std::vector<Child> children;
    std::size_t share = (k + static_cast<std::size_t>(procs) - 1) / static_cast<std::size_t>(procs);
    std::fflush(nullptr);
    for (int c = 0; c < procs; ++c) {
      std::size_t first = static_cast<std::size_t>(c) * share;
      std::size_t last = std::min(k, first + share);
      if (first >= last) break;
      int st[2], ctl[2];
      if (::pipe(st) || ::pipe(ctl)) throw Failure("pipe failed");
      pid_t pid = ::fork();
      if (pid < 0) throw Failure("fork failed");
      if (pid == 0) {
        ::close(st[0]);
        ::close(ctl[1]);
        asio::io_context io(1);
        std::vector<const Account*> mine(per_conn.begin() + static_cast<std::ptrdiff_t>(first),
                                         per_conn.begin() + static_cast<std::ptrdiff_t>(last));
        Fleet fleet(io, ctx, mine, first);
        fleet.start();
        auto guard = asio::make_work_guard(io);
        std::int64_t deadline = now_ns() + static_cast<std::int64_t>(max_conn_time * 1e9);
        while (!fleet.settled() && now_ns() < deadline) io.run_for(std::chrono::milliseconds(5));
        std::string line = "R " + std::to_string(fleet.synced()) + " " +
                           std::to_string(fleet.failed()) + " " +
                           (fleet.first_error().empty() ? "-" : fleet.first_error()) + "\n";
        (void)!::write(st[1], line.data(), line.size());
        for (;;) {
          io.run_for(std::chrono::milliseconds(20));
          pollfd p{ctl[0], POLLIN, 0};
          if (::poll(&p, 1, 0) > 0) break;
        }
        line = "D " + std::to_string(fleet.open()) + " " +
               std::to_string(fleet.closed_after_sync()) + " " + std::to_string(fleet.pongs()) +
               "\n";
        (void)!::write(st[1], line.data(), line.size());
        fleet.close_all();
        ::_exit(0);
      }
      ::close(st[1]);
      ::close(ctl[0]);
      children.push_back({pid, st[0], ctl[1]});
      mon.add_helper(pid);
    }
    for (auto& c : children) {
      std::string line = read_line(c.status_fd, static_cast<int>(max_conn_time * 1000) + 5000, mon);
      std::size_t s = 0, f = 0;
      char err[512] = "";
      if (std::sscanf(line.c_str(), "R %zu %zu %511[^\n]", &s, &f, err) >= 2) {
        total.synced += s;
        total.failed += f;
        if (first_error.empty() && std::strcmp(err, "-") != 0) first_error = err;
      }
    }
    connect_s = static_cast<double>(now_ns() - t0) / 1e9;
    std::int64_t end = now_ns() + static_cast<std::int64_t>(hold * 1e9);
    while (now_ns() < end) {
      ::usleep(100000);
      mon.tick();
    }
    rss_after = rss_kib(ctx.server_pid);
    mon.end();  // while the helpers still exist: their CPU counts
    for (auto& c : children) (void)!::write(c.ctl_fd, "q", 1);
    for (auto& c : children) {
      std::string line = read_line(c.status_fd, 10000, mon);
      std::size_t open = 0, closed = 0;
      unsigned long long pongs = 0;
      if (std::sscanf(line.c_str(), "D %zu %zu %llu", &open, &closed, &pongs) == 3) {
        total.open += open;
        total.closed += closed;
        total.pongs += pongs;
      }
      ::close(c.status_fd);
      ::close(c.ctl_fd);
      int status = 0;
      ::waitpid(c.pid, &status, 0);
    }
  }
  auto res = mon.summary();
  double per_conn_bytes = total.synced
                              ? (static_cast<double>(rss_after) - static_cast<double>(rss_before)) *
                                    1024.0 / static_cast<double>(total.synced)
                              : 0.0;
  std::printf("  connected %zu of %zu in %.1f s (%.0f/s), failed %zu%s%s\n", total.synced, k,
              connect_s, static_cast<double>(total.synced) / connect_s, total.failed,
              first_error.empty() ? "" : ", first error: ", first_error.c_str());
  std::printf("  held %.0f s: open at end %zu, closed after sync %zu, pongs %llu\n", hold,
              total.open, total.closed, static_cast<unsigned long long>(total.pongs));
  std::printf(
      "  server RSS %.1f MiB before, %.1f MiB after: %.0f bytes (%.2f KiB) per connection\n",
      static_cast<double>(rss_before) / 1024.0, static_cast<double>(rss_after) / 1024.0,
      per_conn_bytes, per_conn_bytes / 1024.0);
  std::printf("  cpu: server %.0f%%, imbench %.0f%%, other %.0f%%\n  bottleneck: %s\n",
              res.server_cpu, res.imbench_cpu, res.other_cpu, res.verdict.c_str());
  std::fflush(stdout);
  bj::object j{{"scenario", "idle"},
               {"connections", k},
               {"users", users},
               {"procs", procs},
               {"source_addresses", (k + ctx.per_source - 1) / ctx.per_source},
               {"connected", total.synced},
               {"failed", total.failed},
               {"first_error", first_error},
               {"connect_s", connect_s},
               {"hold_s", hold},
               {"open_at_end", total.open},
               {"closed_after_sync", total.closed},
               {"pongs", total.pongs},
               {"server_rss_kib_before", rss_before},
               {"server_rss_kib_after", rss_after},
               {"server_bytes_per_conn", per_conn_bytes},
               {"resources", res.to_json()}};
  ctx.reporter->emit(std::move(j));
}

}  // namespace imbench
