// What only the Redis adapters have, beyond their ports' contracts (the contract suite):
// the inbox bound and its overflow marker, route TTLs and refresh, the member and user caches'
// policies, the cursor cache's TTL. Each policy test would fail without its policy (said at
// each test).
// Suites: AdaptersUnit.* (no server), and the rest instantiated as Redis/ (fixture `redis`) and
// RedisCluster/ (fixture `redis_cluster`).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "redis/message_codec.hpp"
#include "redis/redis_cursor_cache.hpp"
#include "redis/redis_inbox.hpp"
#include "redis/redis_keys.hpp"
#include "redis/redis_login_counters.hpp"
#include "redis/redis_member_cache.hpp"
#include "redis/redis_routes.hpp"
#include "redis/redis_test_support.hpp"
#include "redis/redis_user_cache.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using redis::Command;
using testing::RedisKind;

// --- AdaptersUnit

TEST(AdaptersUnit, MessagesRoundTripThroughTheCodec) {
  Message m{.id = ~0ull - 5,
            .conv = ConvKey::dm(3, ~0ull),
            .seq = 1ull << 60,
            .from = 3,
            .to = ~0ull,
            .type = "text",
            .body = std::string("a\0b\"\\\n\xe2\x82\xac", 10),
            .created_at = -5,
            .cid = "c1"};
  auto d = redis::decode_message(redis::encode_message(m));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, m.id);
  EXPECT_EQ(d->conv, m.conv);
  EXPECT_EQ(d->seq, m.seq);
  EXPECT_EQ(d->to, m.to);
  EXPECT_EQ(d->body, m.body);
  EXPECT_EQ(d->created_at, -5);
  EXPECT_EQ(d->cid, "c1");
  for (const char* bad : {"", "{}", "[1]", "{\"v\":2}", "not json"}) {
    auto r = redis::decode_message(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::internal);
  }
}

TEST(AdaptersUnit, HexKeysSortLikeNumbers) {
  EXPECT_EQ(redis::hex16(0), "0000000000000000");
  EXPECT_EQ(redis::hex16(~0ull), "ffffffffffffffff");
  EXPECT_LT(redis::hex16(9), redis::hex16(10));
  EXPECT_LT(redis::hex16(0xff), redis::hex16(0x100));
  EXPECT_LT(redis::hex16(1ull << 40), redis::hex16((1ull << 40) + 1));
}

TEST(AdaptersUnit, TheMemberCacheServesFromTheStoreWhenRedisIsDown) {
  redis::RedisOptions o;
  o.seeds = {{"127.0.0.1", 1}};  // nothing listens on port 1
  o.connect_timeout_ms = 200;
  auto client = std::make_shared<redis::RedisClient>(o);
  std::atomic<int> loads{0};
  RedisMemberCache cache(client, [&](Id) -> Result<std::vector<Id>> {
    ++loads;
    return std::vector<Id>{2, 1};
  });
  auto r = cache.members(5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, (std::vector<Id>{1, 2}));
  EXPECT_EQ(cache.counters().degraded, 1u);
  cache.invalidate(5);  // logged, not fatal
  RedisInbox inbox(client);
  auto l = inbox.list(1, std::nullopt, 10);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::unavailable);
  RedisRoutes routes(client);
  routes.add(1, {1, 1});
  EXPECT_TRUE(routes.lookup(1).empty());  // no routes: the recipient reads as offline
}

// --- servers

enum class Engine { redis, redis_cluster };

std::string engine_name(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::redis ? "redis" : "redis_cluster";
}

class RedisTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    client_ = testing::redis_test_client(GetParam() == Engine::redis ? RedisKind::single
                                                                     : RedisKind::cluster);
    if (!client_) GTEST_SKIP() << testing::kRedisSkipReason;
  }

  std::shared_ptr<redis::RedisClient> client_;
  std::string prefix_ = testing::unique_prefix();
};

// ---------------------------------------------------------------- RedisInbox

class RedisInboxTest : public RedisTest {
 protected:
  static InboxItem item(Id id, Id from, Id to, std::uint64_t seq, Millis at) {
    Message m{.id = id,
              .conv = ConvKey::dm(from, to),
              .seq = seq,
              .from = from,
              .to = to,
              .type = "text",
              .body = "b" + std::to_string(id),
              .created_at = at,
              .cid = "c" + std::to_string(id)};
    return InboxItem{.user_id = to, .msg = m};
  }
  static std::vector<Id> ids(const Result<std::vector<Message>>& r) {
    std::vector<Id> out;
    if (r.ok()) {
      for (const Message& m : *r) out.push_back(m.id);
    }
    return out;
  }
};

// The bound: without it the inbox would hold all 8 entries.
TEST_P(RedisInboxTest, OverflowDropsTheOldestAndLeavesAMarker) {
  RedisInbox inbox(client_, {.prefix = prefix_, .max_entries = 5});
  // Conversation order is not age order: (1,9) sorts first but holds the newest entries.
  std::vector<InboxItem> items = {item(10, 2, 9, 1, 1000), item(11, 2, 9, 2, 1001),
                                  item(12, 3, 9, 1, 1002), item(13, 3, 9, 2, 1003),
                                  item(14, 3, 9, 3, 1004), item(15, 1, 9, 1, 1005)};
  ASSERT_TRUE(inbox.push(items).ok());
  EXPECT_EQ(ids(inbox.list(9, std::nullopt, 100)), (std::vector<Id>{15, 11, 12, 13, 14}));
  std::vector<InboxItem> more = {item(16, 1, 9, 2, 1006), item(17, 1, 9, 3, 1007)};
  ASSERT_TRUE(inbox.push(more).ok());
  EXPECT_EQ(ids(inbox.list(9, std::nullopt, 100)), (std::vector<Id>{15, 16, 17, 13, 14}));
  EXPECT_EQ(*inbox.overflowed(9), 3u);
  EXPECT_EQ(*inbox.take_overflow(9), 3u);
  EXPECT_EQ(*inbox.take_overflow(9), 0u);
  EXPECT_EQ(*inbox.overflowed(10), 0u);
  // Re-pushing a dropped entry (a retried send) brings it back as the newest... only if it is
  // newer than what is kept: by age it is the oldest, so the bound drops it again at once.
  ASSERT_TRUE(inbox.push(std::vector<InboxItem>{item(10, 2, 9, 1, 1000)}).ok());
  EXPECT_EQ(ids(inbox.list(9, std::nullopt, 100)), (std::vector<Id>{15, 16, 17, 13, 14}));
  // Nothing of the dropped entries is left behind (the message hash is bounded too).
  auto h = client_->command({"HLEN", prefix_ + ":{u:9}:ib:msg"});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->integer, 5);
  auto a = client_->command({"ZCARD", prefix_ + ":{u:9}:ib:age"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->integer, 5);
}

// The resume clears the signal only after its backfill from the Store, by what it read before:
// drops that happened meanwhile stay signalled. Without that (GETDEL up front, or a plain DEL
// afterwards) the third drop below would be forgotten and its message never backfilled.
TEST_P(RedisInboxTest, ClearingTheOverflowKeepsDropsThatCameAfter) {
  RedisInbox inbox(client_, {.prefix = prefix_, .max_entries = 2});
  std::vector<InboxItem> four = {item(1, 1, 9, 1, 1), item(2, 1, 9, 2, 2), item(3, 1, 9, 3, 3),
                                 item(4, 1, 9, 4, 4)};
  ASSERT_TRUE(inbox.push(four).ok());
  const std::uint64_t seen = *inbox.overflowed(9);
  EXPECT_EQ(seen, 2u);
  ASSERT_TRUE(inbox.push(std::vector<InboxItem>{item(5, 1, 9, 5, 5)}).ok());  // mid-backfill
  ASSERT_TRUE(inbox.clear_overflow(9, seen).ok());
  EXPECT_EQ(*inbox.overflowed(9), 1u);
  ASSERT_TRUE(inbox.clear_overflow(9, 1).ok());
  EXPECT_EQ(*inbox.overflowed(9), 0u);
  auto gone = client_->command({"EXISTS", prefix_ + ":{u:9}:ib:over"});
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->integer, 0);
  ASSERT_TRUE(inbox.clear_overflow(9, 3).ok());  // more than is left: stays at 0
  EXPECT_EQ(*inbox.overflowed(9), 0u);
}

TEST_P(RedisInboxTest, ABatchLargerThanTheBoundKeepsTheNewest) {
  RedisInbox inbox(client_, {.prefix = prefix_, .max_entries = 100});
  std::vector<InboxItem> items;
  for (std::uint64_t s = 1; s <= 1700; ++s) items.push_back(item(s, 1, 2, s, 1000 + s));
  ASSERT_TRUE(inbox.push(items).ok());  // more than one eviction chunk (500) at once
  auto page = inbox.list(2, std::nullopt, 1000);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 100u);
  EXPECT_EQ(page->front().seq, 1601u);
  EXPECT_EQ(*inbox.overflowed(2), 1600u);
}

// Whole messages are stored: list() needs nothing else (no Store behind this inbox).
TEST_P(RedisInboxTest, KeepsWholeMessagesAndItsOwnCursor) {
  RedisInbox inbox(client_, {.prefix = prefix_});
  ASSERT_TRUE(inbox.ack(2, ConvKey::dm(1, 2), 5).ok());  // ACKed before anything was pushed
  std::vector<InboxItem> items;
  for (std::uint64_t s = 1; s <= 7; ++s) items.push_back(item(100 + s, 1, 2, s, 50));
  ASSERT_TRUE(inbox.push(items).ok());
  auto r = inbox.list(2, std::nullopt, 10);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(ids(r), (std::vector<Id>{106, 107}));
  const Message& m = (*r)[0];
  EXPECT_EQ(m.body, "b106");
  EXPECT_EQ(m.cid, "c106");
  EXPECT_EQ(m.from, 1u);
  EXPECT_EQ(m.to, 2u);
  EXPECT_EQ(m.created_at, 50);
  EXPECT_EQ(m.conv, ConvKey::dm(1, 2));
  // The cursor key holds the largest ACK; seq values use all 64 bits.
  ASSERT_TRUE(inbox.ack(2, ConvKey::dm(1, 2), ~0ull).ok());
  EXPECT_TRUE(ids(inbox.list(2, std::nullopt, 10)).empty());
  ASSERT_TRUE(inbox.push(items).ok());
  EXPECT_TRUE(ids(inbox.list(2, std::nullopt, 10)).empty());
}

TEST_P(RedisInboxTest, EveryKeyOfAUserIsInOneSlot) {
  RedisInbox inbox(client_, {.prefix = prefix_});
  ASSERT_TRUE(inbox.push(std::vector<InboxItem>{item(1, 1, 77, 1, 5)}).ok());
  const int slot = redis::key_slot(prefix_ + ":{u:77}:ib");
  for (const char* suffix : {":ib", ":ib:age", ":ib:msg", ":ib:ack", ":ib:over"}) {
    EXPECT_EQ(redis::key_slot(prefix_ + ":{u:77}" + suffix), slot) << suffix;
  }
  auto t = client_->command({"TYPE", prefix_ + ":{u:77}:ib"});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->str, "zset");
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisInboxTest, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisInboxTest, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- RedisLoginCounters

class RedisLoginCountersTest : public RedisTest {};

// Counts per pair and per account, known sources bounded and dated, every key expiring and in
// the account's slot (the scripts touch several).
TEST_P(RedisLoginCountersTest, CountsExpireAndKnownSourcesAreBounded) {
  const LoginCounterLimits limits{
      .forget_after_ms = 60'000, .known_for_ms = 3'600'000, .known_per_account = 2};
  RedisLoginCounters c(client_, {.prefix = prefix_, .limits = limits});
  const Millis now = 1'700'000'000'000;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.failed("+15550001", "10.0.0.1", now + i).ok());
  ASSERT_TRUE(c.failed("+15550001", "10.0.0.2", now + 5).ok());
  auto r = c.read("+15550001", "10.0.0.1", now + 10);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pair.failures, 3);
  EXPECT_EQ(r->pair.last_ms, now + 2);
  EXPECT_EQ(r->account.failures, 4);
  EXPECT_EQ(r->account.last_ms, now + 5);
  EXPECT_FALSE(r->known);
  EXPECT_EQ(c.read("+15550002", "10.0.0.1", now)->account.failures, 0);

  const std::string tag = prefix_ + ":{login:+15550001}";
  const int slot = redis::key_slot(tag + ":a");
  for (const std::string& key : {tag + ":a", tag + ":p:10.0.0.1"}) {
    EXPECT_EQ(redis::key_slot(key), slot) << key;
    auto pttl = client_->command({"PTTL", key});
    ASSERT_TRUE(pttl.ok());
    EXPECT_GT(pttl->integer, 0) << key;
    EXPECT_LE(pttl->integer, 60'000) << key;
  }

  // A login clears its pair and makes its source known, the newest two of them.
  for (const char* source : {"10.0.0.1", "10.0.0.3", "10.0.0.4"}) {
    ASSERT_TRUE(c.succeeded("+15550001", source, now + 20).ok());
  }
  r = c.read("+15550001", "10.0.0.4", now + 30);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->known);
  EXPECT_EQ(r->pair.failures, 0);
  EXPECT_EQ(r->account.failures, 4);
  EXPECT_TRUE(c.read("+15550001", "10.0.0.3", now + 30)->known);
  EXPECT_FALSE(c.read("+15550001", "10.0.0.1", now + 30)->known);  // the oldest, dropped
  EXPECT_EQ(c.read("+15550001", "10.0.0.1", now + 30)->pair.failures, 0);
  EXPECT_FALSE(c.read("+15550001", "10.0.0.4", now + 20 + limits.known_for_ms)->known);
  auto zcard = client_->command({"ZCARD", tag + ":k"});
  ASSERT_TRUE(zcard.ok());
  EXPECT_EQ(zcard->integer, 2);
  auto pttl = client_->command({"PTTL", tag + ":k"});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, limits.known_for_ms);
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisLoginCountersTest, ::testing::Values(Engine::redis),
                         engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisLoginCountersTest,
                         ::testing::Values(Engine::redis_cluster), engine_name);

// ---------------------------------------------------------------- RedisRoutes

class RedisRoutesTest : public RedisTest {};

// The TTL: without it a dead gateway's routes would stay forever.
TEST_P(RedisRoutesTest, RoutesExpireUnlessRefreshed) {
  RedisRoutes routes(client_, {.prefix = prefix_, .ttl = 1000ms});
  routes.add(1, {1, 10});
  routes.add(2, {1, 20});
  EXPECT_EQ(routes.lookup(1).size(), 1u);
  auto pttl = client_->command({"PTTL", prefix_ + ":{r:1}"});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, 1000);
  // Gateway 1 keeps refreshing user 2's connection only (user 1's is on a gateway that died).
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(200ms);
    std::pair<Id, ConnRef> live[] = {{2, {1, 20}}};
    ASSERT_TRUE(routes.refresh_many(live).ok());
  }
  EXPECT_TRUE(routes.lookup(1).empty());
  EXPECT_EQ(routes.lookup(2), (std::vector<ConnRef>{{1, 20}}));
  auto gone = client_->command({"EXISTS", prefix_ + ":{r:1}"});
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->integer, 0);  // the key left with its last route
}

TEST_P(RedisRoutesTest, EachConnectionExpiresOnItsOwn) {
  RedisRoutes routes(client_, {.prefix = prefix_, .ttl = 1000ms});
  routes.add(5, {1, 1});  // phone, on gateway 1 (which will die)
  routes.add(5, {2, 2});  // laptop, on gateway 2
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(routes.refresh(5, {2, 2}).ok());
  }
  EXPECT_EQ(routes.lookup(5), (std::vector<ConnRef>{{2, 2}}));
  std::vector<Id> users = {5};
  int seen = 0;
  EXPECT_TRUE(routes.lookup_many(users, [&](Id, ConnRef c) {
    EXPECT_EQ(c, (ConnRef{2, 2}));
    ++seen;
  }));
  EXPECT_EQ(seen, 1);
  // An expired connection that comes back (a refresh after a Redis hiccup) is live again.
  ASSERT_TRUE(routes.refresh(5, {1, 1}).ok());
  EXPECT_EQ(routes.lookup(5).size(), 2u);
}

TEST_P(RedisRoutesTest, RefreshManyCoversAGatewaysConnections) {
  RedisRoutes routes(client_, {.prefix = prefix_, .ttl = 60s});
  std::vector<std::pair<Id, ConnRef>> conns;
  for (Id u = 1; u <= 500; ++u) conns.push_back({u, {3, u}});
  ASSERT_TRUE(routes.refresh_many(conns).ok());
  std::vector<Id> users;
  for (Id u = 1; u <= 500; ++u) users.push_back(u);
  int seen = 0;
  EXPECT_TRUE(routes.lookup_many(users, [&](Id u, ConnRef c) {
    EXPECT_EQ(c, (ConnRef{3, u}));
    ++seen;
  }));
  EXPECT_EQ(seen, 500);
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisRoutesTest, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisRoutesTest, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- RedisMemberCache

// A loader that counts and can be slowed down; "the Store" of these tests.
struct SlowStore {
  std::atomic<int> loads{0};
  std::chrono::milliseconds delay{0};
  std::mutex mu;
  std::map<Id, std::vector<Id>> lists;
  std::set<Id> missing;  // answer not_found for these
  std::condition_variable cv;
  bool hold = false;

  Result<std::vector<Id>> load(Id c) {
    std::unique_lock lock(mu);
    ++loads;
    auto it = lists.find(c);
    std::vector<Id> snapshot = it == lists.end() ? std::vector<Id>{} : it->second;
    bool nf = missing.count(c) > 0;
    cv.wait(lock, [&] { return !hold; });
    lock.unlock();
    std::this_thread::sleep_for(delay);
    if (nf) return make_error(Errc::not_found, "no such channel");
    return snapshot;
  }
  void set(Id c, std::vector<Id> ids) {
    std::lock_guard lock(mu);
    lists[c] = std::move(ids);
  }
  void release() {
    {
      std::lock_guard lock(mu);
      hold = false;
    }
    cv.notify_all();
  }
};

// Caches on this test's key prefix (several of them act as processes that share one Redis),
// loading from `source`, and the keys of the id `id` under the hash tag `tag`.
template <class Cache, const char* kTag>
class RedisCacheTest : public RedisTest {
 protected:
  template <class Source>
  std::unique_ptr<Cache> make(Source& source, RedisCacheOptions o = {}) {
    o.prefix = prefix_;
    return std::make_unique<Cache>(
        client_, [&source](Id id) { return source.load(id); }, o);
  }
  // A cache over a real Store (SQLite): `query(store, id)` loads; sqlite_loads_ counts.
  template <class Query>
  std::unique_ptr<Cache> make_on_sqlite(Query query, RedisCacheOptions o) {
    sqlite_ = std::make_unique<SqliteStore>(testing::open_db(dir_.file("imd.db")));
    o.prefix = prefix_;
    return std::make_unique<Cache>(
        client_,
        [this, query](Id id) {
          ++sqlite_loads_;
          return query(*sqlite_, id);
        },
        o);
  }
  std::string key(Id id, const char* suffix) const {
    return prefix_ + ":{" + kTag + ":" + std::to_string(id) + "}" + suffix;
  }
  // The TTLs of these ids' values, set with ttl 100 s and jitter 0.1, spread over most of the
  // +-10% window (without jitter they would lie within a few ms of each other).
  void expect_jittered_ttls(std::span<const Id> ids, const char* suffix) {
    std::vector<Command> cmds;
    for (Id id : ids) cmds.push_back({"PTTL", key(id, suffix)});
    auto r = client_->pipeline(cmds);
    ASSERT_TRUE(r.ok());
    long long lo = 1LL << 60, hi = 0;
    for (const auto& reply : *r) {
      lo = std::min(lo, reply.integer);
      hi = std::max(hi, reply.integer);
    }
    EXPECT_GE(lo, 85000);
    EXPECT_LE(hi, 110000);
    EXPECT_GE(hi - lo, 8000);
  }
  // A hot key missed at once: `threads` threads of each process call get(cache) together.
  // Returns how many got `expected`.
  template <class Get, class V>
  int read_at_once(std::vector<std::unique_ptr<Cache>>& processes, int threads, Get get,
                   const V& expected) {
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (auto& p : processes) {
      for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, cache = p.get()] {
          auto r = get(*cache);
          if (r.ok() && **r == expected) ++ok;
        });
      }
    }
    for (auto& t : ts) t.join();
    return ok.load();
  }

  testing::TempDir dir_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::atomic<int> sqlite_loads_{0};
};

constexpr char kChannelTag[] = "ch";
constexpr char kUserTag[] = "u";
using RedisMemberCacheTest = RedisCacheTest<RedisMemberCache, kChannelTag>;

// Breakdown: a hot key expires and many threads of several processes miss it at once. Without
// the Redis lock each process would load (3 loads); without the in-process single flight every
// thread would poll Redis (about 24 threads x 25 polls) instead of one per process.
TEST_P(RedisMemberCacheTest, AHotMissLoadsOnceAcrossProcesses) {
  SlowStore store;
  store.set(1, {4, 5, 6});
  store.delay = 500ms;
  std::vector<std::unique_ptr<RedisMemberCache>> processes;
  for (int p = 0; p < 3; ++p) processes.push_back(make(store));
  EXPECT_EQ(
      read_at_once(
          processes, 8, [](RedisMemberCache& c) { return c.members(1); }, std::vector<Id>{4, 5, 6}),
      24);
  EXPECT_EQ(store.loads.load(), 1);
  std::uint64_t polls = 0, shared = 0, degraded = 0;
  for (auto& p : processes) {
    polls += p->counters().lock_waits;
    shared += p->counters().shared;
    degraded += p->counters().degraded;
  }
  EXPECT_EQ(degraded, 0u);
  EXPECT_GE(shared, 3u * 7u - 3u);        // nearly every thread rode on its process's flight
  EXPECT_LE(polls, 2u * (500 / 20 + 5));  // only the two losing processes poll, once each
  auto lock = client_->command({"EXISTS", key(1, ":lock")});
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(lock->integer, 0);  // released by its holder
}

// The lock holder died (its lock expires by itself): a waiter takes over and caches.
TEST_P(RedisMemberCacheTest, ALockWhoseHolderDiedExpires) {
  SlowStore store;
  store.set(2, {1});
  ASSERT_TRUE(client_->command({"SET", key(2, ":lock"), "dead-process", "PX", "200"}).ok());
  auto cache = make(store, {.lock_wait = 2000ms});
  auto r = cache->members(2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, (std::vector<Id>{1}));
  EXPECT_EQ(store.loads.load(), 1);
  EXPECT_GT(cache->counters().lock_waits, 0u);
  EXPECT_EQ(cache->counters().degraded, 0u);
  EXPECT_TRUE(cache->members(2).ok());
  EXPECT_EQ(store.loads.load(), 1);  // cached by the waiter that took over
}

// A lock that outlives lock_wait costs latency, not an error: the waiter loads by itself.
TEST_P(RedisMemberCacheTest, AStuckLockDegradesToADirectLoad) {
  SlowStore store;
  store.set(3, {8});
  ASSERT_TRUE(client_->command({"SET", key(3, ":lock"), "stuck", "PX", "60000"}).ok());
  auto cache = make(store, {.lock_wait = 150ms});
  auto t0 = std::chrono::steady_clock::now();
  auto r = cache->members(3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, (std::vector<Id>{8}));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  EXPECT_EQ(cache->counters().degraded, 1u);
}

// Penetration: ids with no channel behind them. Without negative entries each of the 50
// lookups would reach the Store.
TEST_P(RedisMemberCacheTest, UnknownChannelsAreCachedNegativeBriefly) {
  SlowStore store;
  store.missing.insert(404);  // this loader answers not_found; others answer an empty list
  auto cache = make(store, {.jitter = 0.0, .negative_ttl = 1500ms});
  for (int i = 0; i < 50; ++i) {
    auto empty = cache->members(400);
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE((*empty)->empty());
    auto nf = cache->members(404);
    ASSERT_FALSE(nf.ok());
    EXPECT_EQ(nf.error().code, Errc::not_found);
  }
  EXPECT_EQ(store.loads.load(), 2);
  EXPECT_EQ(cache->counters().negative_hits, 98u);
  auto pttl = client_->command({"PTTL", key(400, ":m")});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, 1500);  // short: a channel created later is seen soon
  std::this_thread::sleep_for(1600ms);
  EXPECT_TRUE(cache->members(400).ok());
  EXPECT_EQ(store.loads.load(), 3);
}

// The same with the real Store: SqliteStore::channel_member_ids answers an unknown channel with
// an empty list, which becomes a negative entry.
TEST_P(RedisMemberCacheTest, UnknownChannelsOfTheSqliteStore) {
  auto cache = make_on_sqlite([](Store& s, Id c) { return s.channel_member_ids(c); },
                              {.negative_ttl = 5000ms});
  for (int i = 0; i < 20; ++i) {
    auto r = cache->members(123456789);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE((*r)->empty());
  }
  EXPECT_EQ(sqlite_loads_.load(), 1);
  auto v = client_->command({"GET", key(123456789, ":m")});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->str, "E");
}

// Avalanche: lists warmed together must not expire together. Without jitter their TTLs would
// all lie within a few ms of each other.
TEST_P(RedisMemberCacheTest, TtlsAreJittered) {
  SlowStore store;
  std::vector<Id> channels;
  for (Id c = 1000; c < 1100; ++c) {
    store.set(c, {c});
    channels.push_back(c);
  }
  auto cache = make(store, {.ttl = 100000ms, .jitter = 0.1});
  auto warmed = cache->warm(channels);
  ASSERT_TRUE(warmed.ok());
  EXPECT_EQ(*warmed, 100u);
  expect_jittered_ttls(channels, ":m");
}

// Invalidation: the list is shared by every process, so one process's invalidate() after a
// Store write is seen by all. Without it the other process would serve the old list for a TTL.
TEST_P(RedisMemberCacheTest, InvalidationReachesEveryProcess) {
  SlowStore store;
  store.set(7, {1, 2});
  auto api = make(store);    // the process that handles the join
  auto logic = make(store);  // a process that fans out
  EXPECT_EQ(**logic->members(7), (std::vector<Id>{1, 2}));
  store.set(7, {1, 2, 3});
  EXPECT_EQ(**logic->members(7), (std::vector<Id>{1, 2}));  // cached: not yet invalidated
  api->invalidate(7);
  EXPECT_EQ(**logic->members(7), (std::vector<Id>{1, 2, 3}));
  EXPECT_EQ(store.loads.load(), 2);
}

// A load that read the Store before a change must not cache its list after the change's
// invalidation, even in another process. Without the version check the stale {1,2} would be
// cached for a whole TTL.
TEST_P(RedisMemberCacheTest, ALoadOverlappingAnInvalidationIsNotCached) {
  SlowStore store;
  store.set(8, {1, 2});
  store.hold = true;
  auto logic = make(store);
  auto api = make(store);
  std::thread loading([&] { (void)logic->members(8); });  // has read {1,2}, held
  while (store.loads.load() == 0) std::this_thread::yield();
  store.set(8, {1, 2, 3});
  api->invalidate(8);
  store.release();
  loading.join();
  auto other = make(store);
  EXPECT_EQ(**other->members(8), (std::vector<Id>{1, 2, 3}));
  EXPECT_EQ(store.loads.load(), 2);
}

TEST_P(RedisMemberCacheTest, CountsHitsAndMisses) {
  SlowStore store;
  store.set(9, {1});
  auto cache = make(store);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(cache->members(9).ok());
  ASSERT_TRUE(cache->members(10).ok());  // empty: negative
  ASSERT_TRUE(cache->members(10).ok());
  auto c = cache->counters();
  EXPECT_EQ(c.misses, 2u);
  EXPECT_EQ(c.hits, 5u);
  EXPECT_EQ(c.negative_hits, 1u);
  EXPECT_EQ(c.loads, 2u);
  EXPECT_EQ(cache->hits(), 5u);
  EXPECT_EQ(cache->misses(), 2u);
}

TEST_P(RedisMemberCacheTest, WarmLoadsOnlyWhatIsMissing) {
  SlowStore store;
  std::vector<Id> channels = {20, 21, 22};
  for (Id c : channels) store.set(c, {c, c + 1});
  auto cache = make(store);
  ASSERT_TRUE(cache->members(21).ok());
  auto w = cache->warm(channels);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, 2u);
  EXPECT_EQ(store.loads.load(), 3);
  auto again = cache->warm(channels);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  auto before = cache->counters().hits;
  for (Id c : channels) ASSERT_TRUE(cache->members(c).ok());
  EXPECT_EQ(cache->counters().hits, before + 3);
  EXPECT_EQ(store.loads.load(), 3);
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisMemberCacheTest, ::testing::Values(Engine::redis),
                         engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisMemberCacheTest,
                         ::testing::Values(Engine::redis_cluster), engine_name);

// ---------------------------------------------------------------- RedisUserCache

// The user cache runs on the same machinery (redis::CacheAside) as the member cache, whose
// tests above cover each policy in depth; these show each policy on the user cache's keys.
struct SlowUsers {
  std::atomic<int> loads{0};
  std::chrono::milliseconds delay{0};
  Result<Memberships> load(Id user) {
    ++loads;
    std::this_thread::sleep_for(delay);
    if (user >= 1000000) return make_error(Errc::not_found, "no such user");
    return Memberships{{user + 2, user + 1}, {user * 10}};
  }
};

using RedisUserCacheTest = RedisCacheTest<RedisUserCache, kUserTag>;

// Breakdown: without the lock every process would load (3 loads).
TEST_P(RedisUserCacheTest, AHotMissLoadsOnceAcrossProcesses) {
  SlowUsers users;
  users.delay = 300ms;
  std::vector<std::unique_ptr<RedisUserCache>> processes;
  for (int p = 0; p < 3; ++p) processes.push_back(make(users));
  EXPECT_EQ(read_at_once(
                processes, 6, [](RedisUserCache& c) { return c.memberships(5); },
                Memberships{{6, 7}, {50}}),
            18);
  EXPECT_EQ(users.loads.load(), 1);
}

// Penetration: lookups of a user id that does not exist. Without the negative entry each of the
// 30 lookups would reach the Store.
TEST_P(RedisUserCacheTest, UnknownUsersAreCachedNegativeBriefly) {
  auto cache = make_on_sqlite([](Store& s, Id u) { return s.memberships_of_user(u); },
                              {.jitter = 0.0, .negative_ttl = 1500ms});
  for (int i = 0; i < 30; ++i) {
    auto r = cache->memberships(424242);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::not_found);
  }
  EXPECT_EQ(sqlite_loads_.load(), 1);
  EXPECT_EQ(cache->counters().negative_hits, 29u);
  auto v = client_->command({"GET", key(424242, ":sc")});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->str, "N");
  auto pttl = client_->command({"PTTL", key(424242, ":sc")});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, 1500);
}

// Avalanche: without jitter the TTLs of users warmed together would lie within a few ms.
TEST_P(RedisUserCacheTest, TtlsAreJittered) {
  SlowUsers users;
  auto cache = make(users, {.ttl = 100000ms, .jitter = 0.1});
  std::vector<Id> ids;
  for (Id u = 1; u <= 100; ++u) {
    ASSERT_TRUE(cache->warm(u).ok());
    ids.push_back(u);
  }
  expect_jittered_ttls(ids, ":sc");
}

// Invalidation after a membership change reaches every process; the keys sit in the user's slot
// (beside the inbox), so the scripts touch one node.
TEST_P(RedisUserCacheTest, InvalidationReachesEveryProcessAndKeysShareTheUsersSlot) {
  SlowUsers users;
  auto api = make(users);
  auto gateway = make(users);
  ASSERT_TRUE(gateway->memberships(8).ok());
  ASSERT_TRUE(gateway->memberships(8).ok());
  EXPECT_EQ(users.loads.load(), 1);
  api->invalidate(8);
  ASSERT_TRUE(gateway->memberships(8).ok());
  EXPECT_EQ(users.loads.load(), 2);
  const int slot = redis::key_slot(key(8, ":ib"));
  for (const char* suffix : {":sc", ":sc:lock", ":sc:v", ":cur"}) {
    EXPECT_EQ(redis::key_slot(key(8, suffix)), slot) << suffix;
  }
  auto c = gateway->counters();
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.misses, 2u);
  EXPECT_EQ(c.loads, 2u);
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisUserCacheTest, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisUserCacheTest, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- RedisCursorCache

// The cursors of a user who stopped ACKing leave Redis: without the TTL they would stay forever.
TEST_P(RedisTest, CursorCacheKeysExpire) {
  RedisCursorCache cache(client_, {.prefix = prefix_, .ttl = 1000ms});
  std::vector<DeliveryUpdate> put = {{4, ConvKey::channel(7), 3}, {4, ConvKey::dm(4, 9), 2}};
  cache.put(put);
  EXPECT_EQ(cache.get(4, ConvKey::channel(7)), 3u);
  auto pttl = client_->command({"PTTL", prefix_ + ":{u:4}:cur"});
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, 0);
  EXPECT_LE(pttl->integer, 1000);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(cache.get(4, ConvKey::channel(7)), 0u);  // gone: the next ACK writes through
}

INSTANTIATE_TEST_SUITE_P(Redis, RedisTest, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RedisTest, ::testing::Values(Engine::redis_cluster),
                         engine_name);

}  // namespace
}  // namespace imd
