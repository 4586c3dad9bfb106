// SqliteSearch: the Search port (domain/ports/search.hpp) on the standalone database, an FTS5
// table with the trigram tokenizer (message_fts, docs/schema.md "Search"), which finds any
// substring of three characters or more in any script, CJK included.
//
// Its own file (issue 12): message_fts lives in search.db beside imd.db, a SqliteDatabase of
// its own (writer, readers, checkpointer; sqlite_search_migrations), with imd.db attached
// read-only as `imd` on each of its connections. imd.db's writer never writes the index.
//
// Keeping in step: TEMP triggers on imd.db's writer connection (the only one that writes it)
// append a row to search_queue (seq, message id, kind, op: index, reindex or remove) for every
// new, edited, deleted or removed channel_message / message, inside the storing transaction:
// one small append, durable with the message. The indexer (index_step, on thread
// `imd-search-idx`) applies the queue rows past search_state.applied to message_fts, reading
// each message as it is now from imd.db, in search.db write transactions of up to `index_batch`
// rows that also record the last seq applied: a crash before that commit repeats the batch
// (OR REPLACE), after it the rows are skipped. Now and then (every kTrimEvery batches, or when
// the queue is drained) one small imd.db write deletes the applied rows. While sends wait
// (`busy`), the indexer's transactions hold `index_batch_busy` rows (less CPU at a time). A
// search first indexes what is queued (up to `flush_batches` batches, search.db only), so a
// stored message is found as soon as its `sent` went out. The triggers exist only while a
// SqliteSearch lives: search.enabled = false (disable_sqlite_search) costs the hot path nothing.
//
// search.db is derived: a new, deleted or corrupt-and-removed one, one left from before search
// was disabled, or one that applied queue rows this imd.db never had (a restored backup) is
// rebuilt by the back-fill below.
//
// Back-fill: messages stored before the index existed (an upgraded database, a new search.db) or
// while search was disabled are indexed by a resumable background job (backfill_step, on thread
// `imd-search-idx`, when the queue is empty): newest first, in chunks of `backfill_batch` messages,
// each chunk one short write transaction that re-writes the index for an id range; its progress is
// search.db's search_state.pending_lo/pending_hi, so a restart resumes where it stopped. Start-up
// never waits for it; until it ends, SearchPage::indexing is true.
//
// Queries: terms of three characters or more go to MATCH as quoted strings (never query
// syntax); shorter ones (trigrams cannot index them: 消息, "go") filter with LIKE over the
// candidates, and alone scan message_fts newest first. Access (channel_user membership, DM
// participation) and the filters are checked per candidate. Each query has a time budget
// (`timeout_ms`, sqlite3_progress_handler): past it the query stops with unavailable.
//
// Thread-safe. The constructor throws std::runtime_error when search.db cannot be opened or
// the triggers cannot be installed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/step_thread.hpp"
#include "domain/ports/search.hpp"
#include "store/sqlite_db.hpp"

namespace imd {

struct SqliteSearchOptions {
  int timeout_ms = 2000;                 // a query's time budget
  std::uint32_t backfill_batch = 500;    // messages of each table per back-fill transaction
  int backfill_pause_ms = 5;             // between two back-fill transactions (live writes first)
  std::uint32_t index_batch = 1000;      // queued messages per indexer transaction
  std::uint32_t index_batch_busy = 100;  // the same (and per back-fill table) while sends wait
  int index_idle_ms = 200;               // the indexer's wait when nothing is queued
  int flush_batches = 4;                 // indexer batches a search runs first, at most
  std::string index_path;                // search.db's path (empty: beside the database file)
};

class SqliteSearch final : public Search {
 public:
  SqliteSearch(std::shared_ptr<SqliteDatabase> db, SqliteSearchOptions options = {});
  ~SqliteSearch() override = default;
  SqliteSearch(const SqliteSearch&) = delete;
  SqliteSearch& operator=(const SqliteSearch&) = delete;

  Result<SearchPage> search(Id user, const SearchQuery& q) override;

  // Runs the indexer on its own thread until the destructor stops it: the queue first, then
  // the back-fill while there is one. While `hold` answers true (the process is degraded) the
  // indexer waits: the queue keeps what it must index, and a search still indexes a few
  // batches before it reads. While `busy` answers true (sends wait to be stored) its
  // transactions are small (`index_batch_busy`).
  void start(std::function<bool()> hold = {}, std::function<bool()> busy = {});
  // One indexer transaction of the queue (up to `batch` messages, 0: `index_batch`): true when
  // more remains queued.
  Result<bool> index_step(std::uint32_t batch = 0);
  // One back-fill chunk (up to `batch` messages of each table, 0: `backfill_batch`): true when
  // more remains.
  Result<bool> backfill_step(std::uint32_t batch = 0);
  // Indexer transactions made small because sends were waiting.
  std::uint64_t yielded() const { return yielded_.load(std::memory_order_relaxed); }
  // Messages queued for the indexer.
  Result<std::int64_t> queued() const;
  // Whether older messages still wait for the back-fill.
  Result<bool> indexing();
  // Indexer passes postponed by `hold` (imd_shed_total{what="search_indexing"}).
  std::uint64_t held() const { return held_.load(std::memory_order_relaxed); }
  // Deletes the queue rows search.db has applied (one imd.db write; the indexer thread does it
  // every kTrimEvery batches and when the queue is drained).
  Result<void> trim_queue();
  // search.db (tests, metrics).
  SqliteDatabase& index() const { return *index_; }

 private:
  static constexpr int kTrimEvery = 16;

  std::shared_ptr<SqliteDatabase> db_;
  SqliteSearchOptions options_;
  std::shared_ptr<SqliteDatabase> index_;  // search.db
  std::atomic<std::int64_t> trimmed_{0};   // the queue rows at or below it are deleted
  int batches_since_trim_ = 0;             // the indexer thread's
  std::function<bool()> hold_;
  std::function<bool()> busy_;
  std::atomic<std::uint64_t> held_{0};
  std::atomic<std::uint64_t> yielded_{0};
  std::unique_ptr<StepThread> indexer_;  // last: stopped before the rest goes
};

// search.enabled = false: marks the index out of step, so that enabling search again rebuilds
// it (in the background) rather than serve what the disabled time missed. Throws
// std::runtime_error on failure (start-up).
void disable_sqlite_search(SqliteDatabase& db);

}  // namespace imd
