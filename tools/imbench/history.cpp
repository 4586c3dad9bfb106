// `history`: a channel filled with N messages, then C keep-alive HTTP clients read random
// 50-message pages (GET /api/v1/channels/{id}/messages?before_seq=S&limit=50) for D seconds,
// each client issuing its next request when the previous answer arrived (closed loop: the
// result is the server's request throughput; latency is per request).

#include <cstdio>
#include <random>

#include "accounts.hpp"
#include "clock.hpp"
#include "filler.hpp"
#include "monitor.hpp"
#include "scenarios.hpp"

namespace imbench {

namespace bj = boost::json;

void run_history(Context& ctx) {
  auto& o = ctx.opts;
  std::uint64_t n = static_cast<std::uint64_t>(o.integer("messages", 20000));
  std::size_t clients = static_cast<std::size_t>(o.integer("clients", 32));
  double duration = o.num("duration", 10);
  double warmup = o.num("warmup", 1);
  std::uint64_t limit = static_cast<std::uint64_t>(o.integer("limit", 50));
  std::size_t body = static_cast<std::size_t>(o.integer("body-bytes", 64));
  o.check_unused();
  if (n < limit || clients < 1 || duration <= 0)
    throw Failure("need --messages >= --limit, --clients >= 1");
  std::printf("history: %llu messages, %zu clients reading random %llu-message pages for %.0f s\n",
              static_cast<unsigned long long>(n), clients, static_cast<unsigned long long>(limit),
              duration);
  std::fflush(stdout);

  Workers workers(1);
  Monitor mon(ctx.server_pid, 1);
  Account owner;
  std::string channel;
  {
    Rest rest(ctx, workers);
    owner = rest.create_accounts(1)[0];
    std::string space = rest.create_space(owner, "imbench-" + ctx.tag);
    channel = rest.create_channel(owner, space, "history-" + ctx.tag);
  }
  {
    Filler filler(workers.io(0), "\"channel\":\"" + channel + "\"", n, 2000, body);
    filler.connect(ctx, owner);
    if (!workers.run_until([&] { return filler.synced() || filler.failed(); },
                           std::chrono::seconds(30)) ||
        !filler.synced()) {
      throw Failure("filler did not connect: " + filler.why());
    }
    std::int64_t f0 = now_ns();
    filler.start();
    if (!workers.run_until([&] { return filler.done() || filler.failed(); },
                           std::chrono::minutes(5)) ||
        !filler.done() || filler.hard_errors()) {
      throw Failure("filling the channel failed: " + filler.why() + filler.error());
    }
    double s = static_cast<double>(now_ns() - f0) / 1e9;
    progress("stored %llu channel messages in %.1f s (%.0f msgs/s)",
             static_cast<unsigned long long>(n), s, static_cast<double>(n) / s);
    filler.close();
    workers.run_for(std::chrono::milliseconds(200));
  }

  std::vector<std::unique_ptr<HttpConn>> conns;
  for (std::size_t i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<HttpConn>(workers.io(0), ctx.server, ctx.host_header));
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> pick(limit + 1, n + 1);  // full pages only
  const std::string base =
      "/api/v1/channels/" + channel + "/messages?limit=" + std::to_string(limit) + "&before_seq=";
  Histogram lat;
  std::uint64_t ok = 0, bad = 0, checked = 0, bad_pages = 0, bytes = 0;
  std::string first_bad;
  bool measuring = false, stopping = false;
  std::int64_t t_start = now_ns() + static_cast<std::int64_t>(warmup * 1e9);
  std::int64_t t_end = t_start + static_cast<std::int64_t>(duration * 1e9);
  std::size_t in_flight = 0;
  std::function<void(HttpConn&)> issue = [&](HttpConn& c) {
    if (stopping) return;
    HttpRequest r;
    r.target = base + std::to_string(pick(rng));
    r.bearer = owner.token;
    ++in_flight;
    c.request(r, [&](HttpResult&& res) {
      --in_flight;
      std::int64_t now = now_ns();
      bool in_window = now >= t_start && now - res.latency_ns >= t_start && now <= t_end;
      if (in_window) {
        if (!measuring) measuring = true;
        lat.record(static_cast<std::uint64_t>(res.latency_ns / 1000));
        if (res.status == 200) {
          ++ok;
          bytes += res.body.size();
        } else {
          ++bad;
          if (first_bad.empty())
            first_bad =
                res.status ? std::to_string(res.status) + " " + res.body.substr(0, 200) : res.error;
        }
      }
      // Check a sample of pages in full: 50 messages each.
      if (res.status == 200 && checked < 200) {
        ++checked;
        std::size_t count = 0, at = 0;
        while ((at = scan::after_key(res.body, "\"seq\":", at)) != std::string_view::npos) ++count;
        if (count != limit) ++bad_pages;
      }
      if (now >= t_end) stopping = true;
      issue(c);
    });
  };
  for (auto& c : conns) issue(*c);
  workers.run_until([&] { return now_ns() >= t_start; }, std::chrono::seconds(60));
  mon.begin();
  workers.run_until([&] { return now_ns() >= t_end; }, std::chrono::seconds(3600), &mon);
  mon.end();
  stopping = true;
  workers.run_until([&] { return in_flight == 0; }, std::chrono::seconds(30));
  for (auto& c : conns) c->close();
  workers.run_for(std::chrono::milliseconds(50));

  auto res = mon.summary();
  double rps = static_cast<double>(ok) / duration;
  std::printf(
      "  %llu pages OK, %llu failed%s%s: %.0f req/s, %.1f MiB/s of JSON\n",
      static_cast<unsigned long long>(ok), static_cast<unsigned long long>(bad),
      first_bad.empty() ? "" : " (first: ", first_bad.empty() ? "" : (first_bad + ")").c_str(), rps,
      static_cast<double>(bytes) / duration / 1048576.0);
  std::printf("  sampled %llu pages in full, %llu without %llu messages\n",
              static_cast<unsigned long long>(checked), static_cast<unsigned long long>(bad_pages),
              static_cast<unsigned long long>(limit));
  std::printf("  latency %s\n", latency_line(lat).c_str());
  std::printf("  cpu: server %.0f%% (peak %.0f%%), imbench %.0f%%, other %.0f%%\n", res.server_cpu,
              res.server_cpu_peak, res.imbench_cpu, res.other_cpu);
  for (auto& [name, pct] : res.server_threads)
    std::printf("    server thread %-34s %5.0f%%\n", name.c_str(), pct);
  std::printf("  bottleneck: %s\n", res.verdict.c_str());
  std::fflush(stdout);
  ctx.reporter->emit(bj::object{{"scenario", "history"},
                                {"messages", n},
                                {"clients", clients},
                                {"page", limit},
                                {"duration_s", duration},
                                {"ok", ok},
                                {"failed", bad},
                                {"first_failure", first_bad},
                                {"bad_pages", bad_pages},
                                {"req_s", rps},
                                {"mib_s", static_cast<double>(bytes) / duration / 1048576.0},
                                {"latency", latency_json(lat)},
                                {"resources", res.to_json()}});
}

}  // namespace imbench
