// Tests of the MySQL layer itself, against the MariaDB of the CTest fixture `mariadb`: the
// connection pool, reconnection, transaction retries, migrations, and that the store's
// statements are served by indexes. (What every Store must do is in
// tests/contract/store_contract_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <map>
#include <thread>

#include "store_mysql/mysql_migrations.hpp"
#include "store_mysql/mysql_store.hpp"
#include "store_mysql/mysql_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using testing::ScratchDatabase;

User user(Id id) {
  return User{.id = id,
              .name = "u" + std::to_string(id),
              .avatar = "",
              .phone = "+1555" + std::to_string(id),
              .created_at = 1};
}

NewMessage channel_msg(Id id, Id channel, Id from, std::string cid) {
  NewMessage n;
  n.msg = Message{.id = id,
                  .conv = ConvKey::channel(channel),
                  .from = from,
                  .type = "text",
                  .body = "hello",
                  .created_at = 1000 + static_cast<Millis>(id),
                  .cid = std::move(cid)};
  return n;
}

NewMessage dm_msg(Id id, Id from, Id to, std::string cid) {
  NewMessage n = channel_msg(id, 0, from, std::move(cid));
  n.msg.conv = ConvKey::dm(from, to);
  n.msg.to = to;
  return n;
}

class MysqlDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::mysql_test_config();
    if (!server) GTEST_SKIP() << testing::kMysqlSkipReason;
    scratch_ = std::make_unique<ScratchDatabase>(*server);
  }
  void TearDown() override { scratch_.reset(); }

  MysqlConfig config(int pool_size = 8) const {
    MysqlConfig c = scratch_->config();
    c.pool_size = pool_size;
    return c;
  }

  // A store with one user, one space and one channel (100) with the user as its member.
  static void seed(Store& store, Id users = 1) {
    for (Id u = 1; u <= users; ++u) ASSERT_TRUE(store.create_user(user(u), "h").ok());
    ASSERT_TRUE(store.create_space(Space{.id = 10, .name = "s", .avatar = "", .owner_id = 1}).ok());
    ASSERT_TRUE(store
                    .create_channel(Channel{
                        .id = 100, .space_id = 10, .name = "c", .avatar = "", .owner_id = 1})
                    .ok());
  }

  static unsigned long session_id(MysqlDatabase& db) {
    auto id =
        db.read([](MysqlConnection& c) -> Result<unsigned long> { return c.server_thread_id(); });
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : 0;
  }

  std::unique_ptr<ScratchDatabase> scratch_;
};

TEST_F(MysqlDbTest, MigrationsApplyOnceEvenWhenOpenedConcurrently) {
  constexpr int kOpeners = 4;
  std::atomic<int> applied{0}, failed{0};
  std::barrier start(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      try {
        MysqlDatabase db(config(1));
        applied += db.migrations_applied();
        EXPECT_EQ(db.schema_version(), mysql_migrations().back().version);
      } catch (const std::exception& e) {
        ++failed;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(applied.load(), static_cast<int>(mysql_migrations().size()));
  MysqlDatabase again(config(1));
  EXPECT_EQ(again.migrations_applied(), 0);
}

// Migration 11 (as the SQLite migration 14): an old-form phone (the digits without '+') is
// normalized unless another account holds the normalized form; other forms stay as typed.
TEST_F(MysqlDbTest, OldFormPhonesAreNormalizedWhereNoOtherAccountHoldsTheNumber) {
  const auto all = mysql_migrations();
  ASSERT_EQ(all.back().version, 11);
  {
    auto conn = MysqlConnection::open(config(1));
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    ASSERT_TRUE(apply_mysql_migrations(**conn, all.first(all.size() - 1), 30).ok());
    auto inserted = (*conn)->run(
        "INSERT INTO `user` (id, name, password, phone, created_at) VALUES"
        " (1, 'old', 'h', '15550001', 0), (2, 'pair+', 'h', '+15550002', 0),"
        " (3, 'pair', 'h', '15550002', 0), (4, 'zero', 'h', '015550004', 0),"
        " (5, 'short', 'h', '1555', 0)");
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  }
  auto db = std::make_shared<MysqlDatabase>(config(1));
  EXPECT_EQ(db->migrations_applied(), 1);
  MysqlStore store(db);
  const std::pair<const char*, Id> expected[] = {
      {"+15550001", 1}, {"+15550002", 2}, {"15550002", 3}, {"015550004", 4}, {"1555", 5}};
  for (const auto& [phone, id] : expected) {
    auto found = store.user_by_phone(phone);
    ASSERT_TRUE(found.ok()) << phone << ": " << found.error().message;
    EXPECT_EQ(found->user.id, id) << phone;
  }
  EXPECT_EQ(store.user_by_phone("15550001").error().code, Errc::not_found);
}

TEST_F(MysqlDbTest, TablesAreInnoDbWithUtf8mb4) {
  auto db = std::make_shared<MysqlDatabase>(config(1));
  auto rows = db->read([&](MysqlConnection& c) -> Result<std::map<std::string, std::string>> {
    auto s = c.run(
        "SELECT TABLE_NAME, CONCAT(ENGINE, ' ', TABLE_COLLATION) FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = DATABASE()");
    if (!s.ok()) return s.error();
    std::map<std::string, std::string> out;
    for (;;) {
      auto row = (*s)->fetch();
      if (!row.ok()) return row.error();
      if (!*row) return out;
      out[(*s)->column_text(0)] = (*s)->column_text(1);
    }
  });
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  for (const char* table :
       {"user", "refresh_token", "space", "space_user", "space_channel", "channel", "channel_user",
        "channel_message", "dm", "dm_user", "message", "message_cid"}) {
    ASSERT_TRUE(rows->contains(table)) << table;
    EXPECT_EQ(rows->at(table), "InnoDB utf8mb4_nopad_bin") << table;
  }
}

TEST_F(MysqlDbTest, AnUnreachableServerFailsTheOpenWithAClearMessage) {
  MysqlConfig c = config(1);
  c.port = 1;  // nothing listens there
  c.connect_timeout_s = 2;
  try {
    MysqlDatabase db(c);
    FAIL() << "opened a database on port 1";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("127.0.0.1:1"), std::string::npos) << what;
    EXPECT_EQ(what.find(c.password), std::string::npos) << "the password leaked: " << what;
  }
  MysqlConfig bad = config(1);
  bad.lock_wait_timeout_s = bad.read_timeout_s;
  EXPECT_THROW(MysqlDatabase{bad}, std::runtime_error);
}

TEST_F(MysqlDbTest, AnExhaustedPoolIsUnavailableAfterTheAcquireTimeout) {
  MysqlConfig c = config(1);
  c.acquire_timeout_ms = 200;
  MysqlDatabase db(c);
  const auto start = std::chrono::steady_clock::now();
  // The only connection is held by the outer call: the inner one cannot have one.
  auto outer = db.read([&](MysqlConnection&) -> Result<Errc> {
    auto inner = db.read([](MysqlConnection&) -> Result<int> { return 1; });
    if (inner.ok()) return Errc::internal;
    return inner.error().code;
  });
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(outer.ok());
  EXPECT_EQ(*outer, Errc::unavailable);
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 5s);
  EXPECT_TRUE(db.read([](MysqlConnection&) -> Result<int> { return 1; }).ok());
}

TEST_F(MysqlDbTest, ReconnectsWhenTheServerDropsAnIdleConnection) {
  auto db = std::make_shared<MysqlDatabase>(config(1));
  MysqlStore store(db);
  seed(store);
  // KILL closes the pooled session; the next read, then the next write, finds it gone,
  // drops it and runs again on a fresh connection.
  testing::mysql_admin(scratch_->server(), "KILL " + std::to_string(session_id(*db)));
  auto read = store.user_by_id(1);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(db->reconnects(), 1u);

  testing::mysql_admin(scratch_->server(), "KILL " + std::to_string(session_id(*db)));
  auto written = store.append_messages(std::vector<NewMessage>{channel_msg(1, 100, 1, "a")});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ((*written)[0]->msg.seq, 1u);
  EXPECT_EQ(db->reconnects(), 2u);
  EXPECT_EQ(store.channel_by_id(100)->last_seq, 1u);
}

TEST_F(MysqlDbTest, ALockWaitTimeoutRetriesTheWholeTransaction) {
  MysqlConfig c = config(2);
  c.lock_wait_timeout_s = 1;
  auto db = std::make_shared<MysqlDatabase>(c);
  MysqlStore store(db);
  seed(store);

  // Another session holds channel 100's row lock for 1.5 s: the batch's first attempt times
  // out after 1 s, a later one gets the lock.
  auto holder = MysqlConnection::open(scratch_->config());
  ASSERT_TRUE(holder.ok()) << holder.error().message;
  ASSERT_TRUE((*holder)->execute_text("START TRANSACTION").ok());
  auto locked = (*holder)->run("SELECT last_seq FROM channel WHERE id = ? FOR UPDATE", Id{100});
  ASSERT_TRUE(locked.ok()) << locked.error().message;
  std::thread release([&] {
    std::this_thread::sleep_for(1500ms);
    EXPECT_TRUE((*holder)->execute_text("COMMIT").ok());
  });
  auto r = store.append_messages(std::vector<NewMessage>{channel_msg(1, 100, 1, "a")});
  release.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0]->msg.seq, 1u);
  EXPECT_GE(db->transaction_retries(), 1u);
}

// Four stores on one database, as four consumer processes would be, each with its own pool,
// storing into one channel and one DM at once.
TEST_F(MysqlDbTest, SeveralStoresOnOneDatabaseKeepSeqDense) {
  constexpr int kStores = 4, kBatches = 20, kPerBatch = 16;
  std::vector<std::shared_ptr<MysqlDatabase>> dbs;
  std::vector<std::unique_ptr<MysqlStore>> stores;
  for (int i = 0; i < kStores; ++i) {
    dbs.push_back(std::make_shared<MysqlDatabase>(config(2)));
    stores.push_back(std::make_unique<MysqlStore>(dbs.back()));
  }
  seed(*stores[0], 2);
  std::atomic<int> failures{0};
  std::barrier start(kStores);
  std::vector<std::thread> threads;
  for (int t = 0; t < kStores; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int b = 0; b < kBatches; ++b) {
        std::vector<NewMessage> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          const Id id = 1 + static_cast<Id>((t * kBatches + b) * kPerBatch + i);
          batch.push_back(i % 4 == 3 ? dm_msg(id, 1 + t % 2, 2 - t % 2, "c" + std::to_string(id))
                                     : channel_msg(id, 100, 1, "c" + std::to_string(id)));
        }
        auto r = stores[t]->append_messages(batch);
        if (!r.ok()) {
          ++failures;
          ADD_FAILURE() << r.error().message;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto check = [&](const ConvKey& conv, std::uint64_t n) {
    std::uint64_t expect = 0;
    for (std::uint64_t cursor = 0; cursor < n;) {
      HistoryQuery q;
      q.after_seq = cursor;
      q.limit = 100;
      auto page = stores[0]->messages(conv, q);
      ASSERT_TRUE(page.ok());
      ASSERT_FALSE(page->empty());
      for (const Message& m : *page) ASSERT_EQ(m.seq, ++expect);
      cursor = page->back().seq;
    }
  };
  constexpr std::uint64_t kDm = kStores * kBatches * kPerBatch / 4;
  constexpr std::uint64_t kChannel = kStores * kBatches * kPerBatch - kDm;
  EXPECT_EQ(stores[1]->channel_by_id(100)->last_seq, kChannel);
  check(ConvKey::channel(100), kChannel);
  check(ConvKey::dm(1, 2), kDm);
  std::uint64_t retries = 0;
  for (auto& db : dbs) retries += db->transaction_retries();
  std::printf("[ contention ] %d stores, %d batches each: %llu transaction retries\n", kStores,
              kBatches, static_cast<unsigned long long>(retries));
}

// Copies of one send racing each other into one channel: the channel's row lock is taken
// before the transaction's snapshot, so the losers find the winner's message as a duplicate
// without a failed insert and a re-run.
TEST_F(MysqlDbTest, RacingCopiesOfASendWaitForTheLockInsteadOfRetrying) {
  auto db = std::make_shared<MysqlDatabase>(config(4));
  MysqlStore store(db);
  seed(store);
  constexpr int kThreads = 4, kSends = 40;
  std::atomic<int> originals{0}, failures{0};
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int s = 0; s < kSends; ++s) {
        const Id id = 1 + static_cast<Id>(s * kThreads + t);
        auto r = store.append_messages(
            std::vector<NewMessage>{channel_msg(id, 100, 1, "send" + std::to_string(s))});
        if (!r.ok() || !(*r)[0].ok()) {
          ++failures;
        } else if (!(*r)[0]->duplicate) {
          ++originals;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(originals.load(), kSends);
  EXPECT_EQ(store.channel_by_id(100)->last_seq, static_cast<std::uint64_t>(kSends));
  EXPECT_EQ(db->transaction_retries(), 0u);
}

// The store's reads are served by indexes: running them does not scan a table, join without
// an index, or sort (session status counters of the one pooled connection, before and after).
class IndexUseTest : public MysqlDbTest {
 protected:
  struct Counters {
    std::int64_t scans = 0, full_joins = 0, sorted_rows = 0, rnd_next = 0;
  };

  Counters counters(MysqlDatabase& db) {
    auto r = db.read([](MysqlConnection& c) -> Result<Counters> {
      auto s = c.run(
          "SHOW SESSION STATUS WHERE Variable_name IN"
          " ('Select_scan', 'Select_full_join', 'Sort_rows', 'Handler_read_rnd_next')");
      if (!s.ok()) return s.error();
      Counters out;
      for (;;) {
        auto row = (*s)->fetch();
        if (!row.ok()) return row.error();
        if (!*row) return out;
        const std::string name = (*s)->column_text(0);
        const std::int64_t value = std::stoll((*s)->column_text(1));
        if (name == "Select_scan") out.scans = value;
        if (name == "Select_full_join") out.full_joins = value;
        if (name == "Sort_rows") out.sorted_rows = value;
        if (name == "Handler_read_rnd_next") out.rnd_next = value;
      }
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : Counters{};
  }

  // The counters' change over fn, less what reading them costs.
  template <class F>
  Counters delta(MysqlDatabase& db, F&& fn) {
    const Counters a = counters(db);
    const Counters b = counters(db);
    fn();
    const Counters c = counters(db);
    return Counters{(c.scans - b.scans) - (b.scans - a.scans),
                    (c.full_joins - b.full_joins) - (b.full_joins - a.full_joins),
                    (c.sorted_rows - b.sorted_rows) - (b.sorted_rows - a.sorted_rows),
                    (c.rnd_next - b.rnd_next) - (b.rnd_next - a.rnd_next)};
  }
};

TEST_F(IndexUseTest, ReadsUseIndexesAndNeverSort) {
  auto db = std::make_shared<MysqlDatabase>(config(1));
  MysqlStore store(db);
  // Enough rows that a scan costs more than an index lookup (on a table of two rows the
  // optimizer rightly scans): 60 users, 30 spaces of 4 channels, each user in 2 spaces and
  // half of their channels, 1000 messages in channels and DMs.
  constexpr Id kUsers = 60, kSpaces = 30;
  for (Id u = 1; u <= kUsers; ++u) ASSERT_TRUE(store.create_user(user(u), "h").ok());
  auto channel_of = [](Id space, Id k) { return space * 10 + k; };
  for (Id sp = 1; sp <= kSpaces; ++sp) {
    ASSERT_TRUE(
        store.create_space(Space{.id = sp, .name = "s", .avatar = "", .owner_id = sp}).ok());
    for (Id k = 1; k <= 4; ++k) {
      ASSERT_TRUE(store
                      .create_channel(Channel{.id = channel_of(sp, k),
                                              .space_id = sp,
                                              .name = "c",
                                              .avatar = "",
                                              .owner_id = sp})
                      .ok());
    }
  }
  for (Id u = 1; u <= kUsers; ++u) {
    for (Id sp : {u % kSpaces + 1, (u + 7) % kSpaces + 1}) {
      (void)store.add_space_member(sp, u, 1);
      for (Id k = 1; k <= 4; ++k) {
        if ((u + k) % 2 == 0) {
          ASSERT_TRUE(store.add_channel_member(channel_of(sp, k), u, 1).ok());
        }
      }
    }
  }
  const Id busy = channel_of(2, 1);  // members: users 1 and 31
  Id id = 1;
  for (int b = 0; b < 10; ++b) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < 100; ++i, ++id) {
      const Id from = 1 + id % kUsers;
      batch.push_back(i % 3 == 0
                          ? dm_msg(id, from, 1 + (from % kUsers), "k" + std::to_string(id))
                          : channel_msg(id, i % 3 == 1 ? busy : channel_of(1 + id % kSpaces, 1),
                                        from, "k" + std::to_string(id)));
    }
    ASSERT_TRUE(store.append_messages(batch).ok());
  }
  ASSERT_TRUE(store.save_refresh_token({"tok", 3, 1'000'000}).ok());
  // Sessions: four a user, one of them ended.
  for (Id u = 1; u <= kUsers; ++u) {
    for (Id k = 0; k < 4; ++k) {
      const Millis at = static_cast<Millis>(u * 10 + k);
      ASSERT_TRUE(store
                      .create_session(LoginSession{.id = u * 10 + k,
                                                   .user_id = u,
                                                   .created_at = at,
                                                   .last_used_at = at,
                                                   .expires_at = 1'000'000},
                                      10)
                      .ok());
    }
    ASSERT_TRUE(store.end_session(u, u * 10, 100'000 + static_cast<Millis>(u)).ok());
  }
  ASSERT_TRUE(store.advance_read(1, ConvKey::channel(busy), 5).ok());
  ASSERT_TRUE(db->read([](MysqlConnection& c) -> Result<int> {
                  IMD_TRY(c.execute_text(
                      "ANALYZE TABLE `user`, space, channel, space_channel, space_user,"
                      " channel_user, channel_message, message, dm, dm_user, message_cid,"
                      " login_session"));
                  return 0;
                }).ok());

  HistoryQuery page;
  page.limit = 20;
  HistoryQuery older = page, newer = page;
  older.before_seq = 300;
  newer.after_seq = 100;
  const std::map<std::string, std::function<void()>> reads = {
      {"user_by_phone", [&] { ASSERT_TRUE(store.user_by_phone("+15557").ok()); }},
      {"user_by_id", [&] { ASSERT_TRUE(store.user_by_id(7).ok()); }},
      {"users_by_name", [&] { ASSERT_EQ(store.users_by_name("U7", 10)->size(), 1u); }},
      {"spaces_of_user", [&] { ASSERT_EQ(store.spaces_of_user(40, 0, 100)->size(), 2u); }},
      {"space_members", [&] { ASSERT_FALSE(store.space_members(2, 0, 10)->empty()); }},
      {"channel_members", [&] { ASSERT_FALSE(store.channel_members(busy, 0, 10)->empty()); }},
      {"channel_member_ids", [&] { ASSERT_FALSE(store.channel_member_ids(busy)->empty()); }},
      {"channels_of_space", [&] { ASSERT_EQ(store.channels_of_space(7, 0, 100)->size(), 4u); }},
      {"channel_by_id", [&] { ASSERT_TRUE(store.channel_by_id(busy).ok()); }},
      {"is_channel_member", [&] { ASSERT_TRUE(*store.is_channel_member(busy, 1)); }},
      {"is_space_member", [&] { ASSERT_TRUE(*store.is_space_member(2, 1)); }},
      {"history newest",
       [&] { ASSERT_EQ(store.messages(ConvKey::channel(busy), page)->size(), 20u); }},
      {"history before",
       [&] { ASSERT_EQ(store.messages(ConvKey::channel(busy), older)->size(), 20u); }},
      {"history after",
       [&] { ASSERT_EQ(store.messages(ConvKey::channel(busy), newer)->size(), 20u); }},
      {"dm history", [&] { ASSERT_FALSE(store.messages(ConvKey::dm(2, 3), page)->empty()); }},
      {"conversations", [&] { ASSERT_GE(store.conversations(1)->size(), 3u); }},
      {"advance_read", [&] { ASSERT_TRUE(store.advance_read(1, ConvKey::channel(busy), 9).ok()); }},
      {"advance_delivery",
       [&] { ASSERT_TRUE(store.advance_delivery(1, ConvKey::channel(busy), 9).ok()); }},
      {"take_refresh_token", [&] { ASSERT_TRUE(store.take_refresh_token("tok", 1, 1).ok()); }},
      {"sessions_of", [&] { ASSERT_EQ(store.sessions_of(7, 1000, 32)->size(), 3u); }},
      // A poll reads the few sessions ended since its last look.
      {"sessions_ended", [&] { ASSERT_EQ(store.sessions_ended(100'055, 1000)->size(), 6u); }},
      {"touch_session", [&] { ASSERT_TRUE(store.touch_session(71, 2000, 1'000'000, "").ok()); }},
  };
  // The instrument works: a filter no index serves shows up as a scan.
  const Counters unindexed = delta(*db, [&] {
    ASSERT_TRUE(db->read([](MysqlConnection& c) -> Result<bool> {
                    auto s = c.run("SELECT 1 FROM channel_message WHERE body = ?", "none");
                    if (!s.ok()) return s.error();
                    return (*s)->fetch();
                  }).ok());
  });
  EXPECT_GT(unindexed.scans, 0);
  EXPECT_GT(unindexed.rnd_next, 0);
  for (const auto& [name, read] : reads) {
    const Counters d = delta(*db, read);
    EXPECT_EQ(d.scans, 0) << name << ": a table scan";
    EXPECT_EQ(d.full_joins, 0) << name << ": a join without an index";
    EXPECT_EQ(d.sorted_rows, 0) << name << ": a sort";
    EXPECT_EQ(d.rnd_next, 0) << name << ": rows read by a scan";
  }
  // A batch reads its small derived tables (the multi-row updates) by scanning them, but joins
  // every real table through a key, and sorts nothing.
  const Counters append = delta(*db, [&] {
    std::vector<NewMessage> batch;
    for (int i = 0; i < 64; ++i, ++id) {
      const Id from = 1 + id % kUsers;
      batch.push_back(i % 2 ? channel_msg(id, busy, from, "z" + std::to_string(id))
                            : dm_msg(id, from, 1 + (from % kUsers), ""));
    }
    ASSERT_TRUE(store.append_messages(batch).ok());
  });
  EXPECT_EQ(append.full_joins, 0);
  EXPECT_EQ(append.sorted_rows, 0);
}

}  // namespace
}  // namespace imd
