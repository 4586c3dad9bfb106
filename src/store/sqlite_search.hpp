// SqliteSearch: the Search port (domain/ports/search.hpp) on the standalone database, an FTS5
// table with the trigram tokenizer (message_fts, docs/schema.md "Search"), which finds any
// substring of three characters or more in any script, CJK included.
//
// Keeping in step: TEMP triggers on the writer connection (the only one that writes) copy
// every insert, edit and delete of channel_message / message into message_fts inside the same
// transaction, so a stored message is searchable when its `sent` goes out, an edit replaces
// the indexed text and a delete removes it. They exist only while a SqliteSearch lives:
// search.enabled = false (disable_sqlite_search) costs the hot path nothing.
//
// Back-fill: messages stored before the index existed (an upgraded database) or while search
// was disabled are indexed by a resumable background job (start_backfill, thread
// `imd-search-fill`): newest first, in chunks of `backfill_batch` messages, each chunk one
// short write transaction that re-writes the index for an id range; its progress is
// search_state.pending_lo/pending_hi, so a restart resumes where it stopped. Start-up never
// waits for it; until it ends, SearchPage::indexing is true.
//
// Queries: terms of three characters or more go to MATCH as quoted strings (never query
// syntax); shorter ones (trigrams cannot index them: 消息, "go") filter with LIKE over the
// candidates, and alone scan message_fts newest first. Access (channel_user membership, DM
// participation) and the filters are checked per candidate. Each query has a time budget
// (`timeout_ms`, sqlite3_progress_handler): past it the query stops with unavailable.
//
// Thread-safe. The constructor throws std::runtime_error when the triggers cannot be installed.
#pragma once

#include <cstdint>
#include <memory>

#include "common/step_thread.hpp"
#include "domain/ports/search.hpp"
#include "store/sqlite_db.hpp"

namespace imd {

struct SqliteSearchOptions {
  int timeout_ms = 2000;               // a query's time budget
  std::uint32_t backfill_batch = 500;  // messages of each table per back-fill transaction
  int backfill_pause_ms = 5;           // between two back-fill transactions (live writes first)
};

class SqliteSearch final : public Search {
 public:
  SqliteSearch(std::shared_ptr<SqliteDatabase> db, SqliteSearchOptions options = {});
  ~SqliteSearch() override = default;
  SqliteSearch(const SqliteSearch&) = delete;
  SqliteSearch& operator=(const SqliteSearch&) = delete;

  Result<SearchPage> search(Id user, const SearchQuery& q) override;

  // Runs the back-fill on its own thread until it is done (or the destructor stops it).
  void start_backfill();
  // One back-fill chunk (what the thread runs): true when more remains.
  Result<bool> backfill_step();
  // Whether older messages still wait for the back-fill.
  Result<bool> indexing();

 private:
  std::shared_ptr<SqliteDatabase> db_;
  SqliteSearchOptions options_;
  std::unique_ptr<StepThread> filler_;  // last: stopped before the rest goes
};

// search.enabled = false: marks the index out of step, so that enabling search again rebuilds
// it (in the background) rather than serve what the disabled time missed. Throws
// std::runtime_error on failure (start-up).
void disable_sqlite_search(SqliteDatabase& db);

}  // namespace imd
