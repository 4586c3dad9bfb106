#include "store/sqlite_db.hpp"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <utility>

#include "store/sqlite_migrations.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::open_db;
using testing::TempDir;

Result<std::string> pragma_text(SqliteConnection& c, std::string_view sql) {
  auto s = c.prepare(sql);
  if (!s.ok()) return s.error();
  auto row = s->step();
  if (!row.ok()) return row.error();
  if (!*row) return make_error(Errc::not_found, "no row");
  return s->column_text(0);
}

Result<std::int64_t> count_rows(SqliteConnection& c, std::string_view sql) {
  auto s = c.prepare(sql);
  if (!s.ok()) return s.error();
  auto row = s->step();
  if (!row.ok()) return row.error();
  return s->column_int64(0);
}

TEST(SqliteDatabase, OpensInWalModeWithForeignKeysAndMigrations) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  EXPECT_EQ(db->migrations_applied(), static_cast<int>(sqlite_migrations().size()));
  EXPECT_EQ(db->schema_version(), sqlite_migrations().back().version);

  auto mode = db->read([](SqliteConnection& c) { return pragma_text(c, "PRAGMA journal_mode"); });
  ASSERT_TRUE(mode.ok()) << mode.error().message;
  EXPECT_EQ(*mode, "wal");
  auto fk = db->write([](SqliteConnection& c) { return pragma_text(c, "PRAGMA foreign_keys"); });
  ASSERT_TRUE(fk.ok());
  EXPECT_EQ(*fk, "1");
  auto sync = db->write([](SqliteConnection& c) { return pragma_text(c, "PRAGMA synchronous"); });
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(*sync, "1");  // NORMAL
}

TEST(SqliteDatabase, ReopeningAnUpToDateDatabaseAppliesNothing) {
  TempDir dir;
  { auto db = open_db(dir.file("imd.db")); }
  auto db = open_db(dir.file("imd.db"));
  EXPECT_EQ(db->migrations_applied(), 0);
  EXPECT_EQ(db->schema_version(), sqlite_migrations().back().version);
  auto rows = db->read(
      [](SqliteConnection& c) { return count_rows(c, "SELECT COUNT(*) FROM schema_version"); });
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, static_cast<std::int64_t>(sqlite_migrations().size()));
}

TEST(SqliteMigrations, EachAppliesOnceInItsOwnTransaction) {
  TempDir dir;
  SqliteConnection conn(dir.file("m.db"), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
  const SqliteMigration two[] = {{1, "CREATE TABLE t1(x);"}, {2, "CREATE TABLE t2(x);"}};
  auto first = apply_sqlite_migrations(conn, two);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, 2);
  auto again = apply_sqlite_migrations(conn, two);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);

  // A failing migration leaves no trace (its CREATE TABLE is rolled back with it) and the
  // version stays where it was; the earlier ones stay applied.
  const SqliteMigration broken[] = {
      {1, "CREATE TABLE t1(x);"},
      {2, "CREATE TABLE t2(x);"},
      {3, "CREATE TABLE t3(x); INSERT INTO no_such_table VALUES (1);"}};
  auto failed = apply_sqlite_migrations(conn, broken);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("version 3"), std::string::npos);
  auto version = sqlite_schema_version(conn);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 2);
  auto t3 = count_rows(conn, "SELECT COUNT(*) FROM sqlite_master WHERE name = 't3'");
  ASSERT_TRUE(t3.ok());
  EXPECT_EQ(*t3, 0);

  const SqliteMigration unordered[] = {{2, "SELECT 1;"}, {1, "SELECT 1;"}};
  auto bad = apply_sqlite_migrations(conn, unordered);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

// Version 14: an old-form phone (the digits without '+') is normalized unless another account
// holds the normalized form (a pair from before stays as it is); other forms stay as typed.
TEST(SqliteMigrations, OldFormPhonesAreNormalizedWhereNoOtherAccountHoldsTheNumber) {
  TempDir dir;
  SqliteConnection conn(dir.file("p.db"), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
  const auto all = sqlite_migrations().first(14);
  ASSERT_EQ(all.back().version, 14);
  ASSERT_TRUE(apply_sqlite_migrations(conn, all.first(all.size() - 1)).ok());
  auto inserted = conn.exec(R"sql(INSERT INTO "user"(id, name, password, phone, created_at) VALUES
    (1, 'old', 'h', '15550001', 0), (2, 'pair+', 'h', '+15550002', 0),
    (3, 'pair', 'h', '15550002', 0), (4, 'zero', 'h', '015550004', 0),
    (5, 'short', 'h', '1555', 0), (6, 'new', 'h', '+15550006', 0), (7, 'none', 'h', NULL, 0))sql");
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  auto applied = apply_sqlite_migrations(conn, all);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(*applied, 1);
  const std::pair<int, const char*> expected[] = {{1, "'+15550001'"}, {2, "'+15550002'"},
                                                  {3, "'15550002'"},  {4, "'015550004'"},
                                                  {5, "'1555'"},      {6, "'+15550006'"}};
  for (const auto& [id, phone] : expected) {
    auto n = count_rows(conn, "SELECT COUNT(*) FROM \"user\" WHERE id = " + std::to_string(id) +
                                  " AND phone = " + phone);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 1) << id << " " << phone;
  }
  EXPECT_EQ(*count_rows(conn, "SELECT COUNT(*) FROM \"user\" WHERE id = 7 AND phone IS NULL"), 1);
}

TEST(SqliteDatabase, OpenFailuresThrowWithTheReason) {
  TempDir dir;
  try {
    open_db(dir.file("no/such/dir/imd.db"));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/imd.db"), std::string::npos) << e.what();
  }
  SqliteConfig bad{.path = dir.file("x.db"), .synchronous = "SOMETIMES"};
  EXPECT_THROW(SqliteDatabase{bad}, std::runtime_error);
  EXPECT_THROW(SqliteDatabase{SqliteConfig{}}, std::runtime_error);
}

TEST(SqliteDatabase, WriteRollsBackWhenTheCallbackFails) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  auto r = db->write([](SqliteConnection& c) -> Result<void> {
    IMD_TRY(c.exec("INSERT INTO dm(user_a, user_b, created_at) VALUES (1, 2, 0)"));
    return make_error(Errc::invalid_argument, "changed my mind");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  auto rows =
      db->read([](SqliteConnection& c) { return count_rows(c, "SELECT COUNT(*) FROM dm"); });
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, 0);
}

TEST(SqliteDatabase, ReadersAreReadOnly) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  auto r = db->read([](SqliteConnection& c) {
    return c.exec("INSERT INTO dm(user_a, user_b, created_at) VALUES (1, 2, 0)");
  });
  EXPECT_FALSE(r.ok());
}

TEST(SqliteDatabase, ConstraintErrorsMapToTheErrorModel) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  auto insert = [&](std::string_view sql) {
    return db->write([&](SqliteConnection& c) { return c.exec(sql); });
  };
  ASSERT_TRUE(insert("INSERT INTO dm(user_a, user_b, created_at) VALUES (1, 2, 0)").ok());
  auto dup = insert("INSERT INTO dm(user_a, user_b, created_at) VALUES (1, 2, 0)");
  EXPECT_EQ(dup.error().code, Errc::conflict);
  auto fk = insert("INSERT INTO space_user(space_id, user_id, created_at) VALUES (9, 9, 0)");
  EXPECT_EQ(fk.error().code, Errc::not_found);
  auto check = insert("INSERT INTO dm(user_a, user_b, created_at) VALUES (3, 2, 0)");
  EXPECT_EQ(check.error().code, Errc::invalid_argument);
}

TEST(SqliteDatabase, AReaderWaitsAtMostTheBusyTimeout) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"), /*readers=*/1, /*busy_timeout_ms=*/100);
  std::promise<void> holding, release;
  auto held = std::async(std::launch::async, [&] {
    return db->read([&](SqliteConnection&) -> Result<void> {
      holding.set_value();
      release.get_future().wait();
      return {};
    });
  });
  holding.get_future().wait();
  auto r = db->read([](SqliteConnection&) -> Result<void> { return {}; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  release.set_value();
  EXPECT_TRUE(held.get().ok());
  EXPECT_TRUE(db->read([](SqliteConnection&) -> Result<void> { return {}; }).ok());
}

TEST(SqliteDatabase, StatementCacheHandsOutACopyWhenTheCachedOneIsBusy) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  auto r = db->read([](SqliteConnection& c) -> Result<std::int64_t> {
    constexpr std::string_view kCte =
        "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 3)"
        " SELECT v FROM n";
    auto outer = c.prepare(kCte);
    if (!outer.ok()) return outer.error();
    std::int64_t sum = 0;
    for (;;) {
      auto row = outer->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      auto inner = c.prepare(kCte);  // same text while the cached statement is mid-scan
      if (!inner.ok()) return inner.error();
      for (;;) {
        auto r2 = inner->step();
        if (!r2.ok()) return r2.error();
        if (!*r2) break;
        sum += outer->column_int64(0) * inner->column_int64(0);
      }
    }
    return sum;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 36);  // (1+2+3)^2
}

TEST(SqliteDatabase, InMemoryDatabaseReadsThroughTheWriter) {
  auto db = std::make_shared<SqliteDatabase>(SqliteConfig{.path = ":memory:"});
  ASSERT_TRUE(db->write([](SqliteConnection& c) {
                  return c.exec("INSERT INTO dm(user_a, user_b, created_at) VALUES (1, 2, 0)");
                }).ok());
  auto rows =
      db->read([](SqliteConnection& c) { return count_rows(c, "SELECT COUNT(*) FROM dm"); });
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, 1);
}

TEST(SqliteIds, RoundTripAndBounds) {
  constexpr std::uint64_t kBig = (1ull << 63) - 5;
  EXPECT_EQ(from_db(to_db(kBig)), kBig);
  EXPECT_EQ(from_db(to_db(~0ull)), ~0ull);
  EXPECT_EQ(to_db_bound(~0ull), INT64_MAX);
  EXPECT_EQ(to_db_bound(7), 7);
}

}  // namespace
}  // namespace imd
