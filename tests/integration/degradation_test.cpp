// Circuit breakers fed by real traffic (docs/operations.md, "Degradation and circuit breaking"):
// a real Redis, started by scripts/services.sh for this test alone, is paused (SIGSTOP) under a
// stream of DMs. The server's probe runs once at start and then only every 10 minutes, so the
// Redis breaker can only open from the outcomes of the sends' own Redis calls; after SIGCONT a
// call's success closes it from half-open, again without a probe. Then every send, resent with
// its cid until ACKed, is stored once.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support/client.hpp"
#include "support/commands.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

// One redis-server of scripts/services.sh in a directory of its own, on a free port; stopped
// (and resumed first, if paused) when it goes.
class PrivateRedis {
 public:
  PrivateRedis()
      : dir_(std::filesystem::temp_directory_path() /
             ("imd-degradation-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    auto r = run_command(env() + " " IMD_SERVICES_SH " start redis");
    if (r.status != 0) {
      error_ = r.output;
      return;
    }
    std::ifstream in(dir_ / "redis.env");
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
        value = value.substr(1, value.size() - 2);
      }
      if (key == "REDIS_PID") pid_ = static_cast<pid_t>(std::stol(value));
      if (key == "REDIS_ADDRESS") address_ = value;
    }
  }
  ~PrivateRedis() {
    resume();
    run_command(env() + " " IMD_SERVICES_SH " stop redis");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& error() const { return error_; }
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  void pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

 private:
  std::string env() const { return "IMD_SERVICES_DIR=" + dir_.string() + " IMD_REDIS_PORT=0"; }
  std::filesystem::path dir_;
  std::string error_, address_;
  pid_t pid_ = 0;
};

// Waits (bounded) until the server's log contains `text`.
bool log_shows(const ServerProcess& server, const std::string& text, std::chrono::seconds limit) {
  for (auto until = std::chrono::steady_clock::now() + limit;
       std::chrono::steady_clock::now() < until;) {
    if (server.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);  // polling the log, bounded by `until`
  }
  return server.log().find(text) != std::string::npos;
}

TEST(Degradation, StalledRedisOpensItsBreakerFromTrafficAndASuccessClosesIt) {
  PrivateRedis redis;
  ASSERT_TRUE(redis.error().empty()) << redis.error();
  ASSERT_FALSE(redis.address().empty());
  ASSERT_GT(redis.pid(), 0);
  // The probe pings once at start, then every 10 minutes: only traffic can move the breaker.
  ServerProcess server({"--cache", "redis", "--redis-addresses", redis.address(),
                        "--breaker-probe-interval-ms", "600000"});
  server.start();
  Http http(server.host(), server.port());
  auto alice = make_account(http, "alice"), bob = make_account(http, "bob");
  Ws wa(server.host(), server.port(), alice.access), wb(server.host(), server.port(), bob.access);
  ASSERT_TRUE(wa.recv_op("synced"));
  ASSERT_TRUE(wb.recv_op("synced"));

  std::map<std::string, std::uint64_t> acked;  // cid -> seq of its `sent`
  std::vector<std::string> cids;
  auto take = [&](const bj::object& f) {
    if (str(f, "op") == "sent") acked[str(f, "cid")] = num(f, "seq");
  };
  auto send = [&](const std::string& cid) { wa.send(send_dm(cid, bob.id, "body of " + cid)); };
  cids.push_back("before");
  send("before");
  ASSERT_TRUE(wa.recv_op("sent", 10s));
  acked["before"] = 1;

  redis.pause();
  // DMs while Redis does not answer: their Redis calls (routes, the inbox) fail after the
  // client's command timeout, and three failures in a row open the breaker.
  for (int i = 0; i < 4; ++i) {
    cids.push_back("stalled" + std::to_string(i));
    send(cids.back());
  }
  const std::string opened = "breaker redis: closed -> open (";
  const bool open = log_shows(server, opened, 40s);
  EXPECT_TRUE(open) << server.log();
  const std::string log = server.log();
  const auto at = log.find(opened);
  if (at != std::string::npos) {
    const std::string line = log.substr(at, log.find('\n', at) - at);
    // The probe's watch would say "no answer within ... (deadline ...)": this was traffic.
    EXPECT_EQ(line.find("deadline"), std::string::npos) << line;
  }
  redis.resume();

  // After breaker.open_ms it is half-open; the next call that succeeds closes it.
  const std::string closed = "breaker redis: half_open -> closed";
  bool is_closed = false;
  for (auto until = std::chrono::steady_clock::now() + 30s;
       !is_closed && std::chrono::steady_clock::now() < until;) {
    cids.push_back("after" + std::to_string(cids.size()));
    send(cids.back());
    // One DM about every 300 ms, its answers taken meanwhile.
    for (auto next = std::chrono::steady_clock::now() + 300ms;
         std::chrono::steady_clock::now() < next;) {
      if (auto f = wa.recv(50ms)) take(*f);
    }
    is_closed = server.log().find(closed) != std::string::npos;
  }
  EXPECT_TRUE(is_closed) << server.log();
  EXPECT_EQ(server.log().find("no answer within"), std::string::npos)
      << "a probe moved the breaker: " << server.log();

  // Every send not ACKed is resent with its cid until it is (bounded).
  for (auto until = std::chrono::steady_clock::now() + 60s;
       acked.size() < cids.size() && std::chrono::steady_clock::now() < until;) {
    for (const auto& c : cids) {
      if (!acked.count(c)) send(c);
    }
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (acked.size() < cids.size() && std::chrono::steady_clock::now() < deadline) {
      if (auto f = wa.recv(500ms)) take(*f);
    }
  }
  ASSERT_EQ(acked.size(), cids.size());
  // Stored once each, with the seq its ACK named.
  auto r = http.get("/api/v1/dms/" + bob.id + "/messages?limit=100", alice.access);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& msgs = r.json.as_object().at("messages").as_array();
  EXPECT_EQ(msgs.size(), cids.size());
  std::set<std::string> seen;
  for (const auto& m : msgs) {
    const auto cid = str(m.as_object(), "cid");
    EXPECT_TRUE(seen.insert(cid).second) << cid << " stored twice";
    EXPECT_EQ(acked[cid], num(m.as_object(), "seq")) << cid;
  }
}

}  // namespace
}  // namespace imd::test
