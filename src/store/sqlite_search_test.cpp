// SqliteSearch's own behaviour beyond the Search contract
// (tests/contract/search_contract_test.cpp): the back-fill of history stored before the index
// existed, its resumption after a restart, the rebuild after search was disabled, and the query
// time budget.
#include "store/sqlite_search.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::channel_msg;
using testing::dm_msg;

constexpr Id kAlice = 1, kBob = 2;

class SqliteSearchTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    search_.reset();
    store_.reset();
    db_.reset();
    db_ = testing::open_db(dir_.file("imd.db"));
    store_ = std::make_unique<SqliteStore>(db_);
  }
  void seed_users() {
    ASSERT_TRUE(store_->create_user(testing::make_user(kAlice, "alice"), "h").ok());
    ASSERT_TRUE(store_->create_user(testing::make_user(kBob, "bob"), "h").ok());
  }
  // `n` DMs from Alice to Bob with ids from `first`, in one batch.
  void store_dms(Id first, int n, const std::string& body) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) {
      Id id = first + static_cast<Id>(i);
      batch.push_back(dm_msg(id, kAlice, kBob, "c" + std::to_string(id), body));
    }
    auto r = store_->append_messages(batch);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  // Alice edits DM 100 to `body` and deletes DM 101, in one batch.
  void edit_100_and_erase_101(const std::string& body) {
    NewMessage edit;
    edit.msg.id = 100;
    edit.msg.conv = ConvKey::dm(kAlice, kBob);
    edit.msg.from = kAlice;
    edit.msg.body = body;
    edit.change = Change::edit;
    edit.change_id = 9001;
    NewMessage erase = edit;
    erase.msg.id = 101;
    erase.change = Change::erase;
    erase.change_id = 9002;
    ASSERT_TRUE(store_->change_messages(std::vector<NewMessage>{edit, erase}).ok());
  }
  void enable(SqliteSearchOptions o = {}) { search_ = std::make_unique<SqliteSearch>(db_, o); }
  std::size_t count(const std::string& term) {
    SearchQuery q;
    q.terms = {term};
    q.limit = 1000;
    auto r = search_->search(kBob, q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->hits.size() : 0;
  }
  int drain() {
    int steps = 0;
    for (;;) {
      auto more = search_->backfill_step();
      EXPECT_TRUE(more.ok()) << more.error().message;
      if (!more.ok() || !*more) return steps;
      ++steps;
    }
  }

  // The one number `sql` answers on `db`.
  static std::int64_t number(SqliteDatabase& db, const char* sql) {
    auto n = db.read([&](SqliteConnection& c) -> Result<std::int64_t> {
      auto s = c.prepare(sql);
      if (!s.ok()) return s.error();
      auto row = s->step();
      if (!row.ok()) return row.error();
      return s->column_int64(0);
    });
    EXPECT_TRUE(n.ok()) << n.error().message;
    return n.ok() ? *n : -1;
  }
  // Rows in the index itself (no search first, so nothing queued is indexed on the way).
  std::int64_t indexed() { return number(search_->index(), "SELECT COUNT(*) FROM message_fts"); }
  // Rows of imd.db's search_queue, applied or not (trim_queue deletes the applied ones).
  std::int64_t queue_rows() { return number(*db_, "SELECT COUNT(*) FROM search_queue"); }

  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<SqliteSearch> search_;
};

TEST_F(SqliteSearchTest, TheMigrationAddsTheIndex) {
  EXPECT_GE(db_->schema_version(), 6);
}

TEST_F(SqliteSearchTest, HistoryFromBeforeTheIndexIsBackFilledNewestFirstWhileNewMessagesAreLive) {
  seed_users();
  store_dms(100, 20, "older history line");
  SqliteSearchOptions o;
  o.backfill_batch = 3;
  enable(o);
  EXPECT_TRUE(*search_->indexing());
  EXPECT_EQ(count("history"), 0u);
  store_dms(1000, 1, "a new history line");  // indexed by the triggers at once
  EXPECT_EQ(count("history"), 1u);
  // One chunk: the three newest older messages.
  ASSERT_TRUE(*search_->backfill_step());
  SearchQuery q;
  q.terms = {"older"};
  auto first = search_->search(kBob, q);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->indexing);
  ASSERT_EQ(first->hits.size(), 3u);
  EXPECT_EQ(first->hits[0].id, 119u);
  EXPECT_EQ(first->hits[2].id, 117u);
  drain();
  EXPECT_FALSE(*search_->indexing());
  EXPECT_EQ(count("history"), 21u);
  EXPECT_EQ(count("older"), 20u);
}

TEST_F(SqliteSearchTest, TheBackFillResumesAfterARestartAndIndexesEachMessageOnce) {
  seed_users();
  store_dms(100, 10, "resumable work item");
  SqliteSearchOptions o;
  o.backfill_batch = 4;
  enable(o);
  ASSERT_TRUE(*search_->backfill_step());
  EXPECT_EQ(count("work"), 4u);
  open();  // a restart
  enable(o);
  EXPECT_TRUE(*search_->indexing());
  EXPECT_EQ(count("work"), 4u);
  EXPECT_EQ(drain(), 1);  // 6 left: one more chunk with more after it, then the last
  EXPECT_EQ(count("work"), 10u);
}

TEST_F(SqliteSearchTest, TheIndexerThreadFinishesTheBackFill) {
  seed_users();
  store_dms(100, 50, "threaded fill");
  SqliteSearchOptions o;
  o.backfill_batch = 7;
  o.backfill_pause_ms = 0;
  enable(o);
  search_->start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (*search_->indexing() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(*search_->indexing());
  EXPECT_EQ(count("threaded"), 50u);
}

TEST_F(SqliteSearchTest, ReEnablingAfterADisabledSpellRebuildsEditsAndDeletesIncluded) {
  seed_users();
  enable();
  store_dms(100, 2, "original text");
  EXPECT_EQ(count("original"), 2u);
  search_.reset();
  disable_sqlite_search(*db_);
  open();  // no triggers now: these changes reach only the message table
  edit_100_and_erase_101("rewritten text");
  store_dms(200, 1, "written while search was off");
  enable();
  EXPECT_TRUE(*search_->indexing());
  drain();
  EXPECT_EQ(count("original"), 0u);
  EXPECT_EQ(count("rewritten"), 1u);
  EXPECT_EQ(count("text"), 1u);
  EXPECT_EQ(count("while search"), 1u);
}

TEST_F(SqliteSearchTest, TheSendPathQueuesMessagesAndTheIndexerIndexesThemInBatches) {
  seed_users();
  SqliteSearchOptions o;
  o.index_batch = 10;
  enable(o);
  store_dms(100, 25, "queued for the indexer");
  EXPECT_EQ(*search_->queued(), 25);
  EXPECT_EQ(indexed(), 0);  // the storing transaction wrote only the queue
  ASSERT_TRUE(*search_->index_step());
  EXPECT_EQ(*search_->queued(), 15);
  EXPECT_EQ(indexed(), 10);
  ASSERT_TRUE(*search_->index_step());
  EXPECT_FALSE(*search_->index_step());  // the last five
  EXPECT_EQ(*search_->queued(), 0);
  EXPECT_EQ(indexed(), 25);
  EXPECT_FALSE(*search_->index_step());  // nothing queued
}

TEST_F(SqliteSearchTest, ASearchIndexesWhatIsQueuedFirstSoASentMessageIsFound) {
  seed_users();
  SqliteSearchOptions o;
  o.index_batch = 4;
  o.flush_batches = 2;
  enable(o);
  drain();  // the (empty) history of a database that had no index
  store_dms(100, 6, "just sent");
  SearchQuery q;
  q.terms = {"just"};
  q.limit = 100;
  auto r = search_->search(kBob, q);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->hits.size(), 6u);
  EXPECT_FALSE(r->indexing);
  // Further behind than the search indexes first: what it did not reach is not yet found,
  // and the page says so.
  store_dms(200, 12, "burst of sends");
  q.terms = {"burst"};
  r = search_->search(kBob, q);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->hits.size(), 8u);
  EXPECT_TRUE(r->indexing);
  EXPECT_EQ(count("burst"), 12u);
}

TEST_F(SqliteSearchTest, AMessageDeletedOrEditedWhileQueuedIsIndexedAsItIsNow) {
  seed_users();
  enable();
  store_dms(100, 3, "first words");
  edit_100_and_erase_101("second words");
  EXPECT_FALSE(*search_->index_step());
  EXPECT_EQ(*search_->queued(), 0);
  EXPECT_EQ(indexed(), 2);
  EXPECT_EQ(count("first"), 1u);   // 102
  EXPECT_EQ(count("second"), 1u);  // 100, edited
  EXPECT_EQ(count("words"), 2u);   // 101 is gone
}

TEST_F(SqliteSearchTest, TheQueueOutlivesARestartAndTheIndexerThreadDrainsIt) {
  seed_users();
  enable();
  store_dms(100, 40, "stored before the crash");
  search_.reset();
  open();  // a restart before the indexer ran: the queue committed with the messages
  SqliteSearchOptions o;
  o.index_batch = 7;
  o.index_idle_ms = 1;
  enable(o);
  EXPECT_EQ(*search_->queued(), 40);
  search_->start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (*search_->queued() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(*search_->queued(), 0);
  EXPECT_EQ(indexed(), 40);
  // It keeps running: what is stored later is indexed without a search asking.
  store_dms(500, 3, "stored after the start");
  while (indexed() < 43 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(indexed(), 43);
}

// While the process is degraded the indexer waits (the queue keeps everything), then catches up.
TEST_F(SqliteSearchTest, TheIndexerWaitsWhileHeldAndCatchesUpAfter) {
  seed_users();
  SqliteSearchOptions o;
  o.index_idle_ms = 1;
  enable(o);
  std::atomic<bool> hold{true};
  search_->start([&] { return hold.load(); });
  store_dms(100, 20, "stored while degraded");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // Passes asked and postponed after the messages were queued: none of them was indexed.
  const auto asked = search_->held();
  while (search_->held() < asked + 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GE(search_->held(), asked + 3);
  EXPECT_EQ(*search_->queued(), 20);
  EXPECT_EQ(indexed(), 0);
  hold = false;
  while (*search_->queued() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(*search_->queued(), 0);
  EXPECT_EQ(indexed(), 20);
}

// While sends wait for the writer, each indexer transaction takes at most index_batch_busy
// messages (the writer is held for little); once they no longer wait, whole batches again.
TEST_F(SqliteSearchTest, WhileSendsWaitTheIndexerTakesSmallBatches) {
  seed_users();
  SqliteSearchOptions o;
  o.index_idle_ms = 1;
  o.index_batch = 1000;
  o.index_batch_busy = 5;
  enable(o);
  drain();  // the (empty) history of a database that had no index
  store_dms(100, 20, "stored while sends wait");
  std::atomic<bool> busy{true};
  std::vector<std::int64_t> seen;  // the queue before each busy pass (indexer thread only)
  search_->start({}, [&] {
    if (busy.load()) seen.push_back(*search_->queued());
    return busy.load();
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (*search_->queued() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(indexed(), 20);
  EXPECT_GE(search_->yielded(), 4u);
  busy = false;
  store_dms(200, 30, "stored when sending is quiet");
  while (indexed() < 50 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(indexed(), 50);
  search_.reset();  // the indexer thread stops: `seen` is ours again
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(seen.front(), 20);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LE(seen[i - 1] - seen[i], 5) << "pass " << i;
  }
}

TEST_F(SqliteSearchTest, AQueryPastItsTimeBudgetStopsWithUnavailable) {
  seed_users();
  SqliteSearchOptions o;
  o.timeout_ms = 0;  // already past: the first progress check interrupts the scan
  enable(o);
  store_dms(100, 500, "some ordinary chatter");
  SearchQuery q;
  q.terms = {"zz"};  // short: a scan of every indexed message
  auto r = search_->search(kBob, q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("longer than 0 ms"), std::string::npos) << r.error().message;
  // The connection is usable again afterwards (the handler is removed).
  search_.reset();
  enable();
  EXPECT_EQ(count("chatter"), 500u);
}

// The index lives in search.db; imd.db's storing transaction (edits and deletes included) only
// appends to search_queue. search.db records the last queue row it applied in the transaction
// that writes the index, so a crash before the trim in imd.db skips what was applied, and a
// replayed batch (a crash before search.db's commit) doubles nothing.
TEST_F(SqliteSearchTest, ACrashBetweenTheTwoFilesLosesAndDoublesNothing) {
  seed_users();
  SqliteSearchOptions o;
  o.index_batch = 10;
  enable(o);
  drain();
  store_dms(100, 30, "crash safe words");
  ASSERT_TRUE(*search_->index_step());  // search.db committed 10; imd.db still holds all 30 rows
  EXPECT_EQ(indexed(), 10);
  EXPECT_EQ(queue_rows(), 30);
  search_.reset();
  open();  // the crash: the trim of imd.db's queue never ran
  enable(o);
  EXPECT_EQ(*search_->queued(), 20);  // the 10 applied rows are skipped
  while (*search_->index_step()) {
  }
  EXPECT_EQ(indexed(), 30);
  EXPECT_EQ(count("crash"), 30u);
  // Edits and deletes also go through the queue: nothing in search.db changes until it runs.
  edit_100_and_erase_101("replaced words");
  EXPECT_EQ(indexed(), 30);
  EXPECT_EQ(*search_->queued(), 2);
  // A batch replayed (search.db lost its last commits, mark included): applied again, the same.
  auto rewind = search_->index().write(
      [](SqliteConnection& c) { return c.exec("UPDATE search_state SET applied = 0"); });
  ASSERT_TRUE(rewind.ok()) << rewind.error().message;
  while (*search_->index_step()) {
  }
  EXPECT_EQ(*search_->queued(), 0);
  EXPECT_EQ(indexed(), 29);
  EXPECT_EQ(count("crash"), 28u);
  EXPECT_EQ(count("replaced"), 1u);
  // The trim empties imd.db's queue; the next message still gets a seq past the mark.
  ASSERT_TRUE(search_->trim_queue().ok());
  EXPECT_EQ(queue_rows(), 0);
  store_dms(500, 1, "after the trim");
  EXPECT_EQ(*search_->queued(), 1);
  EXPECT_EQ(count("trim"), 1u);
}

// A database from before search.db: message_fts and the old queue in imd.db. Version 15 drops
// them; the new search.db is filled by the back-fill, and old messages are found.
TEST_F(SqliteSearchTest, AnUpgradedDatabaseLosesItsIndexTableAndTheBackFillRefillsSearchDb) {
  seed_users();
  store_dms(100, 20, "from the old days");
  auto old = db_->write([](SqliteConnection& c) -> Result<void> {
    return c.exec_script(R"sql(
DROP TABLE search_queue;
CREATE TABLE search_queue (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL);
CREATE VIRTUAL TABLE message_fts USING fts5(
  body, kind UNINDEXED, conv_a UNINDEXED, conv_b UNINDEXED, seq UNINDEXED, sender UNINDEXED,
  type UNINDEXED, created_at UNINDEXED, edited_at UNINDEXED, tokenize = 'trigram', detail = none);
INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, created_at,
  edited_at) SELECT id, body, 2, user_a, user_b, seq, "from", type, created_at, edited_at
  FROM message WHERE id < 119;
INSERT INTO search_queue (id, kind) VALUES (119, 2);
UPDATE search_state SET enabled = 1;
DELETE FROM schema_version WHERE version = 15;
)sql");
  });
  ASSERT_TRUE(old.ok()) << old.error().message;
  open();
  EXPECT_EQ(db_->migrations_applied(), 1);
  const auto tables = number(*db_, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'message_fts'");
  EXPECT_EQ(tables, 0);
  enable();
  EXPECT_TRUE(*search_->indexing());
  EXPECT_EQ(indexed(), 0);
  drain();
  EXPECT_FALSE(*search_->indexing());
  EXPECT_EQ(indexed(), 20);
  EXPECT_EQ(count("old days"), 20u);
  // A deleted search.db is rebuilt the same way.
  search_.reset();
  for (const char* f : {"search.db", "search.db-wal", "search.db-shm"}) {
    std::filesystem::remove(dir_.file(f));
  }
  enable();
  EXPECT_TRUE(*search_->indexing());
  drain();
  EXPECT_EQ(count("old days"), 20u);
  // And a search.db that is not a database: moved aside, rebuilt.
  search_.reset();
  for (const char* f : {"search.db-wal", "search.db-shm"}) std::filesystem::remove(dir_.file(f));
  {
    std::ofstream garbage(dir_.file("search.db"), std::ios::trunc);
    garbage << std::string(8192, 'x');
  }
  enable();
  EXPECT_TRUE(std::filesystem::exists(dir_.file("search.db.corrupt")));
  EXPECT_TRUE(*search_->indexing());
  drain();
  EXPECT_EQ(count("old days"), 20u);
}

// The storing transaction never waits for the indexer: while a search.db write transaction
// (which also holds a read snapshot of imd.db) stays open, messages are stored and queued.
TEST_F(SqliteSearchTest, StoringNeverWaitsForAnIndexerTransaction) {
  seed_users();
  enable();
  drain();
  std::promise<void> entered, release;
  auto released = release.get_future();
  std::thread indexer([&] {
    auto r = search_->index().write([&](SqliteConnection& c) -> Result<void> {
      IMD_TRY(c.exec("INSERT INTO message_fts (rowid, body) VALUES (1, 'held open')"));
      auto s = c.prepare("SELECT COUNT(*) FROM imd.message");  // the snapshot of imd.db
      if (!s.ok()) return s.error();
      IMD_TRY(s->step());
      s->reset();
      entered.set_value();
      released.wait();
      return make_error(Errc::unavailable, "rolled back");
    });
    EXPECT_FALSE(r.ok());
  });
  entered.get_future().wait();
  const auto t0 = std::chrono::steady_clock::now();
  store_dms(100, 50, "stored meanwhile");
  edit_100_and_erase_101("edited meanwhile");
  const auto took = std::chrono::steady_clock::now() - t0;
  release.set_value();
  indexer.join();
  EXPECT_LT(took, std::chrono::seconds(1));  // the writer's wait would be busy_timeout_ms
  EXPECT_EQ(*search_->queued(), 52);
  EXPECT_EQ(count("meanwhile"), 49u);
}

}  // namespace
}  // namespace imd
