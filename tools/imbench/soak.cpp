// `soak`: one long run of pairs traffic against one running server, with clients that behave
// like the web client, reported per window: throughput, latency, delivery checks, what the
// server's process and data directory grow to.
//
// The traffic is `pairs` (traffic.cpp, Kind::soak), one step per window: each window sends
// at --rate for its length, then waits for its last ACKs and deliveries (--grace) and for
// quiet before the next (gaps of well under a second). Beside it, on worker 0: a few
// keep-alive HTTP clients reading DM history pages at a fixed total rate, and a token
// refresher that keeps every access token fresh (a soak may outlive them).

#include <cstdio>
#include <filesystem>
#include <random>

#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "accounts.hpp"
#include "clock.hpp"
#include "http_client.hpp"
#include "scenarios.hpp"
#include "traffic.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {

struct HistoryWindow {
  std::uint64_t ok = 0, failed = 0;
  std::string first_failure;
  Histogram lat;  // from the intended time of the request (open loop)
};

// `clients` connections reading `GET /api/v1/dms/{peer}/messages?limit=50` of random pairs,
// half of them with a before_seq, `rate` requests/s in all, each connection one request at a
// time (a late answer delays that connection's next request; latency counts from the
// intended time). Threading: worker 0's io_context.
class HistoryReaders {
 public:
  HistoryReaders(asio::io_context& io, Context& ctx, const std::vector<Account>& accounts,
                 std::size_t clients, double rate)
      : accounts_(accounts), rng_(7) {
    period_ns_ = static_cast<std::int64_t>(static_cast<double>(clients) * 1e9 / rate);
    for (std::size_t i = 0; i < clients; ++i) {
      auto c = std::make_unique<Client>(io);
      c->conn = std::make_unique<HttpConn>(io, ctx.server, ctx.host_header);
      clients_.push_back(std::move(c));
    }
  }

  void start() {
    std::int64_t now = now_ns();
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      Client& c = *clients_[i];
      c.next_ns = now + period_ns_ * static_cast<std::int64_t>(i) /
                            static_cast<std::int64_t>(clients_.size());
      wait(c);
    }
  }

  // stop(): no new requests; idle() once the last answer is in; then close().
  void stop() {
    stopping_ = true;
    for (auto& c : clients_) c->timer.cancel();
  }
  void close() {
    for (auto& c : clients_) c->conn->close();
  }
  bool idle() const {
    for (auto& c : clients_) {
      if (c->conn->busy()) return false;
    }
    return true;
  }

  // The highest seq a pair's DM has about reached: before_seq is drawn below it.
  void set_seq_hint(std::uint64_t s) { seq_hint_ = std::max<std::uint64_t>(s, 1); }

  // What was answered since the last take().
  HistoryWindow take() { return std::exchange(window_, HistoryWindow{}); }

 private:
  struct Client {
    explicit Client(asio::io_context& io) : timer(io) {}
    std::unique_ptr<HttpConn> conn;
    asio::steady_timer timer;
    std::int64_t next_ns = 0;
  };

  void wait(Client& c) {
    c.timer.expires_at(at_ns(c.next_ns));
    c.timer.async_wait([this, &c](const boost::system::error_code& ec) {
      if (!ec && !stopping_) issue(c);
    });
  }

  void issue(Client& c) {
    std::size_t i = std::uniform_int_distribution<std::size_t>(0, accounts_.size() - 1)(rng_);
    HttpRequest r;
    r.target = "/api/v1/dms/" + accounts_[i ^ 1].id + "/messages?limit=50";
    if (rng_() & 1) {
      std::uint64_t before = std::uniform_int_distribution<std::uint64_t>(1, seq_hint_)(rng_);
      r.target += "&before_seq=" + std::to_string(before);
    }
    r.bearer = accounts_[i].token;
    std::int64_t intended = c.next_ns;
    c.conn->request(r, [this, &c, intended](HttpResult&& res) {
      std::int64_t now = now_ns();
      window_.lat.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - intended)) /
                         1000);
      if (res.status == 200 && res.body.find("\"messages\":") != std::string::npos) {
        ++window_.ok;
      } else {
        ++window_.failed;
        if (window_.first_failure.empty()) {
          window_.first_failure =
              res.status ? std::to_string(res.status) + " " + res.body.substr(0, 200) : res.error;
        }
      }
      if (stopping_) return;
      c.next_ns = intended + period_ns_;
      if (c.next_ns <= now) {
        issue(c);
      } else {
        wait(c);
      }
    });
  }

  const std::vector<Account>& accounts_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::mt19937_64 rng_;
  std::int64_t period_ns_ = 0;
  std::uint64_t seq_hint_ = 1;
  bool stopping_ = false;
  HistoryWindow window_;
};

// Refreshes the accounts' tokens one after the other (POST /api/v1/auth/refresh), each
// within half its lifetime, as clients refresh theirs before they expire; the new access
// token goes to the account (history readers) and to the traffic's client (its next
// connect). Threading: worker 0's io_context.
class TokenRefresher {
 public:
  TokenRefresher(asio::io_context& io, Context& ctx, std::vector<Account>& accounts,
                 SoakTraffic& traffic)
      : accounts_(accounts), traffic_(traffic), conn_(io, ctx.server, ctx.host_header), timer_(io) {
    std::int64_t life =
        accounts.empty() ? 900 : std::max<std::int64_t>(accounts[0].expires_in_s, 2);
    period_ns_ =
        life * kSec / 2 / static_cast<std::int64_t>(std::max<std::size_t>(accounts.size(), 1));
  }

  void start() {
    next_ns_ = now_ns() + period_ns_;
    wait();
  }
  // As HistoryReaders.
  void stop() {
    stopping_ = true;
    timer_.cancel();
  }
  void close() { conn_.close(); }
  bool idle() const { return !conn_.busy(); }
  std::uint64_t refreshed() const { return ok_; }
  std::uint64_t failed() const { return failed_; }
  const std::string& first_failure() const { return first_failure_; }

 private:
  void wait() {
    timer_.expires_at(at_ns(next_ns_));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !stopping_) refresh();
    });
  }

  void refresh() {
    std::size_t i = next_++ % accounts_.size();
    HttpRequest r;
    r.method = "POST";
    r.target = "/api/v1/auth/refresh";
    r.body = bj::serialize(bj::object{{"refresh_token", accounts_[i].refresh_token}});
    conn_.request(r, [this, i](HttpResult&& res) {
      bool ok = res.status == 200;
      if (ok) {
        try {
          read_session(res.body, accounts_[i]);
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (ok) {
        ++ok_;
        traffic_.set_token(i, accounts_[i].token);
      } else {
        ++failed_;
        if (first_failure_.empty()) {
          first_failure_ =
              res.status ? std::to_string(res.status) + " " + res.body.substr(0, 200) : res.error;
        }
      }
      if (stopping_) return;
      next_ns_ = std::max(next_ns_ + period_ns_, now_ns());
      wait();
    });
  }

  std::vector<Account>& accounts_;
  SoakTraffic& traffic_;
  HttpConn conn_;
  asio::steady_timer timer_;
  std::int64_t period_ns_ = kSec;
  std::int64_t next_ns_ = 0;
  std::size_t next_ = 0;
  std::uint64_t ok_ = 0, failed_ = 0;
  std::string first_failure_;
  bool stopping_ = false;
};

struct DataDirSizes {
  std::uint64_t db = 0, wal = 0, shm = 0;
  std::uint64_t total() const { return db + wal + shm; }
};

// The SQLite files of an imd data directory; a file that does not exist counts 0.
DataDirSizes data_dir_sizes(const std::string& dir) {
  auto size = [&](const char* name) -> std::uint64_t {
    std::error_code ec;
    auto n = std::filesystem::file_size(std::filesystem::path(dir) / name, ec);
    return ec ? 0 : static_cast<std::uint64_t>(n);
  };
  return {size("imd.db"), size("imd.db-wal"), size("imd.db-shm")};
}

double mib(std::uint64_t bytes) {
  return static_cast<double>(bytes) / 1048576.0;
}

double ms(std::uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

void print_header(bool sizes) {
  std::printf("%4s %7s %7s %7s %7s %6s %6s %7s %7s %5s %4s %4s %6s %5s %6s %7s %5s %5s %7s", "win",
              "end_s", "offer/s", "acked/s", "deliv/s", "p50ms", "p99ms", "p999ms", "ackp99",
              "lost", "dup", "ooo", "redel", "recon", "hist/s", "histp99", "hfail", "cpu%",
              "rssMiB");
  if (sizes) std::printf(" %8s %8s %7s %10s %6s", "dbMiB", "walMiB", "shmKiB", "stored", "B/msg");
  std::printf("  pass\n");
  std::fflush(stdout);
}

}  // namespace

void run_soak(Context& ctx) {
  auto& o = ctx.opts;
  double rate = o.num("rate", 9000);
  double duration = o.num("duration", 600);
  double report_s = o.num("report-s", 60);
  std::uint64_t min_messages = static_cast<std::uint64_t>(o.integer("min-messages", 0));
  double max_time = o.num("max-time", 1800);
  std::size_t history_clients = static_cast<std::size_t>(o.integer("history-clients", 2));
  double history_rate = o.num("history-rate", 20);
  std::string data_dir = o.str("data-dir", "");
  std::uint64_t stored_before = static_cast<std::uint64_t>(o.integer("stored-before", 0));
  double reconnects_per_s = o.num("reconnects-per-s", 2);  // read again by the traffic
  auto traffic = make_soak_traffic(ctx);
  o.check_unused();
  if (rate <= 0 || duration <= 0 || report_s < 1 || max_time < duration) {
    throw Failure("need --rate > 0, --duration > 0, --report-s >= 1, --max-time >= --duration");
  }
  if (history_clients > 0 && history_rate <= 0) throw Failure("--history-rate must be > 0");
  if (!data_dir.empty() && !std::filesystem::is_directory(data_dir)) {
    throw Failure("--data-dir " + data_dir + " is not a directory");
  }
  std::int64_t t_begin = now_ns();
  traffic->setup();
  std::size_t conns = traffic->accounts().size();
  std::printf(
      "soak: %zu connections in pairs, %.0f msgs/s, %.0f s in windows of %.0f s (then on until "
      "%llu messages ACKed, %.0f s at most), %.1f reconnects/s, %zu history clients at %.0f "
      "req/s\n",
      conns, rate, duration, report_s, static_cast<unsigned long long>(min_messages), max_time,
      reconnects_per_s, history_clients, history_rate);
  std::fflush(stdout);

  std::vector<Account> accounts = traffic->accounts();
  asio::io_context& io0 = traffic->workers().io(0);
  std::unique_ptr<HistoryReaders> history;
  if (history_clients > 0) {
    history = std::make_unique<HistoryReaders>(io0, ctx, accounts, history_clients, history_rate);
    history->start();
  }
  TokenRefresher refresher(io0, ctx, accounts, *traffic);
  refresher.start();

  bool sizes = !data_dir.empty();
  print_header(sizes);
  // Windows of equal length up to --duration (the gaps between them are absorbed), then
  // windows of at most --report-s until --min-messages are ACKed or --max-time has passed.
  const int planned_windows = std::max(1, static_cast<int>(std::lround(duration / report_s)));
  std::int64_t t0 = now_ns();
  auto elapsed = [&] { return static_cast<double>(now_ns() - t0) / 1e9; };
  std::uint64_t total_acked = 0, max_wal = 0;
  int windows = 0, passed = 0;
  double rss_first = 0, rss_last = 0, last_bytes_per_msg = 0;
  DataDirSizes last_sizes;
  std::string first_failure;
  while (true) {
    double el = elapsed();
    double len;
    if (windows < planned_windows) {
      len = duration * (windows + 1) / planned_windows - el;
    } else {
      if (total_acked >= min_messages) break;
      double needed = static_cast<double>(min_messages - total_acked) / rate;
      len = std::min(report_s, std::max(1.0, needed + 0.5));
    }
    len = std::min(len, max_time - el);
    if (len < 1) break;
    StepResult r = traffic->run_step(rate, len);
    HistoryWindow h = history ? history->take() : HistoryWindow{};
    ++windows;
    total_acked += r.acked;
    std::uint64_t stored = stored_before + total_acked;
    if (history) history->set_seq_hint(2 * total_acked / std::max<std::size_t>(conns, 2) + 1);
    DataDirSizes ds = sizes ? data_dir_sizes(data_dir) : DataDirSizes{};
    max_wal = std::max(max_wal, ds.wal);
    double bytes_per_msg = sizes && stored ? static_cast<double>(ds.total()) / stored : 0;
    double rss = mib(r.mon.server_rss_kib_end * 1024);
    if (windows == 1) rss_first = rss;
    rss_last = rss;
    last_bytes_per_msg = bytes_per_msg;
    last_sizes = ds;
    double span = std::max(r.mon.seconds, len);
    double hist_rps = static_cast<double>(h.ok + h.failed) / span;
    bool pass = r.pass && h.failed == 0;
    std::string reason = r.reason;
    if (reason.empty() && h.failed) {
      reason =
          std::to_string(h.failed) + " history requests failed (first: " + h.first_failure + ")";
    }
    if (pass) ++passed;
    if (!pass && first_failure.empty()) {
      first_failure = "window " + std::to_string(windows) + ": " + reason;
    }

    std::printf(
        "%4d %7.0f %7.0f %7.0f %7.0f %6.2f %6.2f %7.2f %7.2f %5llu %4llu %4llu %6llu %5llu "
        "%6.1f %7.2f %5llu %5.0f %7.1f",
        windows, elapsed(), r.rate, r.acked_per_s, r.deliveries_per_s,
        ms(r.del_lat.percentile(0.50)), ms(r.del_lat.percentile(0.99)),
        ms(r.del_lat.percentile(0.999)), ms(r.ack_lat.percentile(0.99)),
        static_cast<unsigned long long>(r.lost_msgs), static_cast<unsigned long long>(r.dup),
        static_cast<unsigned long long>(r.ooo), static_cast<unsigned long long>(r.redelivered),
        static_cast<unsigned long long>(r.reconnects), hist_rps, ms(h.lat.percentile(0.99)),
        static_cast<unsigned long long>(h.failed), r.mon.server_cpu, rss);
    if (sizes) {
      std::printf(" %8.1f %8.1f %7.0f %10llu %6.0f", mib(ds.db), mib(ds.wal),
                  static_cast<double>(ds.shm) / 1024.0, static_cast<unsigned long long>(stored),
                  bytes_per_msg);
    }
    std::printf("  %s\n", pass ? "yes" : "NO");
    if (!pass) std::printf("       %s\n", reason.c_str());
    std::fflush(stdout);

    bj::object j = step_json(r, false);
    j["scenario"] = "soak";
    j["mode"] = "window";
    j["window"] = windows;
    j["end_s"] = elapsed();
    j["connections"] = conns;
    j["history"] = bj::object{{"requests", h.ok + h.failed},
                              {"failed", h.failed},
                              {"req_s", hist_rps},
                              {"first_failure", h.first_failure},
                              {"latency", latency_json(h.lat)}};
    j["token_refreshes"] = refresher.refreshed();
    j["token_refresh_failures"] = refresher.failed();
    j["server_cpu_pct"] = r.mon.server_cpu;
    j["server_rss_mib"] = rss;
    j["stored_messages"] = stored;
    j["pass"] = pass;
    j["fail_reason"] = reason;
    if (sizes) {
      j["db_bytes"] = ds.db;
      j["wal_bytes"] = ds.wal;
      j["shm_bytes"] = ds.shm;
      j["data_bytes"] = ds.total();
      j["bytes_per_message"] = bytes_per_msg;
    }
    ctx.reporter->emit(std::move(j));
  }

  if (history) history->stop();
  refresher.stop();
  traffic->workers().run_until([&] { return (!history || history->idle()) && refresher.idle(); },
                               std::chrono::seconds(5));
  if (history) history->close();
  refresher.close();
  traffic->workers().run_for(std::chrono::milliseconds(50));
  if (refresher.failed()) {
    std::printf("token refreshes: %llu, %llu failed (first: %s)\n",
                static_cast<unsigned long long>(refresher.refreshed()),
                static_cast<unsigned long long>(refresher.failed()),
                refresher.first_failure().c_str());
  }
  std::printf(
      "soak: %d of %d windows passed; %llu messages ACKed in %.0f s (stored %llu)%s; server RSS "
      "%.1f MiB in the first window, %.1f MiB in the last",
      passed, windows, static_cast<unsigned long long>(total_acked), elapsed(),
      static_cast<unsigned long long>(stored_before + total_acked),
      total_acked < min_messages ? ", fewer than --min-messages" : "", rss_first, rss_last);
  if (sizes) {
    std::printf("; WAL at most %.1f MiB; %.0f bytes per stored message", mib(max_wal),
                last_bytes_per_msg);
  }
  std::printf("\n");
  if (!first_failure.empty()) std::printf("first failure: %s\n", first_failure.c_str());
  std::fflush(stdout);
  bj::object j{{"scenario", "soak"},
               {"mode", "summary"},
               {"connections", conns},
               {"offered_msgs_s", rate},
               {"windows", windows},
               {"windows_passed", passed},
               {"pass", windows > 0 && passed == windows},
               {"first_failure", first_failure},
               {"seconds", elapsed()},
               {"setup_s", static_cast<double>(t0 - t_begin) / 1e9},
               {"messages_acked", total_acked},
               {"min_messages", min_messages},
               {"min_messages_reached", total_acked >= min_messages},
               {"stored_before", stored_before},
               {"stored_messages", stored_before + total_acked},
               {"reconnects_per_s", reconnects_per_s},
               {"token_refreshes", refresher.refreshed()},
               {"token_refresh_failures", refresher.failed()},
               {"rss_first_mib", rss_first},
               {"rss_last_mib", rss_last}};
  if (sizes) {
    j["max_wal_bytes"] = max_wal;
    j["data_bytes"] = last_sizes.total();
    j["bytes_per_message"] = last_bytes_per_msg;
  }
  ctx.reporter->emit(std::move(j));
}

}  // namespace imbench
