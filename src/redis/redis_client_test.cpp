// The Redis client's own tests. Suites by what they need (CTest wires each to its fixture):
//   ClientUnit.*               nothing (slots, CRC16, parsing)
//   ClientSingle.*             the `redis` fixture: one redis-server
//   ClientCluster.*            the `redis_cluster` fixture: three masters
//   ClientClusterDisruptive.*  the same cluster, run alone (RUN_SERIAL): they move a slot
//                              between masters and kill and restart a master
#include "redis/redis_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "redis/redis_test_support.hpp"

namespace imd::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisKind;

// --- ClientUnit

TEST(ClientUnit, Crc16IsXmodem) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the check value of CRC-16/XMODEM
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClientUnit, KeySlotsMatchTheSpecification) {
  // Values from `CLUSTER KEYSLOT` (ClientCluster.KeySlotsMatchTheServer checks many more).
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("somekey"), 11058);
  // Hash tags: only the part between the first { and the next } is hashed, if non-empty.
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("{user1000}.following"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16("foo{}{bar}") % kSlots);  // empty tag: whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("im:{u:42}:ib"), key_slot("im:{u:42}:ib:msg"));
  EXPECT_EQ(key_slot("no-close{brace"), crc16("no-close{brace") % kSlots);
}

TEST(ClientUnit, RoutingKeys) {
  EXPECT_EQ(routing_key({"GET", "k"}), "k");
  EXPECT_EQ(routing_key({"evalsha", "abc", "2", "k1", "k2", "arg"}), "k1");
  EXPECT_EQ(routing_key({"EVAL", "return 1", "0"}), std::nullopt);
  EXPECT_EQ(routing_key({"PING"}), std::nullopt);
  EXPECT_EQ(routing_key({"cluster", "slots"}), std::nullopt);
  EXPECT_EQ(routing_key({"SCRIPT", "FLUSH"}), std::nullopt);
}

TEST(ClientUnit, ParsesEndpoints) {
  auto e = parse_endpoints("127.0.0.1:7001, localhost:7002,[::1]:7003");
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0], (Endpoint{"127.0.0.1", 7001}));
  EXPECT_EQ((*e)[1], (Endpoint{"localhost", 7002}));
  EXPECT_EQ((*e)[2].port, 7003);
  for (const char* bad : {"", "host", "host:", ":7000", "host:70000", "host:x"}) {
    auto r = parse_endpoints(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
}

TEST(ClientUnit, RejectsBadOptions) {
  EXPECT_THROW(RedisClient(RedisOptions{}), std::invalid_argument);
  RedisOptions o;
  o.seeds = {{"127.0.0.1", 1}};
  o.pool_size = 0;
  EXPECT_THROW(RedisClient{o}, std::invalid_argument);
}

// A port on which nothing listens (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

TEST(ClientUnit, AServerThatIsDownIsUnavailable) {
  RedisOptions o;
  o.seeds = {{"127.0.0.1", closed_port()}};
  o.connect_timeout_ms = 300;
  RedisClient c(o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.command({"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(c.ping().ok());
}

// --- servers

class ServerTest : public ::testing::Test {
 protected:
  void open(RedisKind kind) {
    auto o = testing::redis_test_options(kind);
    if (!o) GTEST_SKIP() << testing::kRedisSkipReason;
    options_ = *o;
    client_ = std::make_unique<RedisClient>(options_);
    prefix_ = testing::unique_prefix();
  }
  std::string key(const std::string& name) const { return prefix_ + ":" + name; }

  RedisOptions options_;
  std::unique_ptr<RedisClient> client_;
  std::string prefix_;
};

class ClientSingle : public ServerTest {
 protected:
  void SetUp() override { open(RedisKind::single); }
};

TEST_F(ClientSingle, CommandsAreBinarySafe) {
  // argv, never formatting: spaces, CRLF, NUL and RESP syntax in keys and values are data.
  const std::string k = key(std::string("a b\r\n\0{x}", 10));
  const std::string v = std::string("*1\r\n$4\r\nPING\r\n\0\xff end", 20);
  ASSERT_TRUE(client_->command({"SET", k, v}).ok());
  auto r = client_->command({"GET", k});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, v);
  auto missing = client_->command({"GET", key("none")});
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->is_nil());
}

TEST_F(ClientSingle, PipelineKeepsOrder) {
  std::vector<Command> cmds;
  for (int i = 0; i < 1000; ++i) {
    cmds.push_back({"INCR", key("n")});
    cmds.push_back({"SET", key("k" + std::to_string(i)), std::to_string(i)});
  }
  auto r = client_->pipeline(cmds);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2000u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ((*r)[2 * i].integer, i + 1);
    EXPECT_EQ((*r)[2 * i + 1].str, "OK");
  }
  EXPECT_TRUE(client_->pipeline({}).ok());
}

TEST_F(ClientSingle, AnErrorReplyStaysInItsSlot) {
  std::vector<Command> cmds = {{"SET", key("s"), "v"}, {"LPUSH", key("s"), "x"}, {"GET", key("s")}};
  auto r = client_->pipeline(cmds);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].str, "OK");
  EXPECT_TRUE((*r)[1].is_error());
  EXPECT_NE((*r)[1].str.find("WRONGTYPE"), std::string::npos);
  EXPECT_EQ((*r)[2].str, "v");
  auto one = client_->command({"LPUSH", key("s"), "x"});
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code, Errc::internal);
}

TEST_F(ClientSingle, ThePoolIsBounded) {
  RedisOptions o = options_;
  o.pool_size = 2;
  o.acquire_timeout_ms = 200;
  o.command_timeout_ms = 5000;
  RedisClient c(o);
  // Two connections busy in a blocking pop, so a third caller finds none free.
  std::vector<std::thread> blockers;
  for (int i = 0; i < 2; ++i) {
    blockers.emplace_back([&, i] {
      (void)c.command({"BLPOP", key("q" + std::to_string(i)), "2"});
    });
  }
  while (c.stats().connects < 2) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(200ms);  // both BLPOPs sent
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.command({"PING"});
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("busy"), std::string::npos);
  EXPECT_GE(waited, 150ms);
  for (auto& t : blockers) t.join();
  EXPECT_TRUE(c.command({"PING"}).ok());  // free again
  EXPECT_LE(c.stats().connects, 2u);
}

TEST_F(ClientSingle, CommandsTimeOut) {
  RedisOptions o = options_;
  o.command_timeout_ms = 200;
  RedisClient c(o);
  auto t0 = std::chrono::steady_clock::now();
  // BLPOP for 3 s on an empty list outlives the timeout. (Sent twice: a timed-out connection is
  // closed and the command retried once on a fresh one.)
  auto r = c.command({"BLPOP", key("empty"), "3"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_GE(c.stats().broken, 1u);
  EXPECT_TRUE(c.command({"PING"}).ok());  // a new connection
}

TEST_F(ClientSingle, RecoversWhenTheServerDropsItsConnections) {
  RedisOptions o = options_;
  o.pool_size = 1;  // one pooled connection, whose id we can name
  RedisClient c(o);
  auto id = c.command({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(c.command({"SET", key("k"), "1"}).ok());
  // The server closes our pooled connection (as a restart or an idle timeout would).
  auto killed = client_->command({"CLIENT", "KILL", "ID", std::to_string(id->integer)});
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_EQ(killed->integer, 1);
  auto r = c.command({"GET", key("k")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->str, "1");
  EXPECT_EQ(c.stats().broken, 1u);
  EXPECT_EQ(c.stats().retries, 1u);
  EXPECT_EQ(c.stats().connects, 2u);
}

TEST_F(ClientSingle, ScriptsSurviveAScriptFlush) {
  std::string sha = client_->load_script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  auto a = client_->command({"EVALSHA", sha, "1", key("c"), "5"});
  ASSERT_TRUE(a.ok()) << a.error().message;  // NOSCRIPT at first: sent again as EVAL
  EXPECT_EQ(a->integer, 5);
  auto b = client_->command({"EVALSHA", sha, "1", key("c"), "1"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->integer, 6);
  ASSERT_TRUE(client_->command({"SCRIPT", "FLUSH"}).ok());  // as a restarted server would
  auto c = client_->command({"EVALSHA", sha, "1", key("c"), "1"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->integer, 7);
  auto unknown = client_->command({"EVALSHA", std::string(40, 'a'), "0"});
  ASSERT_FALSE(unknown.ok());  // never registered: NOSCRIPT is the answer
}

TEST_F(ClientSingle, ManyThreadsShareThePool) {
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (client_->command({"INCR", key("shared")}).ok()) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 3200);
  EXPECT_EQ(client_->command({"GET", key("shared")})->str, "3200");
  EXPECT_LE(client_->stats().connects, static_cast<std::uint64_t>(options_.pool_size));
}

TEST_F(ClientSingle, PingAndMasters) {
  EXPECT_TRUE(client_->ping().ok());
  EXPECT_EQ(client_->masters(), options_.seeds);
  EXPECT_FALSE(client_->slot_owner(0).has_value());
}

// --- ClientCluster

class ClientCluster : public ServerTest {
 protected:
  void SetUp() override { open(RedisKind::cluster); }

  // A key of this test whose slot belongs to `node` (by the client's map).
  std::string key_on(const Endpoint& node, const std::string& name) {
    for (int i = 0; i < 100000; ++i) {
      std::string k = key(name + std::to_string(i));
      if (client_->slot_owner(key_slot(k)) == node) return k;
    }
    ADD_FAILURE() << "no key found for " << node.str();
    return {};
  }

  // Waits until every master reports cluster_state:ok.
  void wait_cluster_ok(std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      bool all_ok = true;
      for (const Endpoint& m : client_->masters()) {
        auto r = client_->command_at(m, {"CLUSTER", "INFO"});
        if (!r.ok() || r->str.find("cluster_state:ok") == std::string::npos) all_ok = false;
      }
      if (all_ok) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "cluster_state is not ok";
      std::this_thread::sleep_for(100ms);
    }
  }
};

TEST_F(ClientCluster, KeySlotsMatchTheServer) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> byte(0, 255);
  auto node = client_->masters().at(0);
  for (int i = 0; i < 300; ++i) {
    std::string k;
    int len = 1 + i % 40;
    for (int j = 0; j < len; ++j) k.push_back(static_cast<char>(byte(gen)));
    if (i % 3 == 0) k = "pre{" + k.substr(0, 5) + "}post";
    auto r = client_->command_at(node, {"CLUSTER", "KEYSLOT", k});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(key_slot(k), r->integer) << "key #" << i;
  }
}

TEST_F(ClientCluster, TheSlotMapCoversEverySlotWithThreeMasters) {
  ASSERT_TRUE(client_->ping().ok());
  auto masters = client_->masters();
  EXPECT_EQ(masters.size(), 3u);
  std::set<Endpoint> owners;
  for (int s = 0; s < kSlots; ++s) {
    auto o = client_->slot_owner(s);
    ASSERT_TRUE(o.has_value()) << "slot " << s;
    owners.insert(*o);
  }
  EXPECT_EQ(owners.size(), 3u);
}

TEST_F(ClientCluster, PipelinesSpanEveryNodeAndKeepOrder) {
  std::vector<Command> cmds;
  for (int j = 0; j < 1500; ++j) {
    std::string k = key("p" + std::to_string(j % 500));
    cmds.push_back({"SET", k, std::to_string(j)});
    cmds.push_back({"GET", k});
  }
  auto r = client_->pipeline(cmds);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), cmds.size());
  for (int j = 0; j < 1500; ++j) {
    EXPECT_EQ((*r)[2 * j].str, "OK");
    EXPECT_EQ((*r)[2 * j + 1].str, std::to_string(j)) << j;  // read after its own write
  }
  std::set<Endpoint> nodes;
  for (int i = 0; i < 500; ++i)
    nodes.insert(*client_->slot_owner(key_slot(key("p" + std::to_string(i)))));
  EXPECT_EQ(nodes.size(), 3u);
  EXPECT_EQ(client_->stats().moved, 0u);
}

TEST_F(ClientCluster, HashTagsKeepMultiKeyCommandsOnOneNode) {
  std::string sha = client_->load_script(
      "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]);"
      " return redis.call('MGET', KEYS[1], KEYS[2])");
  auto tagged = client_->command({"EVALSHA", sha, "2", key("{tag}:a"), key("{tag}:b"), "v"});
  ASSERT_TRUE(tagged.ok()) << tagged.error().message;
  ASSERT_EQ(tagged->elements.size(), 2u);
  EXPECT_EQ(tagged->elements[1].str, "v");
  // Without a common tag the keys fall in different slots: the server refuses.
  std::string a = key("a"), b = key("b");
  ASSERT_NE(key_slot(a), key_slot(b));
  auto cross = client_->command({"MSET", a, "1", b, "2"});
  ASSERT_FALSE(cross.ok());
  EXPECT_NE(cross.error().message.find("CROSSSLOT"), std::string::npos);
}

TEST_F(ClientCluster, ManyThreadsOverEveryNode) {
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        std::vector<Command> batch;
        for (int j = 0; j < 10; ++j) batch.push_back({"INCR", key("c" + std::to_string(j))});
        if (client_->pipeline(batch).ok()) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 800);
  for (int j = 0; j < 10; ++j) {
    EXPECT_EQ(client_->command({"GET", key("c" + std::to_string(j))})->str, "800");
  }
}

// --- ClientClusterDisruptive (RUN_SERIAL)

class ClientClusterDisruptive : public ClientCluster {};

std::string node_id(RedisClient& c, const Endpoint& node) {
  auto r = c.command_at(node, {"CLUSTER", "MYID"});
  EXPECT_TRUE(r.ok());
  return r.ok() ? r->str : std::string();
}

// Moves `slot` from `from` to `to` with the keys given, the way redis-cli --cluster reshard
// does, in steps the test interleaves with client commands.
TEST_F(ClientClusterDisruptive, FollowsAskAndMovedWhileASlotMigrates) {
  ASSERT_TRUE(client_->ping().ok());
  auto masters = client_->masters();
  ASSERT_EQ(masters.size(), 3u);
  const std::string k1 = key("{mig}:one"), k2 = key("{mig}:two"), k3 = key("{mig}:three");
  const int slot = key_slot(k1);
  const Endpoint from = *client_->slot_owner(slot);
  Endpoint to;
  for (const Endpoint& m : masters) {
    if (m != from) to = m;
  }
  const std::string from_id = node_id(*client_, from), to_id = node_id(*client_, to);
  ASSERT_TRUE(client_->command({"SET", k1, "v1"}).ok());
  ASSERT_TRUE(client_->command({"SET", k3, "v3"}).ok());

  // A second client whose map is loaded now, while `from` still owns the slot.
  RedisClient other(options_);
  ASSERT_TRUE(other.ping().ok());
  ASSERT_EQ(other.slot_owner(slot), from);

  ASSERT_TRUE(
      client_->command_at(to, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from_id})
          .ok());
  ASSERT_TRUE(
      client_->command_at(from, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to_id})
          .ok());

  // Mid-migration, a key that is not on the source any more answers ASK: the client asks the
  // target once (ASKING) and keeps its map.
  auto ask_before = client_->stats().ask;
  ASSERT_TRUE(client_->command({"SET", k2, "v2"}).ok());  // a new key goes to the target
  EXPECT_GT(client_->stats().ask, ask_before);
  EXPECT_EQ(client_->slot_owner(slot), from);  // ASK does not change the map
  auto still = client_->command({"GET", k1});  // still on the source: served there
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->str, "v1");

  auto migrated = client_->command_at(
      from, {"MIGRATE", to.host, std::to_string(to.port), "", "0", "5000", "KEYS", k1});
  ASSERT_TRUE(migrated.ok()) << migrated.error().message;
  ask_before = client_->stats().ask;
  std::vector<Command> both = {{"GET", k1}, {"GET", k2}};
  auto during = client_->pipeline(both);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ((*during)[0].str, "v1");
  EXPECT_EQ((*during)[1].str, "v2");
  EXPECT_GE(client_->stats().ask, ask_before + 2);
  EXPECT_EQ(client_->slot_owner(slot), from);

  // Both keys of the slot in one command while only one moved: TRYAGAIN until the rest moves.
  RedisOptions patient_o = options_;
  patient_o.max_redirects = 40;
  RedisClient patient(patient_o);
  std::thread finish([&] {
    std::this_thread::sleep_for(100ms);
    (void)client_->command_at(
        from, {"MIGRATE", to.host, std::to_string(to.port), "", "0", "5000", "KEYS", k3});
  });
  auto multi = patient.command({"MGET", k1, k3});
  finish.join();
  ASSERT_TRUE(multi.ok()) << multi.error().message;
  EXPECT_EQ(multi->elements.at(0).str, "v1");
  EXPECT_EQ(multi->elements.at(1).str, "v3");

  // The rest of the slot moves too, as redis-cli --cluster reshard does: the source refuses to
  // give up a slot while it holds keys, and other suites on this cluster (the black-box tests
  // with --redis-mode cluster) may have left keys of their own in it.
  for (int round = 0;; ++round) {
    auto left =
        client_->command_at(from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"});
    ASSERT_TRUE(left.ok()) << left.error().message;
    if (left->elements.empty()) break;
    ASSERT_LT(round, 100) << "the source keeps holding keys of slot " << slot;
    Command migrate = {"MIGRATE", to.host, std::to_string(to.port), "", "0", "5000", "KEYS"};
    for (const auto& k : left->elements) migrate.push_back(k.str);
    auto moved = client_->command_at(from, migrate);
    ASSERT_TRUE(moved.ok()) << moved.error().message;
  }

  // The migration ends: every master learns the new owner (the target first).
  std::vector<Endpoint> order = {to, from};
  for (const Endpoint& m : masters) {
    if (m != to && m != from) order.push_back(m);
  }
  for (const Endpoint& m : order) {
    auto set = client_->command_at(m, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
    ASSERT_TRUE(set.ok()) << m.str() << ": " << set.error().message;
  }
  // A client with the old map gets MOVED, follows it and updates its map.
  auto moved_before = other.stats().moved;
  auto after = other.command({"GET", k1});
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->str, "v1");
  EXPECT_EQ(other.stats().moved, moved_before + 1);
  EXPECT_EQ(other.slot_owner(slot), to);
  auto again = other.command({"GET", k2});  // no second redirect
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->str, "v2");
  EXPECT_EQ(other.stats().moved, moved_before + 1);
  // Pipelines too: the moved slot's commands are redirected, the rest are not.
  auto moved_pipe = client_->pipeline(both);
  ASSERT_TRUE(moved_pipe.ok());
  EXPECT_EQ((*moved_pipe)[0].str, "v1");
  EXPECT_EQ(client_->slot_owner(slot), to);
  wait_cluster_ok();
}

// Kills one master (SIGKILL, as a crash) and starts it again from its own redis.conf, on the
// same port and directory (it keeps its node id and slots through nodes.conf; its keys are
// gone: the test cluster runs without persistence). The client recovers by itself.
TEST_F(ClientClusterDisruptive, RecoversFromAMasterRestart) {
  const char* state = std::getenv("IMD_TEST_REDIS_CLUSTER_STATE");
  if (state == nullptr || *state == '\0') GTEST_SKIP() << "IMD_TEST_REDIS_CLUSTER_STATE not set";
  auto base = testing::services_state_value(state, "REDIS_CLUSTER_BASEDIR");
  ASSERT_TRUE(base.has_value()) << "no REDIS_CLUSTER_BASEDIR in " << state;
  ASSERT_TRUE(client_->ping().ok());
  wait_cluster_ok();
  const Endpoint victim = client_->masters().at(1);
  const std::string dir = *base + "/" + std::to_string(victim.port);
  const std::string k = key_on(victim, "restart");
  const std::string elsewhere = key_on(client_->masters().at(0), "stays");
  ASSERT_TRUE(client_->command({"SET", k, "before"}).ok());
  ASSERT_TRUE(client_->command({"SET", elsewhere, "x"}).ok());
  // A second client that holds a pooled connection to the victim and sends nothing while it
  // is down: its first command afterwards meets a dead connection.
  RedisClient quiet(options_);
  ASSERT_TRUE(quiet.command({"GET", k}).ok());

  pid_t pid = 0;
  {
    std::ifstream in(dir + "/redis.pid");
    in >> pid;
  }
  ASSERT_GT(pid, 1) << "no pid in " << dir << "/redis.pid";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto restart = [&] {
    std::string cmd = "redis-server '" + dir + "/redis.conf' --daemonize yes";
    return std::system(cmd.c_str()) == 0;
  };
  // Wait until the port refuses connections (the process is gone).
  RedisOptions probe_o;
  probe_o.seeds = {victim};
  probe_o.connect_timeout_ms = 200;
  for (int i = 0; i < 100; ++i) {
    RedisClient probe(probe_o);
    if (!probe.command({"PING"}).ok()) break;
    std::this_thread::sleep_for(50ms);
  }

  // While it is down, its keys are unavailable; the other masters' keys are served.
  auto down = client_->command({"GET", k});
  EXPECT_FALSE(down.ok());
  if (!down.ok()) {
    EXPECT_EQ(down.error().code, Errc::unavailable);
  }

  ASSERT_TRUE(restart()) << "could not start redis-server " << dir << "/redis.conf";
  wait_cluster_ok(60s);

  // The pool's connections to the victim are dead; the client reconnects on its own.
  auto w = client_->command({"SET", k, "after"});
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto r = client_->command({"GET", k});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->str, "after");
  auto e = client_->command({"GET", elsewhere});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->str, "x");
  EXPECT_GE(client_->stats().broken + client_->stats().retries, 1u);
  EXPECT_EQ(client_->slot_owner(key_slot(k)), victim);

  auto retries_before = quiet.stats().retries;
  auto q = quiet.command({"GET", k});
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->str, "after");
  EXPECT_GE(quiet.stats().retries, retries_before + 1);  // the dead connection, replaced
}

}  // namespace
}  // namespace imd::redis
