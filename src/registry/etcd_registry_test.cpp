// EtcdClient and EtcdRegistry against a real etcd. (A suite: long because each case starts from
// its own key prefix and states what it waits for.)
//
// EtcdClient.* and EtcdRegistry.* use the server of the CTest fixture `etcd`
// (IMD_TEST_ETCD_ENDPOINTS, "host:port,..."), each test under its own key prefix, so they may
// run in parallel; run by hand without that variable they skip. EtcdPrivate.* start an etcd of
// their own (on free ports, in a temporary directory) because they stop, hang or restart it;
// they skip when no `etcd` binary is found. EtcdUnit.* need nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "registry/etcd_client.hpp"
#include "registry/etcd_registry.hpp"
#include "registry/rendezvous.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr auto kTtl = std::chrono::seconds(2);

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> fixture_endpoints() {
  const char* v = std::getenv("IMD_TEST_ETCD_ENDPOINTS");
  return v == nullptr ? std::vector<std::string>{} : split(v);
}

#define REQUIRE_FIXTURE_ETCD()                                                              \
  do {                                                                                      \
    if (fixture_endpoints().empty()) {                                                      \
      GTEST_SKIP() << "IMD_TEST_ETCD_ENDPOINTS is not set: run through ctest (its fixture " \
                      "starts etcd with scripts/services.sh), or start one and set it";     \
    }                                                                                       \
  } while (0)

// "/imd-test/<pid>_<n>_<time>/": a fresh key space per test.
std::string unique_prefix() {
  static std::atomic<int> counter{0};
  const auto now = Clock::now().time_since_epoch().count();
  return "/imd-test/" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(static_cast<unsigned long long>(now) % 100000000) + "/";
}

template <class Pred>
bool eventually(Pred pred, Ms timeout, Ms step = 50ms) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

EtcdRegistryOptions registry_options(std::vector<std::string> endpoints, std::string prefix,
                                     std::chrono::seconds ttl = kTtl) {
  EtcdRegistryOptions o;
  o.endpoints = std::move(endpoints);
  o.prefix = std::move(prefix);
  o.lease_ttl = ttl;
  o.call_timeout = 2000ms;
  return o;
}

NodeInfo node_info(const std::string& addr) {
  return NodeInfo{0, {"gateway", "logic"}, addr, "0.1.0-test"};
}

// ---- ownership bookkeeping shared by the partition tests

// Records each registry's owned set from its changed() callbacks and checks, at every call,
// that no partition is owned by two live registries and that a newly gained partition's etcd
// key names the new owner.
class Ownership {
 public:
  Ownership(EtcdClient& client, std::string prefix) : client_(client), prefix_(std::move(prefix)) {}

  Registry::PartitionsChanged callback(int node, const std::uint32_t* id) {
    return [this, node, id](std::vector<std::uint32_t> owned) {
      std::set<std::uint32_t> now(owned.begin(), owned.end());
      std::lock_guard lock(mu_);
      calls_[node]++;
      for (auto p : now) {
        for (const auto& [other, set] : sets_) {
          if (other != node && !dead_.count(other) && set.count(p)) {
            violations_.push_back("partition " + std::to_string(p) + " given to node " +
                                  std::to_string(node) + " while node " + std::to_string(other) +
                                  " owns it");
          }
        }
        if (!sets_[node].count(p)) {
          auto kv = client_.get(prefix_ + "partitions/" + std::to_string(p));
          if (!kv.ok() || kv->kvs.size() != 1 || kv->kvs[0].value != std::to_string(*id)) {
            violations_.push_back("partition " + std::to_string(p) + " given to node " +
                                  std::to_string(node) + " without its etcd key");
          }
        }
      }
      sets_[node] = std::move(now);
    };
  }

  void mark_dead(int node) {
    std::lock_guard lock(mu_);
    dead_.insert(node);
  }
  std::set<std::uint32_t> owned(int node) {
    std::lock_guard lock(mu_);
    return sets_[node];
  }
  int calls(int node) {
    std::lock_guard lock(mu_);
    return calls_[node];
  }
  std::vector<std::string> violations() {
    std::lock_guard lock(mu_);
    return violations_;
  }

  // True when the live nodes own exactly the rendezvous shares among them, and etcd agrees.
  bool settled(const std::map<int, std::uint32_t>& live, std::uint32_t count) {
    std::vector<std::uint32_t> ids;
    for (const auto& [n, id] : live) ids.push_back(id);
    for (const auto& [n, id] : live) {
      auto want = rendezvous_share(id, count, ids);
      if (owned(n) != std::set<std::uint32_t>(want.begin(), want.end())) return false;
    }
    auto keys = client_.get_prefix(prefix_ + "partitions/");
    if (!keys.ok() || keys->kvs.size() != count) return false;
    for (const auto& kv : keys->kvs) {
      const auto p =
          static_cast<std::uint32_t>(std::stoul(kv.key.substr((prefix_ + "partitions/").size())));
      if (kv.value != std::to_string(rendezvous_owner(p, ids))) return false;
    }
    return true;
  }

 private:
  EtcdClient& client_;
  const std::string prefix_;
  std::mutex mu_;
  std::map<int, std::set<std::uint32_t>> sets_;
  std::map<int, int> calls_;
  std::set<int> dead_;
  std::vector<std::string> violations_;
};

// ---- a private etcd for the cases that stop or restart it

std::string find_etcd() {
  if (const char* v = std::getenv("IMD_TEST_ETCD_BINARY"); v != nullptr && *v) return v;
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const std::string path = std::string(dir) + "/etcd";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class PrivateEtcd {
 public:
  PrivateEtcd() : binary_(find_etcd()) {
    char tmpl[] = "/tmp/imd-etcd-test.XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    port_ = free_port();
    do {
      peer_port_ = free_port();
    } while (peer_port_ == port_ && port_ != 0);
  }
  ~PrivateEtcd() {
    kill_now(SIGKILL);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  bool available() const { return !binary_.empty() && !dir_.empty() && port_ && peer_port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  // Serves clients on another port from the next start() (same data), so that clients of the
  // old one stay cut off meanwhile.
  void move_client_port(int port) { port_ = port; }

  // Starts etcd (on the same directory and ports every time) and waits until it answers.
  bool start() {
    const std::string url = "http://127.0.0.1:" + std::to_string(port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    const std::string data = dir_ + "/data", log = dir_ + "/etcd.log";
    std::vector<std::string> args = {binary_,      "--name",
                                     "imd",        "--data-dir",
                                     data,         "--listen-client-urls",
                                     url,          "--advertise-client-urls",
                                     url,          "--listen-peer-urls",
                                     peer,         "--initial-advertise-peer-urls",
                                     peer,         "--initial-cluster",
                                     "imd=" + peer};
    // If this test process dies (a ctest timeout), its etcd goes with it.
    if (::access("/usr/bin/setpriv", X_OK) == 0) {
      args.insert(args.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL"});
    }
    // posix_spawn: no fork of a process that runs gRPC threads.
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], &files, &attr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    if (pid_ < 0) return false;
    EtcdClient probe(EtcdOptions{{endpoint()}, 1000ms});
    std::string last_error;
    const bool up = eventually(
        [&] {
          auto r = probe.get("probe");
          if (!r.ok()) last_error = r.error().message;
          return r.ok();
        },
        30s, 100ms);
    if (!up) ADD_FAILURE() << "etcd on " << endpoint() << " does not answer: " << last_error;
    return up;
  }

  // Sends `sig`; for a terminating signal, waits for the exit.
  void kill_now(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGSTOP || sig == SIGCONT) return;
    if (sig == SIGKILL) ::kill(pid_, SIGCONT);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string binary_;
  std::string dir_;
  int port_ = 0, peer_port_ = 0;
  pid_t pid_ = -1;
};

#define REQUIRE_PRIVATE_ETCD(etcd)                                                   \
  do {                                                                               \
    if (!(etcd).available()) GTEST_SKIP() << "no etcd binary (Debian: etcd-server)"; \
    ASSERT_TRUE((etcd).start()) << "the private etcd did not start";                 \
  } while (0)

// ---- EtcdUnit

TEST(EtcdUnit, PrefixEnd) {
  EXPECT_EQ(etcd_prefix_end("/imd/"), "/imd0");
  EXPECT_EQ(etcd_prefix_end("a"), "b");
  EXPECT_EQ(etcd_prefix_end(std::string("a\xff")), "b");
  EXPECT_EQ(etcd_prefix_end(""), std::string(1, '\0'));
  EXPECT_EQ(etcd_prefix_end(std::string("\xff\xff")), std::string(1, '\0'));
}

TEST(EtcdUnit, OptionsAreChecked) {
  EXPECT_THROW(EtcdClient(EtcdOptions{}), std::invalid_argument);
  EXPECT_THROW(EtcdRegistry(registry_options({}, "/x/")), std::invalid_argument);
  EXPECT_THROW(EtcdRegistry(registry_options({"127.0.0.1:1"}, "/x")), std::invalid_argument);
  EXPECT_THROW(EtcdRegistry(registry_options({"127.0.0.1:1"}, "/x/", std::chrono::seconds(1))),
               std::invalid_argument);
}

TEST(EtcdUnit, UnreachableEtcdIsUnavailable) {
  EtcdClient client(EtcdOptions{{"127.0.0.1:1"}, 500ms});
  auto r = client.get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EtcdRegistry reg(registry_options({"127.0.0.1:1"}, "/x/"));
  auto id = reg.start(node_info("a:1"), 1023, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, Errc::unavailable);
  reg.stop();
}

// ---- EtcdClient (fixture etcd)

TEST(EtcdClient, PutGetDeleteAndTxn) {
  REQUIRE_FIXTURE_ETCD();
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  const auto pre = unique_prefix();
  ASSERT_TRUE(c.put(pre + "a", "1").ok());
  ASSERT_TRUE(c.put(pre + "b", "2").ok());
  auto a = c.get(pre + "a");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->kvs.size(), 1u);
  EXPECT_EQ(a->kvs[0].value, "1");
  EXPECT_GT(a->kvs[0].create_revision, 0);
  auto all = c.get_prefix(pre);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 2u);

  // create-if-absent fails on an existing key and reports it through the failure branch.
  auto t = c.txn(
      {EtcdCompare{pre + "a", EtcdCompare::Target::create_revision, EtcdCompare::Op::equal, 0, {}}},
      {EtcdOp::put(pre + "a", "x")}, {EtcdOp::get(pre + "a")});
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->succeeded);
  ASSERT_EQ(t->gets.size(), 1u);
  ASSERT_EQ(t->gets[0].kvs.size(), 1u);
  EXPECT_EQ(t->gets[0].kvs[0].value, "1");
  // compare-value-and-delete.
  auto d =
      c.txn({EtcdCompare{pre + "b", EtcdCompare::Target::value, EtcdCompare::Op::equal, 0, "2"}},
            {EtcdOp::del(pre + "b")}, {});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->succeeded);
  EXPECT_TRUE(c.get(pre + "b")->kvs.empty());
  EXPECT_EQ(*c.del_prefix(pre), 1);
  EXPECT_TRUE(c.get_prefix(pre)->kvs.empty());
}

TEST(EtcdClient, FailsOverToTheNextEndpoint) {
  REQUIRE_FIXTURE_ETCD();
  auto eps = fixture_endpoints();
  eps.insert(eps.begin(), "127.0.0.1:1");  // nothing listens there
  EtcdClient c(EtcdOptions{eps, 2000ms});
  const auto pre = unique_prefix();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.put(pre + "k", std::to_string(i)).ok()) << i;
  EXPECT_EQ(c.get(pre + "k")->kvs.at(0).value, "2");
}

TEST(EtcdClient, LeaseKeepAliveAndRevoke) {
  REQUIRE_FIXTURE_ETCD();
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  const auto pre = unique_prefix();
  auto lease = c.lease_grant(kTtl);
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  EXPECT_GE(lease->ttl.count(), 2);
  ASSERT_TRUE(c.put(pre + "k", "v", lease->id).ok());
  std::atomic<bool> lost{false};
  auto ka = c.keep_alive(*lease, [&] { lost = true; });
  std::this_thread::sleep_for(kTtl * 2);  // twice the TTL: only the keep-alive saves it
  EXPECT_EQ(c.get(pre + "k")->kvs.size(), 1u);
  EXPECT_FALSE(lost);
  ka->stop();
  EXPECT_TRUE(eventually([&] { return c.get(pre + "k")->kvs.empty(); }, kTtl + 3s));
  EXPECT_FALSE(lost);

  auto l2 = c.lease_grant(std::chrono::seconds(30));
  ASSERT_TRUE(l2.ok());
  ASSERT_TRUE(c.put(pre + "k2", "v", l2->id).ok());
  ASSERT_TRUE(c.lease_revoke(l2->id).ok());
  EXPECT_TRUE(c.get(pre + "k2")->kvs.empty());
  EXPECT_TRUE(c.lease_revoke(l2->id).ok());  // again: already gone is fine
  auto bad = c.put(pre + "k3", "v", l2->id);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

TEST(EtcdClient, KeepAliveReportsARevokedLease) {
  REQUIRE_FIXTURE_ETCD();
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  auto lease = c.lease_grant(std::chrono::seconds(3));
  ASSERT_TRUE(lease.ok());
  std::atomic<int> lost{0};
  auto ka = c.keep_alive(*lease, [&] { lost++; });
  ASSERT_TRUE(c.lease_revoke(lease->id).ok());
  EXPECT_TRUE(eventually([&] { return lost.load() == 1; }, 3s));
  ka->stop();
  EXPECT_EQ(lost.load(), 1);
}

TEST(EtcdClient, WatchListsThenStreamsChanges) {
  REQUIRE_FIXTURE_ETCD();
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  const auto pre = unique_prefix();
  ASSERT_TRUE(c.put(pre + "w/a", "1").ok());
  ASSERT_TRUE(c.put(pre + "other", "x").ok());
  std::mutex mu;
  std::map<std::string, std::string> seen;
  int snapshots = 0;
  auto w = c.watch_prefix(
      pre + "w/",
      [&](std::vector<EtcdKeyValue> kvs, std::int64_t) {
        std::lock_guard lock(mu);
        ++snapshots;
        seen.clear();
        for (auto& kv : kvs) seen[kv.key] = kv.value;
      },
      [&](std::vector<EtcdEvent> events) {
        std::lock_guard lock(mu);
        for (auto& e : events) {
          if (e.type == EtcdEvent::Type::del) {
            seen.erase(e.kv.key);
          } else {
            seen[e.kv.key] = e.kv.value;
          }
        }
      });
  auto state = [&] {
    std::lock_guard lock(mu);
    return seen;
  };
  ASSERT_TRUE(eventually([&] { return state().size() == 1; }, 3s));
  ASSERT_TRUE(c.put(pre + "w/b", "2").ok());
  ASSERT_TRUE(c.put(pre + "w/a", "3").ok());
  ASSERT_TRUE(c.del(pre + "w/b").ok());
  ASSERT_TRUE(c.put(pre + "w/c", "4").ok());
  ASSERT_TRUE(c.put(pre + "wx", "not under w/").ok());
  const std::map<std::string, std::string> want = {{pre + "w/a", "3"}, {pre + "w/c", "4"}};
  EXPECT_TRUE(eventually([&] { return state() == want; }, 3s));
  w->stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(snapshots, 1);
}

// ---- EtcdRegistry (fixture etcd)

TEST(EtcdRegistry, DistinctIdsAndEachSeesTheOther) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  EtcdRegistry a(registry_options(fixture_endpoints(), pre));
  EtcdRegistry b(registry_options(fixture_endpoints(), pre));
  auto ia = a.start(node_info("10.0.0.1:7001"), 1023, nullptr);
  auto ib = b.start(node_info("10.0.0.2:7001"), 1023, nullptr);
  ASSERT_TRUE(ia.ok()) << ia.error().message;
  ASSERT_TRUE(ib.ok()) << ib.error().message;
  EXPECT_NE(*ia, *ib);
  EXPECT_LE(*ia, 1023u);
  ASSERT_TRUE(eventually([&] { return a.node(*ib).has_value() && b.node(*ia).has_value(); }, 3s));
  EXPECT_EQ(a.node(*ib)->push_address, "10.0.0.2:7001");
  EXPECT_EQ(a.node(*ib)->id, *ib);
  EXPECT_EQ(b.node(*ia)->roles, (std::vector<std::string>{"gateway", "logic"}));
  EXPECT_EQ(a.nodes().size(), 2u);
  // Each reads the other's version back (RemotePusher tells older gateways by it).
  EXPECT_TRUE(eventually([&] { return a.node(*ib)->version == "0.1.0-test"; }, 3s));

  // announce() rewrites the entry under the same id, and the version beside it.
  NodeInfo again{12345, {"gateway"}, "10.0.0.2:9999", "9.8.7-canary"};
  ASSERT_TRUE(b.announce(again).ok());
  EtcdClient raw(EtcdOptions{fixture_endpoints(), 3000ms});
  auto version = raw.get(pre + "versions/" + std::to_string(*ib));
  ASSERT_TRUE(version.ok()) << version.error().message;
  ASSERT_EQ(version->kvs.size(), 1u);
  EXPECT_EQ(version->kvs[0].value, "9.8.7-canary");
  // The entry itself stays in the format older nodes read (no version field in it).
  auto entry = raw.get(pre + "nodes/" + std::to_string(*ib));
  ASSERT_TRUE(entry.ok() && entry->kvs.size() == 1u);
  EXPECT_EQ(entry->kvs[0].value.find("version"), std::string::npos) << entry->kvs[0].value;
  EXPECT_TRUE(eventually(
      [&] {
        auto n = a.node(*ib);
        return n && n->push_address == "10.0.0.2:9999" && n->roles.size() == 1 &&
               n->version == "9.8.7-canary";
      },
      3s));
  EXPECT_FALSE(a.node(12345).has_value() && 12345 != *ib);
  // A node that registers no version (a build from before versions) reads back without one.
  EtcdRegistry old(registry_options(fixture_endpoints(), pre));
  auto io = old.start(NodeInfo{0, {"gateway"}, "10.0.0.3:7001", ""}, 1023, nullptr);
  ASSERT_TRUE(io.ok()) << io.error().message;
  ASSERT_TRUE(eventually([&] { return a.node(*io).has_value(); }, 3s));
  EXPECT_EQ(a.node(*io)->version, "");
  old.stop();

  b.stop();
  EXPECT_TRUE(eventually([&] { return !a.node(*ib).has_value(); }, 3s));
  EXPECT_FALSE(b.announce(node_info("x:1")).ok());
  a.stop();
}

TEST(EtcdRegistry, AllIdsTakenIsUnavailableAndIdsReturnOnlyWithTheLease) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  auto opts = registry_options(fixture_endpoints(), pre);
  EtcdRegistry a(opts), b(opts);
  ASSERT_TRUE(a.start(node_info("a:1"), 1, nullptr).ok());
  auto ib = b.start(node_info("b:1"), 1, nullptr);
  ASSERT_TRUE(ib.ok());
  {
    EtcdRegistry c(opts);
    auto ic = c.start(node_info("c:1"), 1, nullptr);
    ASSERT_FALSE(ic.ok());
    EXPECT_EQ(ic.error().code, Errc::unavailable);
  }
  // A crash: b's id stays taken until its lease expires, then it is free again.
  b.abandon_for_test();
  const auto abandoned_at = Clock::now();
  {
    EtcdRegistry c(opts);
    EXPECT_FALSE(c.start(node_info("c:1"), 1, nullptr).ok()) << "the id came back too early";
  }
  std::optional<std::uint32_t> got;
  std::vector<std::unique_ptr<EtcdRegistry>> tries;
  ASSERT_TRUE(eventually(
      [&] {
        tries.push_back(std::make_unique<EtcdRegistry>(opts));
        auto r = tries.back()->start(node_info("c:1"), 1, nullptr);
        if (r.ok()) got = *r;
        return r.ok();
      },
      kTtl + 4s, 200ms));
  EXPECT_EQ(*got, *ib);
  EXPECT_GE(Clock::now() - abandoned_at, kTtl - 500ms);
  for (auto& t : tries) t->stop();
  a.stop();
}

TEST(EtcdRegistry, AbandonedNodeVanishesWithinTheTtlAndOthersKeepTheirLease) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  auto opts = registry_options(fixture_endpoints(), pre);
  std::atomic<int> lost_a{0};
  EtcdRegistry a(opts), b(opts);
  auto ia = a.start(node_info("a:1"), 1023, [&] { lost_a++; });
  auto ib = b.start(node_info("b:1"), 1023, nullptr);
  ASSERT_TRUE(ia.ok() && ib.ok());
  ASSERT_TRUE(eventually([&] { return a.node(*ib).has_value(); }, 3s));
  const auto lease_b = b.lease_id();
  b.abandon_for_test();
  const auto t0 = Clock::now();
  EXPECT_TRUE(a.node(*ib).has_value());  // not yet: only the lease's expiry removes it
  ASSERT_TRUE(eventually([&] { return !a.node(*ib).has_value(); }, kTtl + 3s));
  EXPECT_GE(Clock::now() - t0, kTtl - 500ms);
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  auto left = c.get_prefix(pre);
  ASSERT_TRUE(left.ok());
  for (const auto& kv : left->kvs) {
    EXPECT_NE(kv.lease, lease_b) << kv.key << " outlived its lease";
  }
  std::this_thread::sleep_for(kTtl);
  EXPECT_EQ(lost_a.load(), 0);
  EXPECT_TRUE(a.node(*ia).has_value());
  a.stop();
  EXPECT_TRUE(c.get_prefix(pre)->kvs.empty()) << "stop() revokes the lease: nothing is left";
}

TEST(EtcdRegistry, PartitionsAreSharedDisjointAndComplete) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  auto opts = registry_options(fixture_endpoints(), pre);
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  Ownership own(c, pre);
  std::vector<std::unique_ptr<EtcdRegistry>> regs;
  std::uint32_t ids[3];
  std::map<int, std::uint32_t> live;
  for (int i = 0; i < 3; ++i) {
    regs.push_back(std::make_unique<EtcdRegistry>(opts));
    auto id = regs[i]->start(node_info("n:" + std::to_string(i)), 1023, nullptr);
    ASSERT_TRUE(id.ok());
    ids[i] = *id;
    live[i] = *id;
  }
  for (int i = 0; i < 3; ++i) regs[i]->own_partitions(16, own.callback(i, &ids[i]));
  ASSERT_TRUE(eventually([&] { return own.settled(live, 16); }, 10s, 100ms));
  // settled(): each owns exactly its rendezvous share (how fair that is, for random ids, is
  // RendezvousUnit.RoughlyFairOnAverage's business), and etcd agrees.
  std::set<std::uint32_t> all;
  std::size_t total = 0;
  for (int i = 0; i < 3; ++i) {
    auto s = own.owned(i);
    total += s.size();
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), 16u);
  EXPECT_EQ(total, 16u);
  for (const auto& v : own.violations()) ADD_FAILURE() << v;

  // stop(): changed({}) first, and its partitions go to the others at once (the lease is
  // revoked, nothing waits for a TTL).
  const int calls_before = own.calls(0);
  regs[0]->stop();
  EXPECT_GT(own.calls(0), calls_before);
  EXPECT_TRUE(own.owned(0).empty());
  own.mark_dead(0);
  live.erase(0);
  const auto t0 = Clock::now();
  EXPECT_TRUE(eventually([&] { return own.settled(live, 16); }, 5s, 50ms));
  EXPECT_LT(Clock::now() - t0, kTtl);
  for (const auto& v : own.violations()) ADD_FAILURE() << v;
  for (auto& r : regs) r->stop();
}

TEST(EtcdRegistry, SurvivorsTakeOverAnAbandonedNodesPartitions) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  auto opts = registry_options(fixture_endpoints(), pre);
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  Ownership own(c, pre);
  std::vector<std::unique_ptr<EtcdRegistry>> regs;
  std::uint32_t ids[3];
  std::atomic<int> lost{0};
  std::map<int, std::uint32_t> live;
  for (int i = 0; i < 3; ++i) {
    regs.push_back(std::make_unique<EtcdRegistry>(opts));
    auto id = regs[i]->start(node_info("n"), 1023, [&] { lost++; });
    ASSERT_TRUE(id.ok());
    ids[i] = *id;
    live[i] = *id;
    regs[i]->own_partitions(16, own.callback(i, &ids[i]));
  }
  ASSERT_TRUE(eventually([&] { return own.settled(live, 16); }, 10s, 100ms));

  own.mark_dead(1);  // from now on it counts as crashed
  regs[1]->abandon_for_test();
  live.erase(1);
  const auto t0 = Clock::now();
  ASSERT_TRUE(eventually([&] { return own.settled(live, 16); }, kTtl + 4s, 50ms));
  EXPECT_GE(Clock::now() - t0, kTtl - 500ms) << "taken over before the lease expired";
  EXPECT_EQ(own.owned(0).size() + own.owned(2).size(), 16u);
  EXPECT_EQ(lost.load(), 0);
  for (const auto& v : own.violations()) ADD_FAILURE() << v;
  for (auto& r : regs) r->stop();
  EXPECT_EQ(lost.load(), 0);
}

TEST(EtcdRegistry, ALateJoinerTakesOverItsShare) {
  REQUIRE_FIXTURE_ETCD();
  const auto pre = unique_prefix();
  auto opts = registry_options(fixture_endpoints(), pre);
  EtcdClient c(EtcdOptions{fixture_endpoints(), 2000ms});
  Ownership own(c, pre);
  std::vector<std::unique_ptr<EtcdRegistry>> regs;
  std::uint32_t ids[3];
  std::map<int, std::uint32_t> live;
  for (int i = 0; i < 3; ++i) {
    regs.push_back(std::make_unique<EtcdRegistry>(opts));
    auto id = regs[i]->start(node_info("n"), 1023, nullptr);
    ASSERT_TRUE(id.ok());
    ids[i] = *id;
  }
  for (int i = 0; i < 2; ++i) {
    live[i] = ids[i];
    regs[i]->own_partitions(16, own.callback(i, &ids[i]));
  }
  ASSERT_TRUE(eventually([&] { return own.settled(live, 16); }, 10s, 100ms));
  live[2] = ids[2];
  regs[2]->own_partitions(16, own.callback(2, &ids[2]));
  ASSERT_TRUE(eventually([&] { return own.settled(live, 16); }, 10s, 50ms));
  auto want = rendezvous_share(ids[2], 16, {ids[0], ids[1], ids[2]});
  EXPECT_EQ(own.owned(2), std::set<std::uint32_t>(want.begin(), want.end()));
  for (const auto& v : own.violations()) ADD_FAILURE() << v;
  for (auto& r : regs) r->stop();
}

// ---- EtcdPrivate: cases that stop, hang or restart etcd

void lease_loss_case(int signal) {
  PrivateEtcd etcd;
  REQUIRE_PRIVATE_ETCD(etcd);
  const auto pre = unique_prefix();
  EtcdRegistry reg(registry_options({etcd.endpoint()}, pre));
  std::mutex mu;
  std::vector<std::string> order;
  auto id = reg.start(node_info("a:1"), 1023, [&] {
    std::lock_guard lock(mu);
    order.push_back("lost");
  });
  ASSERT_TRUE(id.ok());
  reg.own_partitions(4, [&](std::vector<std::uint32_t> owned) {
    std::lock_guard lock(mu);
    order.push_back("changed:" + std::to_string(owned.size()));
  });
  auto last = [&] {
    std::lock_guard lock(mu);
    return order.empty() ? std::string() : order.back();
  };
  ASSERT_TRUE(eventually([&] { return last() == "changed:4"; }, 5s));

  etcd.kill_now(signal);
  const auto t0 = Clock::now();
  ASSERT_TRUE(eventually([&] { return last() == "lost"; }, kTtl + 2s, 20ms));
  const auto took = Clock::now() - t0;
  EXPECT_LE(took, kTtl + 1s);
  EXPECT_GE(took, kTtl - 1s);
  {
    std::lock_guard lock(mu);
    ASSERT_GE(order.size(), 3u);
    EXPECT_EQ(order[order.size() - 2], "changed:0") << "changed({}) comes before on_lost";
    EXPECT_EQ(std::count(order.begin(), order.end(), "lost"), 1);
  }
  if (signal == SIGSTOP) etcd.kill_now(SIGCONT);
  reg.stop();  // no second on_lost, no second changed({})
  std::lock_guard lock(mu);
  EXPECT_EQ(order.back(), "lost");
}

TEST(EtcdPrivate, LeaseLossIsReportedWhenEtcdDies) {
  lease_loss_case(SIGKILL);
}

TEST(EtcdPrivate, LeaseLossIsReportedWhenEtcdHangs) {
  lease_loss_case(SIGSTOP);
}

TEST(EtcdPrivate, WatchListsAgainWhenItsRevisionWasCompacted) {
  PrivateEtcd etcd;
  REQUIRE_PRIVATE_ETCD(etcd);
  const std::string etcdctl = "/usr/bin/etcdctl";
  if (::access(etcdctl.c_str(), X_OK) != 0) GTEST_SKIP() << "no etcdctl (Debian: etcd-client)";
  const auto pre = unique_prefix();
  const std::string first = etcd.endpoint();
  EtcdClient c(EtcdOptions{{first}, 2000ms});
  ASSERT_TRUE(c.put(pre + "a", "1").ok());
  std::mutex mu;
  std::map<std::string, std::string> seen;
  int snapshots = 0;
  auto w = c.watch_prefix(
      pre,
      [&](std::vector<EtcdKeyValue> kvs, std::int64_t) {
        std::lock_guard lock(mu);
        ++snapshots;
        seen.clear();
        for (auto& kv : kvs) seen[kv.key] = kv.value;
      },
      [&](std::vector<EtcdEvent> events) {
        std::lock_guard lock(mu);
        for (auto& e : events) {
          if (e.type == EtcdEvent::Type::del) {
            seen.erase(e.kv.key);
          } else {
            seen[e.kv.key] = e.kv.value;
          }
        }
      });
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mu);
        return snapshots == 1;
      },
      5s));

  // While the watcher is cut off (etcd serves another port), change the keys and compact the
  // history it would resume from.
  etcd.kill_now(SIGTERM);
  const int other = free_port();
  ASSERT_NE(other, 0);
  etcd.move_client_port(other);
  ASSERT_TRUE(etcd.start());
  {
    EtcdClient side(EtcdOptions{{etcd.endpoint()}, 2000ms});
    ASSERT_TRUE(side.del(pre + "a").ok());
    ASSERT_TRUE(side.put(pre + "b", "2").ok());
    auto rev = side.put(pre + "c", "3");
    ASSERT_TRUE(rev.ok());
    const std::string cmd = "ETCDCTL_API=3 " + etcdctl + " --endpoints=" + etcd.endpoint() +
                            " compact " + std::to_string(*rev) + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  etcd.kill_now(SIGTERM);
  etcd.move_client_port(std::stoi(first.substr(first.find(':') + 1)));
  ASSERT_TRUE(etcd.start());

  const std::map<std::string, std::string> want = {{pre + "b", "2"}, {pre + "c", "3"}};
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mu);
        return seen == want && snapshots == 2;
      },
      10s))
      << "the watch did not list again after the compaction";
  ASSERT_TRUE(c.put(pre + "d", "4").ok());  // and it keeps watching
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() == 3;
      },
      5s));
  w->stop();
}

TEST(EtcdPrivate, WatchAndLeaseSurviveAnEtcdRestart) {
  PrivateEtcd etcd;
  REQUIRE_PRIVATE_ETCD(etcd);
  const auto pre = unique_prefix();
  // A TTL well above the restart time: the lease must survive it.
  auto opts = registry_options({etcd.endpoint()}, pre, std::chrono::seconds(15));
  std::atomic<int> lost{0};
  EtcdRegistry a(opts);
  auto ia = a.start(node_info("a:1"), 1023, [&] { lost++; });
  ASSERT_TRUE(ia.ok());

  etcd.kill_now(SIGTERM);
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(etcd.start());

  EtcdRegistry b(opts);
  auto ib = b.start(node_info("b:1"), 1023, nullptr);
  ASSERT_TRUE(ib.ok()) << ib.error().message;
  EXPECT_TRUE(eventually([&] { return a.node(*ib).has_value(); }, 5s))
      << "a's watch did not come back after the restart";
  b.stop();
  EXPECT_TRUE(eventually([&] { return !a.node(*ib).has_value(); }, 5s));
  // a's own entry is still there: its keep-alive reconnected.
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(a.node(*ia).has_value());
  EtcdClient c(EtcdOptions{{etcd.endpoint()}, 2000ms});
  EXPECT_EQ(c.get(pre + "nodes/" + std::to_string(*ia))->kvs.size(), 1u);
  EXPECT_EQ(lost.load(), 0);
  a.stop();
}

}  // namespace
}  // namespace imd
