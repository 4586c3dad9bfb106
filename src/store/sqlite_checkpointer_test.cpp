// The WAL stays bounded while a server writes and reads: checkpoints copy frames into the
// database file, the log starts over, and a reader that holds an old snapshot shows up as a
// stall instead of silently growing the log.
#include "store/sqlite_checkpointer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "store/sqlite_db.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr std::uint64_t kMiB = 1 << 20;

std::shared_ptr<SqliteDatabase> open_with_checkpoints(const std::string& path,
                                                      std::uint64_t restart_bytes,
                                                      int stall_warn_ms = 30000) {
  auto db =
      std::make_shared<SqliteDatabase>(SqliteConfig{.path = path,
                                                    .read_connections = 2,
                                                    .checkpoint_interval_ms = 20,
                                                    .checkpoint_restart_bytes = restart_bytes,
                                                    .checkpoint_stall_warn_ms = stall_warn_ms});
  auto made = db->write([](SqliteConnection& c) {
    return c.exec_script("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  });
  EXPECT_TRUE(made.ok()) << made.error().message;
  return db;
}

// `rows` rows of `bytes` bytes each, in one transaction.
Result<void> insert(SqliteDatabase& db, int rows, std::size_t bytes) {
  return db.write([&](SqliteConnection& c) -> Result<void> {
    const std::string body(bytes, 'x');
    for (int i = 0; i < rows; ++i) {
      auto s = c.prepare("INSERT INTO note(body) VALUES (?1)");
      if (!s.ok()) return s.error();
      if (auto r = s->bind_all(body).run(); !r.ok()) return r;
    }
    return {};
  });
}

Result<std::int64_t> newest_id(SqliteConnection& c) {
  auto s = c.prepare("SELECT coalesce(max(id), 0) FROM note");
  if (!s.ok()) return s.error();
  auto row = s->step();
  if (!row.ok()) return row.error();
  return s->column_int64(0);
}

// Polls (bounded) until pred(status) holds; returns the last status.
template <class Pred>
WalStatus wait_for(SqliteDatabase& db, Pred pred, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  WalStatus s = db.checkpoint_now();
  while (!pred(s) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
    s = db.checkpoint_now();
  }
  return s;
}

TEST(SqliteCheckpointer, OpensTheWalItselfAndCopiesCommittedFrames) {
  TempDir dir;
  auto db = open_with_checkpoints(dir.file("imd.db"), 32 * kMiB);
  ASSERT_TRUE(insert(*db, 200, 1000).ok());
  // A checkpointer connection that never read anything answers log = -1 and copies nothing.
  WalStatus s = wait_for(
      *db, [](const WalStatus& w) { return w.log_frames > 0 && w.copied_frames == w.log_frames; });
  EXPECT_TRUE(s.running);
  EXPECT_GT(s.log_frames, 0);
  EXPECT_EQ(s.copied_frames, s.log_frames);
  EXPECT_EQ(s.failures, 0u);
  EXPECT_GT(s.db_bytes, 200u * 1000u);  // the rows are in the database file, not only the WAL
}

// The commits' WAL bytes are counted across the log's restarts: 100 transactions of 40 rows
// of 1,000 bytes each write at least those 4 MB (in whole pages), however often the log
// started over meanwhile (1 MiB restart: several times).
TEST(SqliteCheckpointer, CountsTheWalBytesEveryCommitWrote) {
  TempDir dir;
  auto db = open_with_checkpoints(dir.file("imd.db"), 1 * kMiB);
  const std::uint64_t before = db->wal_status().written_bytes;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(insert(*db, 40, 1000).ok());
  const WalStatus s = db->wal_status();
  EXPECT_GE(s.written_bytes - before, 100u * 40u * 1000u);
  // 40 rows of 1,000 bytes fill 10-11 pages of 4 KiB: with the b-tree's interior page and
  // the header page, about 13 frames a commit, not 26.
  EXPECT_LT(s.written_bytes - before, 100u * 26u * (4096u + 24u));
  EXPECT_GT(s.checkpoints + s.writer_checkpoints, 0u);
}

TEST(SqliteCheckpointer, TheWalStaysBoundedUnderSustainedWritesWithAReaderActive) {
  TempDir dir;
  auto db = open_with_checkpoints(dir.file("imd.db"), 1 * kMiB);
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto r = db->read([](SqliteConnection& c) { return newest_id(c); });
      if (r.ok()) reads.fetch_add(1);
    }
  });
  // 24 MB of rows in 600 transactions, about 40 MB/s (unpaced, the page cache takes ~5 MB
  // per 20 ms checkpoint interval here, which says nothing about the bound).
  std::uint64_t max_wal = 0;
  for (int t = 0; t < 600; ++t) {
    auto r = insert(*db, 40, 1000);
    ASSERT_TRUE(r.ok()) << r.error().message;
    max_wal = std::max(max_wal, db->wal_status().wal_bytes);
    std::this_thread::sleep_for(1ms);
  }
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);

  WalStatus s = wait_for(*db, [](const WalStatus& w) { return w.copied_frames == w.log_frames; });
  // Before the fix every byte stayed in the WAL (24 MB+) and the database file at 4 KiB.
  EXPECT_LT(max_wal, 8 * kMiB) << "the WAL grew instead of starting over";
  EXPECT_GT(s.writer_checkpoints, 0u) << "the writer was never asked to help";
  EXPECT_EQ(s.copied_frames, s.log_frames);
  EXPECT_GT(s.db_bytes, 24u * 1000u * 1000u);
  EXPECT_LT(s.db_bytes, 40u * 1000u * 1000u);  // roughly the bytes stored
  EXPECT_EQ(s.failures, 0u);
}

TEST(SqliteCheckpointer, AReaderHoldingAnOldSnapshotShowsAsAStallUntilItEnds) {
  TempDir dir;
  auto db = open_with_checkpoints(dir.file("imd.db"), 32 * kMiB, /*stall_warn_ms=*/50);
  ASSERT_TRUE(insert(*db, 10, 100).ok());
  std::promise<void> snapshot_taken, release;
  std::thread reader([&] {
    auto r = db->read([&](SqliteConnection& c) {
      auto id = newest_id(c);  // the snapshot starts here
      snapshot_taken.set_value();
      release.get_future().wait();
      return id;
    });
    EXPECT_TRUE(r.ok());
  });
  snapshot_taken.get_future().wait();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(insert(*db, 20, 1000).ok());

  WalStatus stalled = wait_for(*db, [](const WalStatus& w) { return w.stalled_ms >= 100; });
  EXPECT_GE(stalled.stalled_ms, 100);
  EXPECT_LT(stalled.copied_frames, stalled.log_frames);

  release.set_value();
  reader.join();
  WalStatus moving = wait_for(
      *db, [](const WalStatus& w) { return w.stalled_ms == 0 && w.copied_frames == w.log_frames; });
  EXPECT_EQ(moving.stalled_ms, 0);
  EXPECT_EQ(moving.copied_frames, moving.log_frames);
}

TEST(SqliteCheckpointer, AnInMemoryDatabaseHasNone) {
  SqliteDatabase db(SqliteConfig{.path = ":memory:"});
  EXPECT_FALSE(db.wal_status().running);
  EXPECT_FALSE(db.checkpoint_now().running);
}

}  // namespace
}  // namespace imd
