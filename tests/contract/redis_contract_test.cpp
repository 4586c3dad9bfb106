// The contracts of the Inbox, Routes, PresenceStore, MemberCache, UserCache and CursorCache
// ports, each run against every adapter of its port:
//   Inbox:        Sqlite (store/SqliteInbox), Redis, RedisCluster
//   Routes:       Memory (routes/MemoryRoutes), Redis, RedisCluster
//   Presence:     Memory (routes/MemoryPresence), Redis, RedisCluster
//   MemberCache:  Memory (cache/MemoryMemberCache), Redis, RedisCluster
//   UserCache:    Memory (cache/MemoryUserCache), Redis, RedisCluster
//   CursorCache:  Memory (cache/MemoryCursorCache), Redis, RedisCluster
// A behaviour the domain relies on belongs here, so that every adapter keeps it; what only one
// adapter has (TTLs, the inbox bound, cache policies) is in that adapter's own tests. The Redis
// cases need the CTest fixtures `redis` / `redis_cluster` (instantiations Redis/ and
// RedisCluster/); the others run anywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cache/memory_cursor_cache.hpp"
#include "cache/memory_member_cache.hpp"
#include "cache/memory_user_cache.hpp"
#include "redis/redis_cursor_cache.hpp"
#include "redis/redis_inbox.hpp"
#include "redis/redis_member_cache.hpp"
#include "redis/redis_presence.hpp"
#include "redis/redis_routes.hpp"
#include "redis/redis_test_support.hpp"
#include "redis/redis_user_cache.hpp"
#include "routes/memory_presence.hpp"
#include "routes/memory_routes.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using testing::dm_msg;
using testing::make_user;
using testing::RedisKind;

enum class Engine { sqlite, memory, redis, redis_cluster };

std::string engine_name(const ::testing::TestParamInfo<Engine>& info) {
  switch (info.param) {
    case Engine::sqlite:
      return "sqlite";
    case Engine::memory:
      return "memory";
    case Engine::redis:
      return "redis";
    case Engine::redis_cluster:
      return "redis_cluster";
  }
  return "unknown";
}

// The Redis client of a Redis engine (one per test), or nullptr with the test skipped.
std::shared_ptr<redis::RedisClient> redis_client_for(Engine e) {
  return testing::redis_test_client(e == Engine::redis ? RedisKind::single : RedisKind::cluster);
}

#define IMD_REQUIRE_REDIS(client)                             \
  do {                                                        \
    if (!(client)) GTEST_SKIP() << testing::kRedisSkipReason; \
  } while (0)

// ---------------------------------------------------------------- Inbox

// Messages are always stored through a SQLite store first, as the messaging pipeline does (the
// SQLite inbox references them; the Redis one keeps its own copy), and delivery ACKs go through
// deliver(), which does what MessagingService::ack does: the Store's cursor, then the inbox.
class InboxContract : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    for (Id u = 1; u <= 30; ++u) {
      ASSERT_TRUE(store_.create_user(make_user(u, "u" + std::to_string(u)), "h").ok());
    }
    if (GetParam() == Engine::sqlite) {
      inbox_ = std::make_unique<SqliteInbox>(db_);
    } else {
      client_ = redis_client_for(GetParam());
      IMD_REQUIRE_REDIS(client_);
      inbox_ = std::make_unique<RedisInbox>(
          client_, RedisInboxOptions{.prefix = testing::unique_prefix(), .max_entries = 10000});
    }
  }

  std::vector<InboxItem> send(const std::vector<NewMessage>& batch) {
    auto r = store_.append_messages(batch);
    EXPECT_TRUE(r.ok());
    std::vector<InboxItem> items;
    if (!r.ok()) return items;
    for (auto& a : *r) {
      EXPECT_TRUE(a.ok());
      if (a.ok()) items.push_back(InboxItem{.user_id = a->msg.to, .msg = a->msg});
    }
    return items;
  }

  void deliver(Id user, const ConvKey& conv, std::uint64_t seq) {
    ASSERT_TRUE(store_.advance_delivery(user, conv, seq).ok());
    ASSERT_TRUE(inbox_->ack(user, conv, seq).ok());
  }

  using V = std::vector<std::pair<Id, std::uint64_t>>;  // (message id, seq)

  V listed(Id user, std::optional<InboxCursor> after = {}, std::uint32_t limit = 100) {
    auto r = inbox_->list(user, after, limit);
    EXPECT_TRUE(r.ok()) << r.error().message;
    V out;
    if (r.ok()) {
      for (const Message& m : *r) out.emplace_back(m.id, m.seq);
    }
    return out;
  }

  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_ = testing::open_db(dir_.file("imd.db"));
  SqliteStore store_{db_};
  std::shared_ptr<redis::RedisClient> client_;
  std::unique_ptr<Inbox> inbox_;
};

TEST_P(InboxContract, PushListAck) {
  auto items = send({dm_msg(10, 1, 2, "a", "one"), dm_msg(11, 1, 2, "b", "two"),
                     dm_msg(12, 3, 2, "c"), dm_msg(13, 2, 1, "d")});
  ASSERT_TRUE(inbox_->push(items).ok());

  EXPECT_EQ(listed(2), (V{{10, 1}, {11, 2}, {12, 1}}));  // by conversation (a, b), then seq
  EXPECT_EQ(listed(1), (V{{13, 3}}));
  EXPECT_TRUE(listed(4).empty());

  auto full = inbox_->list(2, std::nullopt, 1);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  const Message& m = (*full)[0];
  EXPECT_EQ(m.id, 10u);
  EXPECT_EQ(m.conv, ConvKey::dm(1, 2));
  EXPECT_EQ(m.seq, 1u);
  EXPECT_EQ(m.from, 1u);
  EXPECT_EQ(m.to, 2u);
  EXPECT_EQ(m.body, "one");
  EXPECT_EQ(m.type, "text");
  EXPECT_EQ(m.cid, "a");
  EXPECT_EQ(m.created_at, 5010);

  ASSERT_TRUE(inbox_->ack(2, ConvKey::dm(1, 2), 1).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}, {12, 1}}));
  // Acking another conversation or another user's entries leaves these alone.
  ASSERT_TRUE(inbox_->ack(2, ConvKey::dm(2, 3), 0).ok());
  ASSERT_TRUE(inbox_->ack(1, ConvKey::dm(1, 2), 99).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}, {12, 1}}));
  EXPECT_TRUE(listed(1).empty());
  ASSERT_TRUE(inbox_->ack(2, ConvKey::dm(3, 2), ~0ull).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}}));
  ASSERT_TRUE(inbox_->ack(2, ConvKey::channel(7), 5).ok());  // nothing there: a no-op
}

TEST_P(InboxContract, PushIsIdempotent) {
  auto items = send({dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b")});
  ASSERT_TRUE(inbox_->push(items).ok());
  ASSERT_TRUE(inbox_->push(items).ok());
  std::vector<InboxItem> twice = {items[0], items[0]};
  ASSERT_TRUE(inbox_->push(twice).ok());
  EXPECT_EQ(listed(2), (V{{10, 1}, {11, 2}}));
  ASSERT_TRUE(inbox_->push({}).ok());
}

TEST_P(InboxContract, RepeatedPushDoesNotResurrectAckedEntries) {
  auto items = send({dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b")});
  ASSERT_TRUE(inbox_->push(items).ok());
  deliver(2, ConvKey::dm(1, 2), 1);
  ASSERT_TRUE(inbox_->push(items).ok());  // a retried send pushes both again
  EXPECT_EQ(listed(2), (V{{11, 2}}));
}

TEST_P(InboxContract, PushAtOrBelowTheCursorIsSkippedEvenIfNeverPushedBefore) {
  auto items = send(
      {dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b"), dm_msg(12, 1, 2, "c"), dm_msg(13, 3, 2, "d")});
  // The recipient got seq 1..2 live and ACKed them before the inbox write (a slow consumer).
  deliver(2, ConvKey::dm(1, 2), 2);
  ASSERT_TRUE(inbox_->push(items).ok());
  EXPECT_EQ(listed(2), (V{{12, 3}, {13, 1}}));  // the cursor is per conversation
}

TEST_P(InboxContract, AnOlderAckDoesNotMoveTheCursorBack) {
  auto items = send({dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b"), dm_msg(12, 1, 2, "c")});
  ASSERT_TRUE(inbox_->push(items).ok());
  deliver(2, ConvKey::dm(1, 2), 2);
  deliver(2, ConvKey::dm(1, 2), 1);  // a late, duplicated ACK
  ASSERT_TRUE(inbox_->push(items).ok());
  EXPECT_EQ(listed(2), (V{{12, 3}}));
}

TEST_P(InboxContract, PagesWithACursor) {
  std::vector<NewMessage> batch;
  Id id = 100;
  for (int i = 0; i < 3; ++i) batch.push_back(dm_msg(id++, 1, 4, "x" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) batch.push_back(dm_msg(id++, 3, 4, "y" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) batch.push_back(dm_msg(id++, 2, 4, "z" + std::to_string(i)));
  ASSERT_TRUE(inbox_->push(send(batch)).ok());

  const V all = {{100, 1}, {101, 2}, {102, 3}, {106, 1}, {107, 2}, {103, 1}, {104, 2}, {105, 3}};
  EXPECT_EQ(listed(4), all);
  V paged;
  std::optional<InboxCursor> after;
  for (;;) {
    auto page = inbox_->list(4, after, 3);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    EXPECT_LE(page->size(), 3u);
    for (const Message& m : *page) paged.emplace_back(m.id, m.seq);
    after = InboxCursor{.conv = page->back().conv, .seq = page->back().seq};
  }
  EXPECT_EQ(paged, all);
  EXPECT_EQ(listed(4, InboxCursor{ConvKey::dm(2, 4), 1}),
            (V{{107, 2}, {103, 1}, {104, 2}, {105, 3}}));
  EXPECT_TRUE(listed(4, InboxCursor{ConvKey::dm(3, 4), 3}).empty());
  EXPECT_TRUE(listed(4, std::nullopt, 0).empty());
}

TEST_P(InboxContract, PagesAreCappedAt1000) {
  std::vector<NewMessage> batch;
  for (Id i = 0; i < 1005; ++i) batch.push_back(dm_msg(1000 + i, 5, 6, "m" + std::to_string(i)));
  ASSERT_TRUE(inbox_->push(send(batch)).ok());
  auto page = inbox_->list(6, std::nullopt, 5000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 1000u);
  EXPECT_EQ(page->back().seq, 1000u);
}

TEST_P(InboxContract, BodiesRoundTripExactly) {
  const std::string body = std::string("quotes \" ' \\ {json} \r\n tab\t nul\0 end ", 37) +
                           "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80";
  auto items = send({dm_msg(10, 1, 2, "cid with spaces", body)});
  ASSERT_TRUE(inbox_->push(items).ok());
  auto r = inbox_->list(2, std::nullopt, 10);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].body, body);
  EXPECT_EQ((*r)[0].cid, "cid with spaces");
}

TEST_P(InboxContract, OneBatchForManyRecipients) {
  std::vector<NewMessage> batch;
  Id id = 500;
  for (Id to = 2; to <= 30; ++to) {
    for (int i = 0; i < 3; ++i, ++id) batch.push_back(dm_msg(id, 1, to, "c" + std::to_string(id)));
  }
  ASSERT_TRUE(inbox_->push(send(batch)).ok());
  for (Id to = 2; to <= 30; ++to) {
    V got = listed(to);
    ASSERT_EQ(got.size(), 3u) << "user " << to;
    EXPECT_EQ(got[0].second, 1u);
    EXPECT_EQ(got[2].second, 3u);
  }
}

TEST_P(InboxContract, AcksRacingWithRepeatedPushesNeverResurrect) {
  std::vector<NewMessage> batch;
  for (Id i = 0; i < 40; ++i) batch.push_back(dm_msg(700 + i, 7, 8, "r" + std::to_string(i)));
  auto items = send(batch);
  ASSERT_TRUE(inbox_->push(items).ok());
  std::atomic<bool> stop{false};
  std::thread pusher([&] {
    while (!stop) ASSERT_TRUE(inbox_->push(items).ok());
  });
  for (std::uint64_t seq = 5; seq <= 30; seq += 5) {
    deliver(8, ConvKey::dm(7, 8), seq);
    std::this_thread::sleep_for(5ms);
  }
  stop = true;
  pusher.join();
  V got = listed(8);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front().second, 31u);
}

TEST_P(InboxContract, ChannelMessagesAreRejected) {
  Message m;
  m.id = 1;
  m.conv = ConvKey::channel(5);
  m.seq = 1;
  m.from = 1;
  std::vector<InboxItem> items = {InboxItem{.user_id = 2, .msg = m}};
  auto r = inbox_->push(items);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_TRUE(listed(2).empty());
}

// Only a bounded inbox overflows; an inbox that has not dropped anything says 0, and clearing
// what was not signalled changes nothing.
TEST_P(InboxContract, AnInboxWithinItsBoundSignalsNoOverflow) {
  ASSERT_TRUE(inbox_->push(send({dm_msg(1, 1, 2, "a"), dm_msg(2, 1, 2, "b")})).ok());
  auto over = inbox_->overflowed(2);
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(*over, 0u);
  ASSERT_TRUE(inbox_->clear_overflow(2, 0).ok());
  EXPECT_EQ(*inbox_->overflowed(2), 0u);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, InboxContract, ::testing::Values(Engine::sqlite), engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, InboxContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, InboxContract, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- Routes

class RoutesContract : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::memory) {
      routes_ = std::make_unique<MemoryRoutes>();
    } else {
      client_ = redis_client_for(GetParam());
      IMD_REQUIRE_REDIS(client_);
      routes_ = std::make_unique<RedisRoutes>(
          client_, RedisRoutesOptions{.prefix = testing::unique_prefix(), .ttl = 60s});
    }
  }

  static std::vector<ConnRef> sorted(std::vector<ConnRef> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  std::shared_ptr<redis::RedisClient> client_;
  std::unique_ptr<Routes> routes_;
};

TEST_P(RoutesContract, ManyDevicesPerUser) {
  routes_->add(1, {0, 10});
  routes_->add(1, {3, 11});  // another gateway node
  routes_->add(2, {0, 20});
  EXPECT_EQ(sorted(routes_->lookup(1)), (std::vector<ConnRef>{{0, 10}, {3, 11}}));
  routes_->remove(1, {0, 10});
  EXPECT_EQ(routes_->lookup(1), (std::vector<ConnRef>{{3, 11}}));
  routes_->remove(1, {3, 11});
  EXPECT_TRUE(routes_->lookup(1).empty());
  EXPECT_EQ(routes_->lookup(2), (std::vector<ConnRef>{{0, 20}}));
}

TEST_P(RoutesContract, RemovingWhatIsNotThereIsANoOp) {
  routes_->remove(3, {0, 1});
  routes_->add(4, {1, 1});
  routes_->remove(4, {1, 2});  // same user, other connection
  routes_->remove(5, {1, 1});  // same connection, other user
  EXPECT_TRUE(routes_->lookup(3).empty());
  EXPECT_EQ(routes_->lookup(4), (std::vector<ConnRef>{{1, 1}}));
}

TEST_P(RoutesContract, LookupManyVisitsEveryConnectionOfTheUsersAsked) {
  std::map<Id, std::vector<ConnRef>> expected;
  for (Id u = 100; u < 160; ++u) {
    if (u % 3 == 0) continue;  // offline
    ConnRef a{static_cast<std::uint32_t>(u % 4), u * 10};
    routes_->add(u, a);
    expected[u].push_back(a);
    if (u % 5 == 0) {
      ConnRef b{7, u * 10 + 1};
      routes_->add(u, b);
      expected[u].push_back(b);
    }
  }
  routes_->add(999, {1, 1});  // not asked for
  std::vector<Id> users;
  for (Id u = 100; u < 160; ++u) users.push_back(u);
  users.push_back(5000);  // unknown
  std::map<Id, std::vector<ConnRef>> seen;
  EXPECT_TRUE(routes_->lookup_many(users, [&](Id u, ConnRef c) { seen[u].push_back(c); }));
  for (auto& [u, v] : seen) v = sorted(v);
  for (auto& [u, v] : expected) v = sorted(v);
  EXPECT_EQ(seen, expected);
  int calls = 0;
  EXPECT_TRUE(routes_->lookup_many({}, [&](Id, ConnRef) { ++calls; }));
  EXPECT_EQ(calls, 0);
}

TEST_P(RoutesContract, ConcurrentConnectsAndDisconnects) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 50; ++i) {
        ConnRef c{static_cast<std::uint32_t>(t), i};
        routes_->add(42, c);
        if (i % 2 == 1) routes_->remove(42, c);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(routes_->lookup(42).size(), 4u * 25u);
}

INSTANTIATE_TEST_SUITE_P(Memory, RoutesContract, ::testing::Values(Engine::memory), engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, RoutesContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RoutesContract, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- PresenceStore

// Over the routes of the same engine (it folds them): Memory (routes/MemoryPresence over
// MemoryRoutes), Redis, RedisCluster (RedisPresence beside RedisRoutes, one prefix).
class PresenceContract : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::memory) {
      routes_ = std::make_unique<MemoryRoutes>();
      presence_ = std::make_unique<MemoryPresence>(*routes_);
    } else {
      client_ = redis_client_for(GetParam());
      IMD_REQUIRE_REDIS(client_);
      const std::string prefix = testing::unique_prefix();
      routes_ =
          std::make_unique<RedisRoutes>(client_, RedisRoutesOptions{.prefix = prefix, .ttl = 60s});
      presence_ = std::make_unique<RedisPresence>(client_, RedisPresenceOptions{.prefix = prefix});
    }
  }
  PresenceFold fold(Id user, bool allow_offline = false) {
    auto f = presence_->fold(user, allow_offline);
    EXPECT_TRUE(f) << f.error().message;
    return f ? *f : PresenceFold{};
  }
  std::vector<PresenceStatus> statuses(std::vector<Id> users) {
    auto s = presence_->statuses(users);
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : std::vector<PresenceStatus>{};
  }

  std::shared_ptr<redis::RedisClient> client_;
  std::unique_ptr<Routes> routes_;
  std::unique_ptr<PresenceStore> presence_;
};

using enum PresenceStatus;

TEST_P(PresenceContract, DevicesFoldIntoOneStatusReportedOncePerChange) {
  EXPECT_EQ(fold(1).status, offline);
  EXPECT_FALSE(fold(1).changed);
  routes_->add(1, {0, 10});
  EXPECT_TRUE(fold(1).changed);   // online
  EXPECT_FALSE(fold(1).changed);  // told once
  ASSERT_TRUE(presence_->set_idle(1, {0, 10}, true));
  EXPECT_EQ(fold(1).status, away);
  routes_->add(1, {3, 11});  // another device on another node, active
  auto f = fold(1);
  EXPECT_EQ(f.status, online);
  EXPECT_TRUE(f.changed);
  ASSERT_TRUE(presence_->set_away(1, true));
  EXPECT_EQ(fold(1).status, away);
  ASSERT_TRUE(presence_->set_away(1, false));
  EXPECT_EQ(fold(1).status, online);
  // The active device goes: the idle one is left.
  routes_->remove(1, {3, 11});
  ASSERT_TRUE(presence_->forget(1, {3, 11}));
  EXPECT_EQ(fold(1).status, away);
  // The last one goes: offline is not recorded without allow_offline (the grace)...
  routes_->remove(1, {0, 10});
  ASSERT_TRUE(presence_->forget(1, {0, 10}));
  f = fold(1);
  EXPECT_EQ(f.status, offline);
  EXPECT_FALSE(f.changed);
  // ... so a reconnect within it is no change, and the state is back to what it was.
  routes_->add(1, {0, 12});
  EXPECT_EQ(fold(1).status, online);
  routes_->remove(1, {0, 12});
  // After it: offline, once.
  EXPECT_TRUE(fold(1, true).changed);
  EXPECT_FALSE(fold(1, true).changed);
}

TEST_P(PresenceContract, StatusesReadWithoutRecording) {
  routes_->add(5, {0, 1});
  routes_->add(6, {0, 2});
  ASSERT_TRUE(presence_->set_idle(6, {0, 2}, true));
  EXPECT_EQ(statuses({5, 6, 7}), (std::vector<PresenceStatus>{online, away, offline}));
  EXPECT_TRUE(statuses({}).empty());
  EXPECT_TRUE(fold(5).changed);  // the read recorded nothing
  // An idle mark of a connection without a route does not count.
  ASSERT_TRUE(presence_->set_idle(5, {9, 9}, true));
  EXPECT_EQ(statuses({5}), (std::vector<PresenceStatus>{online}));
}

TEST_P(PresenceContract, SubscriptionsAddAndRemoveWatchers) {
  auto watchers = [&](Id u) {
    auto w = presence_->subscribers(u);
    EXPECT_TRUE(w);
    auto v = w ? *w : std::vector<ConnRef>{};
    std::sort(v.begin(), v.end());
    return v;
  };
  const std::vector<Id> ab{20, 21}, b{21}, none{};
  ASSERT_TRUE(presence_->subscribe({0, 1}, ab, none));
  ASSERT_TRUE(presence_->subscribe({2, 7}, b, none));
  EXPECT_EQ(watchers(20), (std::vector<ConnRef>{{0, 1}}));
  EXPECT_EQ(watchers(21), (std::vector<ConnRef>{{0, 1}, {2, 7}}));
  ASSERT_TRUE(presence_->subscribe({0, 1}, none, ab));
  EXPECT_TRUE(watchers(20).empty());
  EXPECT_EQ(watchers(21), (std::vector<ConnRef>{{2, 7}}));
  EXPECT_TRUE(watchers(99).empty());
  ASSERT_TRUE(presence_->subscribe({2, 7}, none, none));  // nothing to do
}

INSTANTIATE_TEST_SUITE_P(Memory, PresenceContract, ::testing::Values(Engine::memory), engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, PresenceContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, PresenceContract, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- MemberCache

// A loader whose answers and pace the test controls: `values` by id (a missing id loads as
// an empty value), `unknown` ids load as not_found.
template <class V>
struct FakeLoader {
  std::mutex mu;
  std::condition_variable cv;
  std::map<Id, V> values;
  std::set<Id> unknown;
  std::atomic<int> loads{0};
  bool hold = false;  // loads wait while set
  bool fail = false;

  // Reads the "Store" first, then waits while held: a held load returns what was current
  // when it started, as a real query would.
  Result<V> load(Id id) {
    std::unique_lock lock(mu);
    auto it = values.find(id);
    V snapshot = it == values.end() ? V{} : it->second;
    ++loads;
    cv.wait(lock, [&] { return !hold; });
    if (fail) return make_error(Errc::unavailable, "store down");
    if (unknown.count(id)) return make_error(Errc::not_found, "unknown id");
    return snapshot;
  }
  void set(Id id, V v) {
    std::lock_guard lock(mu);
    values[id] = std::move(v);
  }
  void release() {
    {
      std::lock_guard lock(mu);
      hold = false;
    }
    cv.notify_all();
  }
};

// The fixture of the cache contracts: a Redis client for the Redis engines, and a key prefix
// that the caches of one test share, like processes that share one Redis.
class CacheContract : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() != Engine::memory) {
      client_ = redis_client_for(GetParam());
      IMD_REQUIRE_REDIS(client_);
    }
  }

  std::shared_ptr<redis::RedisClient> client_;
  std::string prefix_ = testing::unique_prefix();
};

// Steps shared by the cache contracts; `get(id)` reads through the cache under test and
// `invalidate(id)` is its invalidation.

// Eight concurrent misses of one key share one load, and each gets `expected`.
template <class V, class Get>
void expect_concurrent_misses_share_one_load(FakeLoader<V>& f, Id id, const V& expected, Get get) {
  f.hold = true;
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      if (auto r = get(id); r.ok() && **r == expected) ++ok;
    });
  }
  while (f.loads.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(50ms);  // let the others queue up
  f.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(f.loads.load(), 1);
}

// A load that read the "Store" before a change (then `changed`, and the invalidation that the
// services do after the Store write) must not be cached after it.
template <class V, class Get, class Invalidate>
void expect_a_change_during_a_load_not_cached(FakeLoader<V>& f, Id id, const V& changed, Get get,
                                              Invalidate invalidate) {
  f.hold = true;
  std::thread loader([&] { (void)get(id); });  // has read the old value, held
  while (f.loads.load() == 0) std::this_thread::yield();
  f.set(id, changed);
  invalidate(id);
  f.release();
  loader.join();
  auto after = get(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(**after, changed);  // the stale value was not kept
  EXPECT_EQ(f.loads.load(), 2);
}

struct FakeMembers : FakeLoader<std::vector<Id>> {
  FakeMembers() { values = {{7, {3, 1, 2}}, {8, {9}}}; }
};

class MemberCacheContract : public CacheContract {
 protected:
  std::unique_ptr<MemberCache> make(FakeMembers& f) {
    auto loader = [&f](Id c) { return f.load(c); };
    if (GetParam() == Engine::memory) return std::make_unique<MemoryMemberCache>(loader);
    return std::make_unique<RedisMemberCache>(client_, loader,
                                              RedisMemberCacheOptions{.prefix = prefix_});
  }
};

TEST_P(MemberCacheContract, LoadsOnceSortedThenHits) {
  FakeMembers f;
  auto cache = make(f);
  auto a = cache->members(7);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(**a, (std::vector<Id>{1, 2, 3}));
  auto b = cache->members(7);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(**b, (std::vector<Id>{1, 2, 3}));
  EXPECT_EQ(f.loads.load(), 1);
}

TEST_P(MemberCacheContract, ChannelsAreIndependent) {
  FakeMembers f;
  auto cache = make(f);
  EXPECT_EQ(**cache->members(7), (std::vector<Id>{1, 2, 3}));
  EXPECT_EQ(**cache->members(8), (std::vector<Id>{9}));
  cache->invalidate(8);
  EXPECT_EQ(**cache->members(7), (std::vector<Id>{1, 2, 3}));
  EXPECT_EQ(f.loads.load(), 2);
}

TEST_P(MemberCacheContract, InvalidateForcesAReload) {
  FakeMembers f;
  auto cache = make(f);
  ASSERT_TRUE(cache->members(7).ok());
  f.set(7, {1, 2, 3, 4});
  cache->invalidate(7);
  EXPECT_EQ((*cache->members(7))->size(), 4u);
  EXPECT_EQ(f.loads.load(), 2);
  cache->invalidate(12345);  // never cached: a no-op
}

TEST_P(MemberCacheContract, ConcurrentMissesShareOneLoad) {
  FakeMembers f;
  auto cache = make(f);
  expect_concurrent_misses_share_one_load(f, 7, std::vector<Id>{1, 2, 3},
                                          [&](Id c) { return cache->members(c); });
}

TEST_P(MemberCacheContract, AChangeDuringALoadIsNotCachedStale) {
  FakeMembers f;
  auto cache = make(f);
  expect_a_change_during_a_load_not_cached(
      f, 7, std::vector<Id>{1, 2, 3, 4}, [&](Id c) { return cache->members(c); },
      [&](Id c) { cache->invalidate(c); });
}

TEST_P(MemberCacheContract, FailuresAreReturnedAndNotCached) {
  FakeMembers f;
  f.fail = true;
  auto cache = make(f);
  auto r = cache->members(7);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  f.fail = false;
  EXPECT_TRUE(cache->members(7).ok());
  EXPECT_EQ(f.loads.load(), 2);
}

TEST_P(MemberCacheContract, LargeListsRoundTrip) {
  FakeMembers f;
  std::vector<Id> many;
  for (Id i = 0; i < 20000; ++i) many.push_back((i * 7919) % 100003 + (1ull << 60));
  f.set(9, many);
  auto cache = make(f);
  std::sort(many.begin(), many.end());
  EXPECT_EQ(**cache->members(9), many);
  EXPECT_EQ(**cache->members(9), many);
  EXPECT_EQ(f.loads.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Memory, MemberCacheContract, ::testing::Values(Engine::memory),
                         engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, MemberCacheContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, MemberCacheContract,
                         ::testing::Values(Engine::redis_cluster), engine_name);

// ---------------------------------------------------------------- UserCache

// Users 1..9 exist; 10 and up do not.
struct FakeMemberships : FakeLoader<Memberships> {
  FakeMemberships() {
    values = {{1, {{20, 10}, {300, 100}}}, {2, {{10}, {}}}};
    for (Id u = 10; u < 100; ++u) unknown.insert(u);
  }
};

class UserCacheContract : public CacheContract {
 protected:
  std::unique_ptr<UserCache> make(FakeMemberships& f) {
    auto loader = [&f](Id u) { return f.load(u); };
    if (GetParam() == Engine::memory) return std::make_unique<MemoryUserCache>(loader);
    return std::make_unique<RedisUserCache>(client_, loader,
                                            RedisUserCacheOptions{.prefix = prefix_});
  }
};

TEST_P(UserCacheContract, LoadsOnceSortedThenHits) {
  FakeMemberships f;
  auto cache = make(f);
  for (int i = 0; i < 3; ++i) {
    auto m = cache->memberships(1);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ((*m)->spaces, (std::vector<Id>{10, 20}));
    EXPECT_EQ((*m)->channels, (std::vector<Id>{100, 300}));
  }
  EXPECT_EQ(f.loads.load(), 1);
  EXPECT_EQ(**cache->memberships(2), (Memberships{{10}, {}}));  // spaces but no channels
  EXPECT_EQ(**cache->memberships(3), Memberships{});            // none at all
  EXPECT_EQ(f.loads.load(), 3);
}

TEST_P(UserCacheContract, InvalidateForcesAReloadOfThatUserOnly) {
  FakeMemberships f;
  auto cache = make(f);
  ASSERT_TRUE(cache->memberships(1).ok());
  ASSERT_TRUE(cache->memberships(2).ok());
  f.set(2, {{10, 11}, {110}});  // user 2 joined a space and a channel
  cache->invalidate(2);
  EXPECT_EQ(**cache->memberships(2), (Memberships{{10, 11}, {110}}));
  ASSERT_TRUE(cache->memberships(1).ok());
  EXPECT_EQ(f.loads.load(), 3);
  cache->invalidate(12345);  // never cached: a no-op
}

TEST_P(UserCacheContract, ConcurrentMissesShareOneLoad) {
  FakeMemberships f;
  auto cache = make(f);
  expect_concurrent_misses_share_one_load(f, 1, Memberships{{10, 20}, {100, 300}},
                                          [&](Id u) { return cache->memberships(u); });
}

TEST_P(UserCacheContract, AChangeDuringALoadIsNotCachedStale) {
  FakeMemberships f;  // user 2 joins a channel while a load is in flight
  auto cache = make(f);
  expect_a_change_during_a_load_not_cached(
      f, 2, Memberships{{10}, {100}}, [&](Id u) { return cache->memberships(u); },
      [&](Id u) { cache->invalidate(u); });
}

TEST_P(UserCacheContract, FailuresAndUnknownUsersAreErrors) {
  FakeMemberships f;
  f.fail = true;
  auto cache = make(f);
  auto r = cache->memberships(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  f.fail = false;
  EXPECT_TRUE(cache->memberships(1).ok());
  auto nobody = cache->memberships(77);
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.error().code, Errc::not_found);
  EXPECT_TRUE(cache->warm(1).ok());
  EXPECT_FALSE(cache->warm(77).ok());
}

TEST_P(UserCacheContract, LargeMembershipsRoundTrip) {
  FakeMemberships f;
  Memberships big;
  for (Id i = 0; i < 3000; ++i) big.spaces.push_back((1ull << 62) + i * 3);
  for (Id i = 0; i < 9000; ++i) big.channels.push_back(~0ull - i * 5);
  f.set(4, big);
  auto cache = make(f);
  std::sort(big.channels.begin(), big.channels.end());
  EXPECT_EQ(**cache->memberships(4), big);
  EXPECT_EQ(**cache->memberships(4), big);
  EXPECT_EQ(f.loads.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Memory, UserCacheContract, ::testing::Values(Engine::memory), engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, UserCacheContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, UserCacheContract, ::testing::Values(Engine::redis_cluster),
                         engine_name);

// ---------------------------------------------------------------- CursorCache

class CursorCacheContract : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::memory) {
      cache_ = std::make_unique<MemoryCursorCache>();
      return;
    }
    client_ = redis_client_for(GetParam());
    IMD_REQUIRE_REDIS(client_);
    cache_ = std::make_unique<RedisCursorCache>(
        client_, RedisCursorCacheOptions{.prefix = testing::unique_prefix()});
  }

  std::shared_ptr<redis::RedisClient> client_;
  std::unique_ptr<CursorCache> cache_;
};

// Forward-only: the invariant "never ahead of the Store" holds only if an older value written
// later (a slow flush) cannot move a cursor back, nor a larger one be lost.
TEST_P(CursorCacheContract, CursorsMoveForwardOnly) {
  const ConvKey ch = ConvKey::channel(100), dm = ConvKey::dm(1, 2);
  EXPECT_EQ(cache_->get(2, ch), 0u);  // nothing cached
  std::vector<DeliveryUpdate> first = {{2, ch, 5}, {2, dm, 3}, {3, ch, 1}};
  cache_->put(first);
  EXPECT_EQ(cache_->get(2, ch), 5u);
  EXPECT_EQ(cache_->get(2, dm), 3u);
  EXPECT_EQ(cache_->get(3, ch), 1u);
  EXPECT_EQ(cache_->get(1, dm), 0u);  // the other participant has their own cursor
  std::vector<DeliveryUpdate> older = {{2, ch, 4}, {2, dm, 7}, {2, ch, 2}};
  cache_->put(older);
  EXPECT_EQ(cache_->get(2, ch), 5u);
  EXPECT_EQ(cache_->get(2, dm), 7u);
  std::vector<ConvKey> convs = {dm, ConvKey::channel(999), ch};
  EXPECT_EQ(cache_->get_many(2, convs), (std::vector<std::uint64_t>{7, 0, 5}));
  EXPECT_TRUE(cache_->get_many(2, {}).empty());
}

TEST_P(CursorCacheContract, SeqsUseAll64BitsAndKindsAreApart) {
  std::vector<DeliveryUpdate> big = {{9, ConvKey::channel(1), ~0ull - 1},
                                     {9, ConvKey{ConvKind::dm, 1, 0}, 1}};
  cache_->put(big);
  EXPECT_EQ(cache_->get(9, ConvKey::channel(1)), ~0ull - 1);
  EXPECT_EQ(cache_->get(9, ConvKey{ConvKind::dm, 1, 0}), 1u);
  std::vector<DeliveryUpdate> top = {{9, ConvKey::channel(1), ~0ull}};
  cache_->put(top);
  EXPECT_EQ(cache_->get(9, ConvKey::channel(1)), ~0ull);
}

INSTANTIATE_TEST_SUITE_P(Memory, CursorCacheContract, ::testing::Values(Engine::memory),
                         engine_name);
INSTANTIATE_TEST_SUITE_P(Redis, CursorCacheContract, ::testing::Values(Engine::redis), engine_name);
INSTANTIATE_TEST_SUITE_P(RedisCluster, CursorCacheContract,
                         ::testing::Values(Engine::redis_cluster), engine_name);

}  // namespace
}  // namespace imd
