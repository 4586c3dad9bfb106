// imbench: load generator for imd. See tools/imbench/README.md and docs/benchmarks.md.

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "context.hpp"
#include "scenarios.hpp"

namespace imbench {
namespace {

const char* kHelp = R"(imbench: load generator for the imd server (loopback benchmarks)

usage: imbench SCENARIO [options]

scenarios:
  pairs     C connections in pairs, each sending to its partner, R msgs/s in total
  group     one channel, M members online, S senders posting R msgs/s in total
  idle      K authenticated idle connections that heartbeat: server RSS per connection
  catchup   a user offline while X DMs arrive, then connects: messages/s of the backfill
  history   C keep-alive HTTP clients reading random 50-message channel pages
  soak      pairs traffic for a long time with reconnecting clients and history reads,
            reported per window (throughput, latency, losses, server RSS, data files)
  presence  N users in one space, W watchers subscribed to M users each: presence frames/s
            while everyone connects and while users leave and return, typing frames/s while
            T members of a channel type, with the server's CPU per phase
  listen-port PID   prints the TCP port process PID listens on (for scripts)

common options:
  --host H             server address (default 127.0.0.1)
  --port P             server port (default 8080)
  --server-pid PID     server process to sample (default: found from the listening port)
  --threads N          imbench I/O threads, 1 or 2 (default 1)
  --json               print one JSON line per result on stdout
  --jsonl PATH         append one JSON line per result to PATH
  --tag DIGITS         8 digits that make this run's phone numbers unique (default: time)
  --src-base ADDR      first local source address for WebSockets (default 127.0.0.2,
                       loopback servers only); connections use ADDR, ADDR+1, ...
  --per-source N       connections per source address (default 15000)
  --ack-every N, --ack-interval-ms T
                       the clients' delivery-ACK policy, for experiments (default 50, 100:
                       an ack per conversation after 50 messages or 100 ms; soak: 0, 100,
                       after 100 ms only, like the web client; 0 messages: no count rule)
  --batch              WebSockets ask for batch frames (/ws?batch=1): the server may then
                       send frames that queued up together as one {"op":"batch"} frame

pairs:    --conns 1000 --rate 10000 --duration 10 --body-bytes 64 --grace 5 --p99-ms 50
          --find-max [--step-duration 3 --max-rate 1000000 --max-time 150 --max-steps 12
          --precision 0.1 --growth 2 --noisy-other-pct 25]   (--rate is then the first
          step, each next one --growth times the last until one fails, then bisection; a
          step that fails while other processes use more than 25% CPU is repeated once)
group:    --members 500 --senders 4 --rate 1000 (messages/s) and the pairs options
idle:     --conns 19000 --conns-per-user 1 --hold 10 --procs 1 --connect-timeout 300
catchup:  --messages 100000 --window 2000 --body-bytes 64 --timeout 180
history:  --messages 20000 --clients 32 --duration 10 --warmup 1 --limit 50
presence: --users 5000 --watchers 500 --watch 500 --churn-s 20 --churn-rate 100
          --away-ms 8000 (past the server's ws.presence_grace_ms) --typists 500
          --typing-members 1000 --typing-s 20 --connect-timeout 300
soak:     --conns 1000 --rate 9000 --duration 600 --report-s 60 --min-messages 0
          --max-time 1800 --reconnects-per-s 2 --history-clients 2 --history-rate 20
          --data-dir PATH --stored-before 0 --body-bytes 64 --grace 5 --p99-ms 50
          Windows of about --report-s until --duration, then more until --min-messages
          were ACKed (never past --max-time); each window is a pairs step, followed by its
          grace and a short quiet spell, so windows are apart by gaps (well under 1 s).
          --reconnects-per-s clients a second close their WebSocket and reconnect at once,
          keeping their cursors: what the resume sends again counts as redelivered; sends
          due meanwhile (and those whose `sent` was lost) go after `synced`, same cid. The
          history clients read /api/v1/dms/{peer}/messages?limit=50 (half with before_seq)
          of random pairs, open loop; all tokens are refreshed within half their lifetime.
          --data-dir: the server's data directory (sizes of imd.db, -wal, -shm per window);
          --stored-before: messages it held already (for bytes per stored message).
          A window passes with p99 send->deliver <= --p99-ms, nothing lost, duplicated or
          out of order, every send ACKed, no unexpected close and no failed history read.

Every run samples once a second the server's CPU and RSS, imbench's CPU and the machine's,
and names the bottleneck. Runs are bounded in count and time and stop by themselves.
)";

// The pid of the process holding a listening TCP socket on `port` (0 if not found).
int find_listener_pid(unsigned short port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      ls >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      if (st != "0A") continue;  // LISTEN
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port)
        inodes.insert("socket:[" + inode + "]");
    }
  }
  if (inodes.empty()) return 0;
  DIR* proc = ::opendir("/proc");
  if (!proc) return 0;
  int found = 0;
  while (auto* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string fds = std::string("/proc/") + e->d_name + "/fd";
    DIR* d = ::opendir(fds.c_str());
    if (!d) continue;
    while (auto* f = ::readdir(d)) {
      char target[128];
      std::string link = fds + "/" + f->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = 0;
      if (inodes.count(target)) {
        found = std::atoi(e->d_name);
        break;
      }
    }
    ::closedir(d);
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

// The port a process listens on (TCP, first found; 0 if none): for scripts that start imd
// on port 0 with a log level that does not print the bound address.
unsigned listen_port_of(int pid) {
  std::set<std::string> inodes;
  std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(fds.c_str())) {
    while (auto* f = ::readdir(d)) {
      char target[128];
      std::string link = fds + "/" + f->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = 0;
      std::string t(target);
      if (t.rfind("socket:[", 0) == 0) inodes.insert(t.substr(8, t.size() - 9));
    }
    ::closedir(d);
  }
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      ls >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      if (st != "0A" || !inodes.count(inode)) continue;
      return static_cast<unsigned>(std::stoul(local.substr(local.rfind(':') + 1), nullptr, 16));
    }
  }
  return 0;
}

int run(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "listen-port")) {
    unsigned port = listen_port_of(std::atoi(argv[2]));
    if (!port) return 1;
    std::printf("%u\n", port);
    return 0;
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kHelp, stdout);
    return argc < 2 ? 2 : 0;
  }
  Context ctx;
  ctx.scenario = argv[1];
  ctx.opts =
      Options(std::vector<std::string>(argv + 2, argv + argc), {"json", "find-max", "batch"});
  auto& o = ctx.opts;
  std::string host = o.str("host", "127.0.0.1");
  auto port = static_cast<unsigned short>(o.integer("port", 8080));
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) throw Failure("--host must be an IP address (loopback benchmarks), got '" + host + "'");
  ctx.server = {addr, port};
  ctx.host_header = host + ":" + std::to_string(port);
  ctx.server_pid = static_cast<int>(o.integer("server-pid", 0));
  if (!ctx.server_pid) ctx.server_pid = find_listener_pid(port);
  if (!ctx.server_pid) progress("server pid not found (give --server-pid): no server sampling");
  ctx.threads = static_cast<int>(o.integer("threads", 1));
  if (ctx.threads < 1 || ctx.threads > 2) throw Failure("--threads must be 1 or 2");
  char tag[16];
  std::snprintf(tag, sizeof tag, "%06ld%02d", static_cast<long>(std::time(nullptr) % 1000000),
                static_cast<int>(::getpid() % 100));
  ctx.tag = o.str("tag", tag);
  if (ctx.tag.size() != 8 || ctx.tag.find_first_not_of("0123456789") != std::string::npos) {
    throw Failure("--tag must be 8 digits");
  }
  if (o.flag("batch")) ctx.ws_query = "&batch=1";
  // soak's clients ACK like the web client: by time only.
  std::int64_t ack_every = o.integer("ack-every", ctx.scenario == "soak" ? 0 : 50);
  ctx.ack_policy.every = static_cast<std::uint32_t>(ack_every);
  ctx.ack_policy.interval_ns = o.integer("ack-interval-ms", 100) * 1'000'000;
  if (ack_every < 0 || ack_every > 1'000'000 || ctx.ack_policy.interval_ns < 0) {
    throw Failure("--ack-every must be in 0..1000000, --ack-interval-ms >= 0");
  }
  ctx.reporter = std::make_unique<Reporter>(
      o.flag("json"), o.str("jsonl", ""),
      boost::json::object{{"batch_frames", !ctx.ws_query.empty()},
                          {"imbench_threads", ctx.threads},
                          {"ack_every", ctx.ack_policy.every},
                          {"ack_interval_ms", ctx.ack_policy.interval_ns / 1'000'000}});
  ctx.per_source = static_cast<std::size_t>(o.integer("per-source", 15000));
  std::string src = o.str("src-base", "127.0.0.2");
  if (addr.is_loopback() && addr.is_v4() && src != "none") {
    auto base = boost::asio::ip::make_address_v4(src, ec);
    if (ec) throw Failure("--src-base must be an IPv4 address");
    for (unsigned i = 0; i < 16; ++i)
      ctx.sources.emplace_back(boost::asio::ip::address_v4(base.to_uint() + i));
  }

  // Sockets: as many as the hard limit allows.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }

  if (ctx.scenario == "pairs") {
    run_pairs(ctx);
  } else if (ctx.scenario == "group") {
    run_group(ctx);
  } else if (ctx.scenario == "idle") {
    run_idle(ctx);
  } else if (ctx.scenario == "catchup") {
    run_catchup(ctx);
  } else if (ctx.scenario == "history") {
    run_history(ctx);
  } else if (ctx.scenario == "soak") {
    run_soak(ctx);
  } else if (ctx.scenario == "presence") {
    run_presence(ctx);
  } else {
    throw Failure("unknown scenario '" + ctx.scenario + "' (see imbench --help)");
  }
  return 0;
}

}  // namespace
}  // namespace imbench

int main(int argc, char** argv) {
  try {
    return imbench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imbench: %s\n", e.what());
    return 1;
  }
}
