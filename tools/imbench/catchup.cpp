// `catchup`: user A is offline while X DMs from B arrive (sent as fast as the server ACKs,
// with a window of unACKed sends; a refused send is retried with the same cid, as a client
// does). Then A connects and imbench times until all X messages arrived, checking that they
// come in seq order 1..X. A ACKs like any client while it catches up.

#include <cstdio>

#include <boost/asio/steady_timer.hpp>

#include "accounts.hpp"
#include "client_behavior.hpp"
#include "clock.hpp"
#include "filler.hpp"
#include "monitor.hpp"
#include "scenarios.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace bj = boost::json;

namespace {

// The user coming back: counts messages, checks order, ACKs like a client.
class Reader final : public WsClient::Handler {
 public:
  explicit Reader(asio::io_context& io) : ws_(io, *this, 0), sweep_(io) {}

  void connect(Context& ctx, const Account& a) {
    t_connect_ = now_ns();
    cs_.ack = ctx.ack_policy;
    ws_.connect(ctx.server, nullptr, ctx.host_header, a.token, ctx.ws_query);
    schedule_sweep();
  }
  void close() {
    sweep_.cancel();
    ws_.close();
  }

  std::int64_t t_connect_ = 0, t_open_ = 0, t_hello_ = 0, t_first_ = 0, t_last_ = 0, t_synced_ = 0;
  std::uint64_t received_ = 0, in_order_ = 0, gaps_ = 0, dups_ = 0, synced_count_ = 0;
  ClientState cs_;
  WsClient ws_;

 private:
  void schedule_sweep() {
    sweep_.expires_after(std::chrono::milliseconds(10));
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::int64_t now = now_ns();
      cs_.maybe_ping(ws_, now);
      cs_.flush_acks(ws_, now);
      schedule_sweep();
    });
  }
  void on_open(WsClient&, std::int64_t now) override { t_open_ = now; }
  void on_text(WsClient& ws, std::string_view frame, std::int64_t now) override {
    std::string_view op = scan::op(frame);
    if (op == "batch") {
      scan::each_in_batch(frame, [&](std::string_view f) { on_text(ws, f, now); });
      return;
    }
    if (op == "msg") {
      std::string_view conv = scan::str(frame, "\"conversation\":");
      std::uint64_t seq = 0;
      if (conv.empty() || !scan::num(frame, "\"seq\":", seq)) return;
      int order = cs_.on_message(ws, cs_.conv(conv), seq, now);
      if (order < 0) {
        ++dups_;
        return;
      }
      if (order > 0)
        ++gaps_;
      else
        ++in_order_;
      if (!received_) t_first_ = now;
      ++received_;
      t_last_ = now;
    } else if (op == "hello") {
      t_hello_ = now;
      cs_.on_hello(frame, now);
    } else if (op == "synced") {
      t_synced_ = now;
      scan::num(frame, "\"messages\":", synced_count_);
      cs_.synced = true;
    }
  }
  void on_closed(WsClient&, std::string_view why) override { cs_.closed_why = std::string(why); }

  asio::steady_timer sweep_;
};

}  // namespace

void run_catchup(Context& ctx) {
  auto& o = ctx.opts;
  std::uint64_t x = static_cast<std::uint64_t>(o.integer("messages", 100000));
  std::size_t window = static_cast<std::size_t>(o.integer("window", 2000));
  std::size_t body = static_cast<std::size_t>(o.integer("body-bytes", 64));
  double timeout = o.num("timeout", 180);
  o.check_unused();
  if (x < 1 || window < 1) throw Failure("--messages and --window must be positive");
  std::printf("catchup: %llu DMs to an offline user, then it connects\n",
              static_cast<unsigned long long>(x));
  std::fflush(stdout);

  Workers workers(1);
  Monitor mon(ctx.server_pid, 1);
  std::vector<Account> acc;
  {
    Rest rest(ctx, workers);
    acc = rest.create_accounts(2);
  }
  const Account& a = acc[0];
  const Account& b = acc[1];
  auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(timeout * 1000));

  Filler filler(workers.io(0), "\"to\":\"" + a.id + "\"", x, window, body);
  filler.connect(ctx, b);
  if (!workers.run_until([&] { return filler.synced() || filler.failed(); },
                         std::chrono::seconds(30)) ||
      !filler.synced()) {
    throw Failure("sender did not connect: " + filler.why());
  }
  std::int64_t f0 = now_ns();
  filler.start();
  if (!workers.run_until([&] { return filler.done() || filler.failed(); }, ms) || !filler.done()) {
    throw Failure("filling stopped at " + std::to_string(filler.acked()) +
                  " ACKed: " + filler.why());
  }
  if (filler.hard_errors()) {
    throw Failure(std::to_string(filler.hard_errors()) + " sends refused, e.g. " + filler.error());
  }
  double fill_s = static_cast<double>(now_ns() - f0) / 1e9;
  progress("stored %llu DMs in %.1f s (%.0f msgs/s ACKed by one sender, %llu refused and retried)",
           static_cast<unsigned long long>(x), fill_s, static_cast<double>(x) / fill_s,
           static_cast<unsigned long long>(filler.refused()));
  filler.close();
  workers.run_for(std::chrono::milliseconds(500));

  Reader reader(workers.io(0));
  mon.begin();
  reader.connect(ctx, a);
  bool all = workers.run_until(
      [&] { return reader.received_ >= x || !reader.cs_.closed_why.empty(); }, ms, &mon);
  mon.end();
  // The ACKs of the tail go out, and a late duplicate would show.
  workers.run_for(std::chrono::milliseconds(300));
  reader.close();
  workers.run_for(std::chrono::milliseconds(50));

  auto res = mon.summary();
  double total_s = static_cast<double>((all ? reader.t_last_ : now_ns()) - reader.t_connect_) / 1e9;
  double rate = static_cast<double>(reader.received_) / total_s;
  auto sec = [&](std::int64_t t) {
    return t ? static_cast<double>(t - reader.t_connect_) / 1e9 : -1.0;
  };
  bool ordered = reader.gaps_ == 0 && reader.dups_ == 0;
  std::printf("  received %llu of %llu in %.2f s: %.0f msgs/s; %s (gaps %llu, duplicates %llu)\n",
              static_cast<unsigned long long>(reader.received_), static_cast<unsigned long long>(x),
              total_s, rate, ordered ? "all in seq order" : "NOT in order",
              static_cast<unsigned long long>(reader.gaps_),
              static_cast<unsigned long long>(reader.dups_));
  std::printf(
      "  upgrade %.3f s, hello %.3f s, first message %.3f s, synced %.3f s (backfill counted "
      "%llu)\n",
      sec(reader.t_open_), sec(reader.t_hello_), sec(reader.t_first_), sec(reader.t_synced_),
      static_cast<unsigned long long>(reader.synced_count_));
  if (!reader.cs_.closed_why.empty())
    std::printf("  connection closed: %s\n", reader.cs_.closed_why.c_str());
  std::printf("  cpu: server %.0f%% (peak %.0f%%), imbench %.0f%%, other %.0f%%\n", res.server_cpu,
              res.server_cpu_peak, res.imbench_cpu, res.other_cpu);
  for (auto& [name, pct] : res.server_threads)
    std::printf("    server thread %-34s %5.0f%%\n", name.c_str(), pct);
  std::printf("  bottleneck: %s\n", res.verdict.c_str());
  std::fflush(stdout);
  ctx.reporter->emit(bj::object{{"scenario", "catchup"},
                                {"messages", x},
                                {"received", reader.received_},
                                {"complete", all && reader.received_ >= x},
                                {"in_order", ordered},
                                {"gaps", reader.gaps_},
                                {"duplicates", reader.dups_},
                                {"seconds", total_s},
                                {"msgs_s", rate},
                                {"first_message_s", sec(reader.t_first_)},
                                {"synced_s", sec(reader.t_synced_)},
                                {"fill_msgs_s", static_cast<double>(x) / fill_s},
                                {"fill_refused", filler.refused()},
                                {"resources", res.to_json()}});
}

}  // namespace imbench
