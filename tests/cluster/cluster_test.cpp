// The distributed deployment, black-box: the local cluster of scripts/cluster.sh (MariaDB, a
// 3-master Redis Cluster, NATS JetStream, etcd, two gateways, two logic workers, one api,
// nginx in front). Clients connect through nginx, or straight to one gateway where a test
// needs to know which one holds a connection. Processes are killed with kill -9 through
// cluster.sh and started again at the end of the test.
//
// Environment (set by tests/cluster/CMakeLists.txt): IMD_TEST_CLUSTER_ENV (the state file of
// cluster.sh), IMD_TEST_CLUSTER_SCRIPT, and cluster.sh's own IMD_CLUSTER_* variables. Without
// IMD_TEST_CLUSTER_ENV the suite is skipped.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "support/client.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

bool is_op(const bj::object& f, const char* op) {
  return str(f, "op") == op;
}

struct Endpoint {
  std::string host;
  unsigned short port = 0;
};

Endpoint endpoint_of(const std::string& url) {  // http://HOST:PORT
  auto rest = url.substr(url.find("//") + 2);
  auto colon = rest.rfind(':');
  return {rest.substr(0, colon), static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)))};
}

class Cluster : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("IMD_TEST_CLUSTER_ENV");
    if (!env || !*env) GTEST_SKIP() << "IMD_TEST_CLUSTER_ENV is not set: no cluster to test";
    load_state(env);
    nginx_ = endpoint_of(state_.at("CLUSTER_URL"));
  }

  void load_state(const std::string& path) {
    state_.clear();
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot read " << path;
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) state_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }

  Endpoint node(const std::string& upper_name) {
    return endpoint_of(state_.at(upper_name + "_URL"));
  }
  Http http() { return Http(nginx_.host, nginx_.port); }

  // Runs scripts/cluster.sh with the arguments; fails the test if it fails.
  void cluster(const std::string& args) {
    std::string cmd = std::string(std::getenv("IMD_TEST_CLUSTER_SCRIPT")) + " " + args;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  std::unique_ptr<Ws> connect_to(const Endpoint& e, const Account& a) {
    auto ws = std::make_unique<Ws>(e.host, e.port, a.access);
    auto frames = ws->recv_until([](const bj::object& f) { return is_op(f, "synced"); }, 20s);
    EXPECT_TRUE(!frames.empty() && is_op(frames.back(), "synced")) << "no synced";
    return ws;
  }

  std::string make_channel(const Account& owner, const std::vector<const Account*>& members) {
    Http h = http();
    return make_space_channel(h, owner, members).channel_id;
  }

  // Every stored message of a conversation, by seq (REST history through nginx).
  std::vector<bj::object> history(const std::string& path, const std::string& token) {
    std::vector<bj::object> out;
    Http h = http();
    std::uint64_t after = 0;
    for (;;) {
      auto r = h.get(path + "?limit=100&after_seq=" + std::to_string(after), token);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      const auto& msgs = r.json.as_object().at("messages").as_array();
      for (const auto& m : msgs) {
        out.push_back(m.as_object());
        after = num(m.as_object(), "seq");
      }
      if (msgs.size() < 100) break;
    }
    return out;
  }

  // One sample of a gateway's /metrics, or -1 when it is not there.
  double metric(const std::string& node_name, const std::string& series) {
    auto e = node(node_name);
    Http h(e.host, e.port);
    auto r = h.get("/metrics");
    if (r.status != 200) return -1;
    auto at = r.body.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(r.body.substr(at + series.size() + 2));
  }

  // The sum of one series over some processes (a missing sample counts as 0).
  double metric_sum(const std::vector<std::string>& node_names, const std::string& series) {
    double sum = 0;
    for (const auto& n : node_names) sum += std::max(0.0, metric(n, series));
    return sum;
  }
  // Waits (bounded) until the sum of `series` over `node_names` exceeds `above`; returns it.
  double metric_sum_above(const std::vector<std::string>& node_names, const std::string& series,
                          double above) {
    double now = metric_sum(node_names, series);
    for (auto until = std::chrono::steady_clock::now() + 10s;
         now <= above && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(50ms);  // polling a counter, bounded by `until`
      now = metric_sum(node_names, series);
    }
    return now;
  }

  // The pid of a service cluster.sh started (services/<name>.env holds it as `var`).
  pid_t service_pid(const std::string& name, const std::string& var) {
    std::ifstream in(state_.at("CLUSTER_DIR") + "/services/" + name + ".env");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(var + "=", 0) == 0)
        return static_cast<pid_t>(std::stol(line.substr(var.size() + 1)));
    }
    ADD_FAILURE() << "no " << var << " in services/" << name << ".env";
    return 0;
  }

  void breaker_drill(const std::string& service, const std::string& pid_var,
                     const std::string& dependency);

  std::map<std::string, std::string> state_;
  Endpoint nginx_;
};

// SIGSTOP on a service, SIGCONT when resumed or at the end of the scope (a failed assertion
// must not leave the cluster paused).
class Paused {
 public:
  explicit Paused(pid_t pid) : pid_(pid) {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  ~Paused() { resume(); }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    pid_ = 0;
  }

 private:
  pid_t pid_;
};

// Every master of the Redis Cluster killed (kill -9), started again from its redis.conf (as
// scripts/chaos.sh does) by restart() or at the end of the scope: a failed assertion must not
// leave the cluster without Redis. Restarted masters keep their slots (nodes.conf) but no data.
class RedisDown {
 public:
  RedisDown(std::string basedir, std::vector<std::string> ports)
      : dir_(std::move(basedir)), ports_(std::move(ports)) {
    for (const auto& p : ports_) {
      const std::string cmd = "kill -KILL $(cat '" + dir_ + "/" + p + "/redis.pid')";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  ~RedisDown() { restart(); }
  // Starts every master again and waits (bounded) until the cluster answers cluster_state:ok.
  bool restart() {
    if (ports_.empty()) return true;
    bool ok = true;
    for (const auto& p : ports_) {
      const std::string cmd =
          "setsid redis-server '" + dir_ + "/" + p + "/redis.conf' </dev/null >/dev/null 2>&1 &";
      ok = std::system(cmd.c_str()) == 0 && ok;
    }
    for (const auto& p : ports_) {
      const std::string cmd = "for i in $(seq 300); do redis-cli -p " + p +
                              " cluster info 2>/dev/null | grep -q cluster_state:ok && exit 0;"
                              " sleep 0.1; done; exit 1";
      ok = std::system(cmd.c_str()) == 0 && ok;
    }
    ports_.clear();
    return ok;
  }

 private:
  std::string dir_;
  std::vector<std::string> ports_;
};

// A member's view of a channel: messages by seq, duplicates dropped as a client drops them
// (a resync may bring again what arrived before a connection died), gaps and disorder caught.
struct Receiver {
  std::uint64_t last = 0;
  std::size_t duplicates = 0;
  std::string error;
  // Messages, and the `sent` ACKs of a sender's own messages (its connection gets no copy).
  void take(const bj::object& f) {
    if (!is_op(f, "msg") && !is_op(f, "sent")) return;
    auto seq = num(f, "seq");
    if (seq <= last) {
      ++duplicates;
      return;
    }
    if (seq != last + 1 && error.empty()) {
      error = "gap: got seq " + std::to_string(seq) + " after " + std::to_string(last);
    }
    last = seq;
  }
};

// The hops are gRPC Push calls from the logic worker to each gateway, timed on both sides
// (imd_rpc_*_call_seconds{method="Push"}); every process times its etcd calls.
TEST_F(Cluster, SenderAndRecipientOnDifferentGateways) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_to(node("GATEWAY1"), a);
  auto wb = connect_to(node("GATEWAY2"), b);
  const std::vector<std::string> logic = {"LOGIC1", "LOGIC2"}, gateway2 = {"GATEWAY2"};
  const std::string client_calls = "imd_rpc_client_call_seconds_count{method=\"Push\"}",
                    server_calls = "imd_rpc_server_call_seconds_count{method=\"Push\"}";
  const double client_before = metric_sum(logic, client_calls),
               server_before = metric_sum(gateway2, server_calls);
  wa->send(send_dm("x1", b.id, "across gateways"));
  auto sent = wa->recv_op("sent", 10s);
  ASSERT_TRUE(sent);
  EXPECT_EQ(num(*sent, "seq"), 1u);
  auto msg = wb->recv_op("msg", 10s);
  ASSERT_TRUE(msg);
  // The `sent` to gateway1 and the `msg` to gateway2: at least two calls, one served by gateway2.
  EXPECT_GE(metric_sum_above(logic, client_calls, client_before + 1), client_before + 2);
  EXPECT_GE(metric_sum_above(gateway2, server_calls, server_before), server_before + 1);
  EXPECT_GE(metric("GATEWAY2", "imd_rpc_server_errors_total{method=\"Push\"}"), 0) << "exported";
  for (const char* n : {"GATEWAY1", "GATEWAY2", "API", "LOGIC1", "LOGIC2"}) {
    EXPECT_GE(
        metric(n, "imd_registry_call_seconds_count{engine=\"etcd\",operation=\"keep_alive\"}"), 1)
        << n;
    EXPECT_GE(metric(n, "imd_registry_call_seconds_count{engine=\"etcd\",operation=\"watch\"}"), 1)
        << n;
  }
  EXPECT_EQ(str(*msg, "body"), "across gateways");
  EXPECT_EQ(str(*msg, "id"), str(*sent, "id"));
  // And back, through the other gateway.
  wb->send(send_dm("y1", a.id, "and back"));
  ASSERT_TRUE(wb->recv_op("sent", 10s));
  auto back = wa->recv_op("msg", 10s);
  ASSERT_TRUE(back);
  EXPECT_EQ(str(*back, "body"), "and back");
  EXPECT_EQ(num(*back, "seq"), 2u);
  // A read marker set on one device reaches the user's other device on the other gateway.
  auto wa2 = connect_to(node("GATEWAY2"), a);
  wa->send(bj::object{{"op", "read"}, {"conversation", "dm:" + b.id}, {"seq", 2}});
  auto read = wa2->recv_op("read", 10s);
  ASSERT_TRUE(read);
  EXPECT_EQ(num(*read, "seq"), 2u);
  EXPECT_EQ(str(*read, "conversation"), "dm:" + b.id);
}

// Presence is folded over devices on both gateways and reaches watchers on both: the status
// and the watchers live in Redis beside the routes, and a change travels to other gateways as a
// gRPC push. The api process answers the REST read from the same state.
TEST_F(Cluster, PresenceFoldsDevicesOnBothGatewaysAndReachesWatchersOnBoth) {
  Http h = http();
  auto a = make_account(h, "present"), b = make_account(h, "watcher1");
  auto c = make_account(h, "watcher2");
  make_channel(a, {&b, &c});
  auto wb = connect_to(node("GATEWAY2"), b);
  auto wc = connect_to(node("GATEWAY1"), c);
  for (Ws* ws : {wb.get(), wc.get()}) {
    ws->send(bj::object{{"op", "presence_sub"}, {"users", bj::array{a.id.c_str()}}});
    auto r = ws->recv_op("presence_sub", 10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->at("presence").at(a.id).as_string(), "offline");
  }
  auto next = [&](Ws& ws) -> std::string {
    for (;;) {
      auto f = ws.recv_op("presence", 15s);
      if (!f) return "";
      if (str(*f, "user") == a.id) return str(*f, "status");
    }
  };
  auto both = [&](const char* status) {
    EXPECT_EQ(next(*wb), status);
    EXPECT_EQ(next(*wc), status);
  };
  auto a1 = connect_to(node("GATEWAY1"), a);
  both("online");
  a1->send(bj::object{{"op", "idle"}, {"idle", true}});
  both("away");
  auto a2 = connect_to(node("GATEWAY2"), a);  // active, on the other gateway
  both("online");
  a2.reset();  // the idle device on gateway 1 is left
  both("away");
  auto rest = h.get("/api/v1/presence?ids=" + a.id, b.access);
  ASSERT_EQ(rest.status, 200) << rest.body;
  EXPECT_EQ(rest.json.at("presence").at(a.id).as_string(), "away");
  a1.reset();  // offline once the grace (ws.presence_grace_ms) passed
  both("offline");
}

// "Log out everywhere" on the api process ends the user's sessions on every gateway: each
// gateway reads the stored account state (auth.account_poll_ms) and closes the user's sockets,
// and refuses the old token from then on; the other users' sockets stay.
TEST_F(Cluster, EndedSessionsCloseSocketsOnEveryGatewayAndStayRefused) {
  Http h = http();
  auto a = make_account(h, "leaver"), b = make_account(h, "stayer");
  auto w1 = connect_to(node("GATEWAY1"), a);
  auto w2 = connect_to(node("GATEWAY2"), a);
  auto other = connect_to(node("GATEWAY2"), b);
  auto ended = h.request("DELETE", "/api/v1/users/me/sessions", std::nullopt, a.access);
  ASSERT_EQ(ended.status, 204) << ended.body;
  EXPECT_TRUE(w1->wait_closed(15s));
  EXPECT_TRUE(w2->wait_closed(15s));
  EXPECT_FALSE(other->closed());
  for (const char* gw : {"GATEWAY1", "GATEWAY2"}) {
    const Endpoint e = node(gw);
    EXPECT_THROW(Ws(e.host, e.port, a.access), std::exception) << gw;
  }
  other->send(send_dm("still-here", a.id, "are you gone?"));
  EXPECT_TRUE(other->recv_op("sent", 10s));
}

// Ending one session on the api process ends it on every gateway: each reads the sessions
// ended since its last look (auth.account_poll_ms), closes that session's sockets with 4003 and
// refuses its token; the user's other session, on either gateway, goes on.
TEST_F(Cluster, AnEndedSessionClosesItsSocketsOnEveryGatewayAndOnlyThose) {
  Http h = http();
  auto laptop = make_account(h, "two-devices");
  auto login = h.post("/api/v1/auth/login",
                      bj::object{{"phone", laptop.phone}, {"password", laptop.password}});
  ASSERT_EQ(login.status, 200) << login.body;
  Account phone = laptop;
  phone.access = login.str("access_token");
  auto p1 = connect_to(node("GATEWAY1"), phone);
  auto p2 = connect_to(node("GATEWAY2"), phone);
  auto l1 = connect_to(node("GATEWAY1"), laptop);
  auto l2 = connect_to(node("GATEWAY2"), laptop);
  auto list = h.get("/api/v1/users/me/sessions", phone.access);
  ASSERT_EQ(list.status, 200) << list.body;
  std::string phone_session;
  for (const auto& v : list.json.as_object().at("sessions").as_array()) {
    if (v.as_object().at("current").as_bool()) phone_session = v.as_object().at("id").as_string();
  }
  ASSERT_FALSE(phone_session.empty()) << list.body;
  auto ended = h.request("DELETE", "/api/v1/users/me/sessions/" + phone_session, std::nullopt,
                         laptop.access);
  ASSERT_EQ(ended.status, 204) << ended.body;
  EXPECT_TRUE(p1->wait_closed(15s));
  EXPECT_TRUE(p2->wait_closed(15s));
  EXPECT_FALSE(l1->closed());
  EXPECT_FALSE(l2->closed());
  for (const char* gw : {"GATEWAY1", "GATEWAY2"}) {
    const Endpoint e = node(gw);
    EXPECT_THROW(Ws(e.host, e.port, phone.access), std::exception) << gw;
    EXPECT_NO_THROW(Ws(e.host, e.port, laptop.access)) << gw;
  }
}

TEST_F(Cluster, ChannelWithMembersOnBothGatewaysGetsEveryMessageInOrder) {
  Http h = http();
  std::vector<Account> members;
  for (int i = 0; i < 6; ++i) members.push_back(make_account(h, "m" + std::to_string(i)));
  std::vector<const Account*> joiners;
  for (int i = 1; i < 6; ++i) joiners.push_back(&members[i]);
  std::string ch = make_channel(members[0], joiners);
  std::vector<std::unique_ptr<Ws>> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(connect_to(node(i % 2 ? "GATEWAY2" : "GATEWAY1"), members[i]));
  }
  // Two senders, one on each gateway, interleaved.
  constexpr int kPer = 100;
  for (int i = 0; i < kPer; ++i) {
    conns[0]->send(send_channel("a" + std::to_string(i), ch, "from gw1"));
    conns[1]->send(send_channel("b" + std::to_string(i), ch, "from gw2"));
  }
  for (int i = 0; i < 6; ++i) {
    Receiver rx;
    while (rx.last < 2 * kPer) {
      auto f = conns[i]->recv(15s);
      ASSERT_TRUE(f) << "member " << i << " stopped at seq " << rx.last;
      rx.take(*f);
      ASSERT_TRUE(rx.error.empty()) << "member " << i << ": " << rx.error;
    }
    EXPECT_EQ(rx.duplicates, 0u) << "member " << i;
  }
}

TEST_F(Cluster, TheSameSendTwiceIsStoredOnce) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  // The same cid from two devices of the sender, on two gateways, at once: two publishes of
  // one message id; JetStream and the store keep one.
  auto w1 = connect_to(node("GATEWAY1"), a);
  auto w2 = connect_to(node("GATEWAY2"), a);
  for (int i = 0; i < 20; ++i) {
    auto frame = send_dm("dup" + std::to_string(i), b.id, "once " + std::to_string(i));
    w1->send(frame);
    w2->send(frame);
  }
  std::map<std::string, std::set<std::string>> ids;  // cid -> message ids ACKed
  for (auto* w : {w1.get(), w2.get()}) {
    for (int got = 0; got < 20;) {
      auto f = w->recv(15s);
      ASSERT_TRUE(f) << "missing sent ACKs";
      if (!is_op(*f, "sent")) continue;
      ids[str(*f, "cid")].insert(str(*f, "id"));
      ++got;
    }
  }
  ASSERT_EQ(ids.size(), 20u);
  for (const auto& [cid, set] : ids) EXPECT_EQ(set.size(), 1u) << cid << " ACKed with two ids";
  auto stored = history("/api/v1/dms/" + b.id + "/messages", a.access);
  EXPECT_EQ(stored.size(), 20u);
}

TEST_F(Cluster, KillNineGatewayClientsReconnectThroughNginxAndLoseNothing) {
  Http h = http();
  auto sender = make_account(h, "sender");
  std::vector<Account> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(make_account(h, "r" + std::to_string(i)));
  std::vector<const Account*> joiners;
  for (auto& r : readers) joiners.push_back(&r);
  std::string ch = make_channel(sender, joiners);
  // Readers through nginx (round robin: both gateways hold some), the sender on gateway 2,
  // which survives.
  std::vector<std::unique_ptr<Ws>> conns;
  for (auto& r : readers) conns.push_back(connect_to(nginx_, r));
  auto ws = connect_to(node("GATEWAY2"), sender);

  constexpr int kTotal = 300;
  std::atomic<int> acked{0};
  std::thread producer([&] {
    for (int i = 0; i < kTotal; ++i) {
      ws->send(send_channel("g" + std::to_string(i), ch, "m" + std::to_string(i)));
      std::this_thread::sleep_for(10ms);
    }
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{producer};
  std::this_thread::sleep_for(800ms);
  cluster("kill gateway1");

  std::vector<Receiver> rx(readers.size());
  std::size_t reconnects = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (std::size_t i = 0; i < readers.size(); ++i) {
    while (rx[i].last < kTotal && std::chrono::steady_clock::now() < deadline) {
      auto f = conns[i]->recv(1s);
      if (f) {
        rx[i].take(*f);
        if (is_op(*f, "msg") && rx[i].last % 50 == 0) {
          conns[i]->send(
              bj::object{{"op", "ack"}, {"conversation", "channel:" + ch}, {"seq", rx[i].last}});
        }
        continue;
      }
      if (!conns[i]->closed()) continue;
      // The gateway died: reconnect through nginx, which sends us to the survivor, and tell
      // it what we hold.
      ++reconnects;
      conns[i] = std::make_unique<Ws>(nginx_.host, nginx_.port, readers[i].access);
      conns[i]->send(
          bj::object{{"op", "sync"}, {"cursors", bj::object{{"channel:" + ch, rx[i].last}}}});
    }
    EXPECT_TRUE(rx[i].error.empty()) << "reader " << i << ": " << rx[i].error;
    EXPECT_EQ(rx[i].last, static_cast<std::uint64_t>(kTotal)) << "reader " << i;
  }
  producer.join();
  for (int got = 0; got < kTotal;) {
    auto f = ws->recv(10s);
    if (!f) break;
    if (is_op(*f, "sent")) ++got, ++acked;
  }
  EXPECT_EQ(acked.load(), kTotal);
  EXPECT_GE(reconnects, 1u) << "no reader was on the killed gateway";
  RecordProperty("reconnects", static_cast<int>(reconnects));
  cluster("start gateway1");
}

TEST_F(Cluster, KillNineLogicWorkerLosesNoAckedMessageAndKeepsOrder) {
  Http h = http();
  auto a = make_account(h, "alice");
  // DMs to many peers: their conversations spread over the partitions, so whichever worker
  // dies held some of them.
  constexpr int kPeers = 12, kTotal = 480;
  std::vector<Account> peers;
  for (int i = 0; i < kPeers; ++i) peers.push_back(make_account(h, "p" + std::to_string(i)));
  auto wa = connect_to(node("GATEWAY1"), a);
  auto wp = connect_to(node("GATEWAY2"), peers[0]);  // one recipient online, on the other gateway
  std::thread producer([&] {
    for (int i = 0; i < kTotal; ++i) {
      wa->send(send_dm("l" + std::to_string(i), peers[i % kPeers].id, "m" + std::to_string(i)));
      std::this_thread::sleep_for(6ms);
    }
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{producer};
  std::this_thread::sleep_for(1s);
  cluster("kill logic1");

  // Every send is ACKed in the end: what logic1 held is redelivered to logic2 once logic1's
  // partition leases expire.
  std::map<std::string, std::uint64_t> acked;  // cid -> seq
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while (acked.size() < kTotal && std::chrono::steady_clock::now() < deadline) {
    auto f = wa->recv(1s);
    if (f && is_op(*f, "sent")) acked[str(*f, "cid")] = num(*f, "seq");
    if (f && is_op(*f, "error")) ADD_FAILURE() << bj::serialize(*f);
  }
  producer.join();
  EXPECT_EQ(acked.size(), static_cast<std::size_t>(kTotal));
  // The online recipient: every seq once, in order (redelivered duplicates dropped by seq).
  Receiver rx;
  while (rx.last < kTotal / kPeers && std::chrono::steady_clock::now() < deadline) {
    auto f = wp->recv(2s);
    if (f) rx.take(*f);
  }
  EXPECT_TRUE(rx.error.empty()) << rx.error;
  EXPECT_EQ(rx.last, static_cast<std::uint64_t>(kTotal / kPeers));
  // Stored exactly once each, in the order they were sent, with the seq their ACK named.
  for (int k = 0; k < kPeers; ++k) {
    auto stored = history("/api/v1/dms/" + peers[k].id + "/messages", a.access);
    ASSERT_EQ(stored.size(), static_cast<std::size_t>(kTotal / kPeers)) << "peer " << k;
    for (std::size_t j = 0; j < stored.size(); ++j) {
      EXPECT_EQ(num(stored[j], "seq"), j + 1);
      std::string cid = "l" + std::to_string(j * kPeers + k);
      EXPECT_EQ(str(stored[j], "cid"), cid) << "peer " << k << ": stored out of send order";
      auto it = acked.find(cid);
      if (it != acked.end()) {
        EXPECT_EQ(it->second, j + 1) << cid;
      }
    }
  }
  cluster("start logic1");
}

// A dependency every send needs stalls (SIGSTOP): its breaker opens on the gateway, which
// answers sends at once with `unavailable` naming the open circuit, instead of queuing them;
// after SIGCONT the breaker closes, the refused sends are retried with their cids (as a client
// does), and every send ends ACKed, stored once, in seq order, delivered in order.
void Cluster::breaker_drill(const std::string& service, const std::string& pid_var,
                            const std::string& dependency) {
  Http h = http();
  auto a = make_account(h, "brk-a-" + dependency), b = make_account(h, "brk-b-" + dependency);
  auto wa = connect_to(node("GATEWAY1"), a);
  auto wb = connect_to(node("GATEWAY2"), b);
  const std::string state = "imd_breaker_state{dependency=\"" + dependency + "\"}";
  ASSERT_EQ(metric("GATEWAY1", state), 0) << "closed before the drill";

  std::vector<std::string> cids;               // every cid sent, in first-send order
  std::map<std::string, std::uint64_t> acked;  // cid -> seq of its `sent`
  std::set<std::string> to_retry;              // answered `unavailable`, not ACKed yet
  std::size_t refused_by_breaker = 0;
  Receiver rx;
  auto send_new = [&] {
    cids.push_back("k" + std::to_string(cids.size()));
    wa->send(send_dm(cids.back(), b.id, "m" + cids.back()));
  };
  // Reads alice's frames for `ms`; every error must be an `unavailable` the client may retry.
  auto pump = [&](std::chrono::milliseconds ms) {
    auto until = std::chrono::steady_clock::now() + ms;
    while (std::chrono::steady_clock::now() < until) {
      auto f = wa->recv(20ms);
      if (f && is_op(*f, "sent")) {
        acked[str(*f, "cid")] = num(*f, "seq");
        to_retry.erase(str(*f, "cid"));
      } else if (f && is_op(*f, "error")) {
        ASSERT_EQ(str(*f, "code"), "unavailable") << bj::serialize(*f);
        if (!acked.count(str(*f, "cid"))) to_retry.insert(str(*f, "cid"));
        if (str(*f, "message").find(dependency + " is unavailable (circuit open)") !=
            std::string::npos) {
          ++refused_by_breaker;
        }
      }
      while (auto g = wb->recv(0ms)) rx.take(*g);
    }
  };
  // The cluster may still be settling after the test before (a resumed engine, partitions
  // moving): the first sends get a minute.
  for (int i = 0; i < 5; ++i) send_new();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (acked.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& cid : to_retry) wa->send(send_dm(cid, b.id, "m" + cid));
    pump(1s);
  }
  ASSERT_EQ(acked.size(), 5u) << "no `sent` before the drill";

  Paused paused(service_pid(service, pid_var));
  // The probe's deadline is 1 s and 3 failures open the breaker: within seconds.
  deadline = std::chrono::steady_clock::now() + 30s;
  while (refused_by_breaker == 0 && std::chrono::steady_clock::now() < deadline) {
    send_new();
    pump(200ms);
  }
  ASSERT_GT(refused_by_breaker, 0u) << "no send was refused by the " << dependency << " breaker";
  // Open, or half-open while a probe waits for the stopped engine: not closed.
  EXPECT_NE(metric("GATEWAY1", state), 0) << "closed while " << service << " is stopped";
  // While not closed, a send is answered at once (not after an engine timeout).
  const std::size_t before = refused_by_breaker;
  send_new();
  pump(500ms);
  EXPECT_GT(refused_by_breaker, before) << "a send while open was not refused within 500 ms";
  paused.resume();

  // Recovery: resend what was refused (same cid) until every send is ACKed.
  deadline = std::chrono::steady_clock::now() + 120s;
  while (acked.size() < cids.size() && std::chrono::steady_clock::now() < deadline) {
    for (const auto& cid : to_retry) wa->send(send_dm(cid, b.id, "m" + cid));
    pump(1s);
  }
  ASSERT_EQ(acked.size(), cids.size()) << to_retry.size() << " sends still refused";
  EXPECT_GE(metric("GATEWAY1", "imd_breaker_transitions_total{dependency=\"" + dependency +
                                   "\",to=\"closed\"}"),
            1);
  // Every process's breaker closes again, each at its own next probe (an open period doubles
  // up to breaker.max_open_ms, 8 s, while the engine stays away): the api's too, before the
  // history is read through it.
  for (const char* n : {"GATEWAY1", "GATEWAY2", "API", "LOGIC1", "LOGIC2"}) {
    auto until = std::chrono::steady_clock::now() + 30s;
    while (metric(n, state) != 0 && std::chrono::steady_clock::now() < until) pump(100ms);
    EXPECT_EQ(metric(n, state), 0) << n << ": not closed again after " << service << " resumed";
  }
  // Stored once each, dense seqs, each with the seq its ACK named.
  auto stored = history("/api/v1/dms/" + b.id + "/messages", a.access);
  ASSERT_EQ(stored.size(), cids.size());
  std::set<std::string> seen;
  for (std::size_t j = 0; j < stored.size(); ++j) {
    EXPECT_EQ(num(stored[j], "seq"), j + 1);
    const auto cid = str(stored[j], "cid");
    EXPECT_TRUE(seen.insert(cid).second) << cid << " stored twice";
    EXPECT_EQ(acked[cid], j + 1) << cid;
  }
  // The recipient got every message once, in order.
  deadline = std::chrono::steady_clock::now() + 30s;
  while (rx.last < cids.size() && std::chrono::steady_clock::now() < deadline) {
    if (auto g = wb->recv(1s)) rx.take(*g);
  }
  EXPECT_TRUE(rx.error.empty()) << rx.error;
  EXPECT_EQ(rx.last, cids.size());
}

// The canary route of cluster.sh (nginx asks the api whose connection it is, then routes by
// allow list and split_clients share): 0% sends everyone but the allow list to the stable
// gateway, 100% everyone to the canary; any share keeps each user on one side; `canary off`
// (the rollback) brings round robin back.
TEST_F(Cluster, CanaryRouteSendsTheChosenUsersToTheCanaryGateway) {
  Http h = http();
  std::vector<Account> users;
  for (int i = 0; i < 12; ++i) users.push_back(make_account(h, "canary" + std::to_string(i)));
  // Whatever fails, the route is rolled back for the tests after this one.
  std::shared_ptr<void> off(nullptr, [this](void*) { cluster("canary off"); });
  const std::string opened = "imd_ws_connections_opened_total";
  std::vector<std::unique_ptr<Ws>> open;
  // Which gateway took the user's next connection through nginx: 1 (stable) or 2 (canary),
  // by whose count of opened sessions went up (a monotonic counter: closes do not disturb it).
  auto land = [&](const Account& a) -> int {
    const double g1 = metric("GATEWAY1", opened), g2 = metric("GATEWAY2", opened);
    open.push_back(connect_to(nginx_, a));
    const double n1 = metric("GATEWAY1", opened), n2 = metric("GATEWAY2", opened);
    EXPECT_EQ(n1 + n2, g1 + g2 + 1) << "one connection, one session";
    return n2 > g2 ? 2 : 1;
  };

  cluster("canary 0 " + users[0].id + "," + users[1].id);
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(land(users[0]), 2) << "allow-listed";
    EXPECT_EQ(land(users[1]), 2) << "allow-listed";
    for (int i = 2; i < 6; ++i) EXPECT_EQ(land(users[i]), 1) << "user " << i << " at 0%";
  }
  open.clear();

  cluster("canary 100");
  for (int i = 0; i < 6; ++i) EXPECT_EQ(land(users[i]), 2) << "user " << i << " at 100%";
  open.clear();

  cluster("canary 50");
  int canary = 0;
  for (const auto& u : users) {
    const int first = land(u);
    EXPECT_EQ(land(u), first) << "a user stays on one side of the split";
    canary += first == 2 ? 1 : 0;
  }
  // 12 users at 50%: all on one side has a chance of 1 in 2048.
  EXPECT_GT(canary, 0);
  EXPECT_LT(canary, 12);
  open.clear();

  cluster("canary off");
  std::set<int> sides;
  for (int i = 0; i < 4; ++i) sides.insert(land(users[0]));
  EXPECT_EQ(sides.size(), 2u) << "round robin over both gateways after the rollback";
}

// Redis away (every master killed): the logic workers can read no route and write no DM inbox.
// A DM sent meanwhile still reaches its recipient on the other gateway live, without a
// reconnect: the failed lookup becomes a user-addressed push to every gateway (counted in
// imd_routes_fallback_broadcasts_total). Its `sent` waits for the inbox (docs/architecture.md
// §2): once Redis is back the sender's resend with the same cid is answered with the seq the
// recipient already holds, and the message is stored once. After that, routes serve again: a
// DM to a connection made since arrives live through them, with no fallback counted.
TEST_F(Cluster, RedisDownRoutesFallBackToAUserAddressedPushAndNothingAckedIsLost) {
  Http h = http();
  auto a = make_account(h, "rdown-a"), b = make_account(h, "rdown-b");
  auto wa = connect_to(node("GATEWAY1"), a);
  auto wb = connect_to(node("GATEWAY2"), b);
  const std::vector<std::string> logic = {"LOGIC1", "LOGIC2"};
  const std::string fallback = "imd_routes_fallback_broadcasts_total";
  // Waits for the `sent` of `cid` on `ws`; another cid's frames and errors are skipped.
  auto sent_of = [](Ws& ws, const std::string& cid,
                    std::chrono::milliseconds wait) -> std::optional<bj::object> {
    auto frames = ws.recv_until(
        [&](const bj::object& f) { return is_op(f, "sent") && str(f, "cid") == cid; }, wait);
    if (frames.empty() || !is_op(frames.back(), "sent")) return std::nullopt;
    return frames.back();
  };

  wa->send(send_dm("r0", b.id, "before"));
  auto sent0 = sent_of(*wa, "r0", 20s);
  ASSERT_TRUE(sent0) << "no `sent` before Redis went away";
  auto msg0 = wb->recv_op("msg", 10s);
  ASSERT_TRUE(msg0);
  EXPECT_EQ(num(*msg0, "seq"), 1u);
  const double before = metric_sum(logic, fallback);
  ASSERT_GE(before, 0) << fallback << " is exported by the logic workers";

  std::string ports;
  std::ifstream env(state_.at("CLUSTER_DIR") + "/services/redis-cluster.env");
  std::string basedir;
  for (std::string line; std::getline(env, line);) {
    auto value = [&](const std::string& var) { return line.substr(var.size() + 1); };
    if (line.rfind("REDIS_CLUSTER_PORTS=", 0) == 0) ports = value("REDIS_CLUSTER_PORTS");
    if (line.rfind("REDIS_CLUSTER_BASEDIR=", 0) == 0) basedir = value("REDIS_CLUSTER_BASEDIR");
  }
  // %q quoting of a space-separated list: 'a b c' or a\ b\ c.
  std::erase_if(ports, [](char c) { return c == '\'' || c == '\\'; });
  std::vector<std::string> port_list;
  for (std::size_t at = 0; at < ports.size();) {
    auto end = ports.find_first_of(" ,", at);
    if (end == std::string::npos) end = ports.size();
    if (end > at) port_list.push_back(ports.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_EQ(port_list.size(), 3u) << "REDIS_CLUSTER_PORTS=" << ports;
  ASSERT_FALSE(basedir.empty());

  RedisDown down(basedir, port_list);
  const auto sent_at = std::chrono::steady_clock::now();
  wa->send(send_dm("r1", b.id, "during"));
  auto msg1 = wb->recv_op("msg", 5s);
  ASSERT_TRUE(msg1) << "the DM sent while Redis is down did not arrive live within 5 s";
  const auto live_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - sent_at)
                           .count();
  RecordProperty("live_delivery_ms_while_redis_down", std::to_string(live_ms));
  std::cout << "DM while Redis is down delivered live after " << live_ms << " ms\n";
  EXPECT_EQ(str(*msg1, "body"), "during");
  EXPECT_EQ(num(*msg1, "seq"), 2u);
  EXPECT_GT(metric_sum(logic, fallback), before) << "no fallback broadcast counted";
  // The operator's signal meanwhile: Redis's breaker opens (its probes fail: about 1.5 s).
  const std::string redis_breaker = "imd_breaker_state{dependency=\"redis\"}";
  for (auto until = std::chrono::steady_clock::now() + 15s;
       metric("LOGIC1", redis_breaker) == 0 && std::chrono::steady_clock::now() < until;) {
    wb->recv(100ms);  // polling a gauge, bounded by `until`
  }
  EXPECT_NE(metric("LOGIC1", redis_breaker), 0) << "closed while every Redis master is down";

  ASSERT_TRUE(down.restart()) << "the Redis Cluster did not come back";
  // The client's resend of an unacknowledged send (same cid), from a new connection if the
  // previous one was not answered in time (a dead-lettered first copy makes JetStream drop
  // further repeats of the same connection for its duplicate window).
  std::optional<bj::object> sent1;
  std::unique_ptr<Ws> resender = std::move(wa);
  for (int attempt = 0; attempt < 6 && !sent1; ++attempt) {
    if (attempt > 0) resender = connect_to(node("GATEWAY1"), a);
    resender->send(send_dm("r1", b.id, "during"));
    sent1 = sent_of(*resender, "r1", 10s);
  }
  ASSERT_TRUE(sent1) << "the DM sent while Redis was down was never ACKed";
  EXPECT_EQ(num(*sent1, "seq"), 2u) << "ACKed with the seq the recipient already got";

  auto wb2 = connect_to(node("GATEWAY2"), b);  // its route is written on connect
  const double after = metric_sum(logic, fallback);
  resender->send(send_dm("r2", b.id, "after"));
  ASSERT_TRUE(sent_of(*resender, "r2", 20s));
  auto msg2 = wb2->recv_op("msg", 5s);
  ASSERT_TRUE(msg2) << "a DM after Redis returned did not arrive live";
  EXPECT_EQ(num(*msg2, "seq"), 3u);
  EXPECT_EQ(metric_sum(logic, fallback), after) << "routed, not broadcast, once Redis is back";

  // Stored once each, dense seqs, each with the seq its ACK named.
  auto stored = history("/api/v1/dms/" + b.id + "/messages", a.access);
  ASSERT_EQ(stored.size(), 3u);
  const char* cids[] = {"r0", "r1", "r2"};
  for (std::size_t j = 0; j < stored.size(); ++j) {
    EXPECT_EQ(num(stored[j], "seq"), j + 1);
    EXPECT_EQ(str(stored[j], "cid"), cids[j]);
  }
}

TEST_F(Cluster, StalledMariaDbOpensTheStoreBreakerSendsAreRefusedThenNothingIsLost) {
  breaker_drill("mariadb", "MARIADB_PID", "store");
}

TEST_F(Cluster, StalledNatsOpensItsBreakerSendsAreRefusedThenNothingIsLost) {
  breaker_drill("nats", "NATS_PID", "nats");
}

}  // namespace
}  // namespace imd::test
