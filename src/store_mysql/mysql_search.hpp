// MysqlSearch: the Search port (domain/ports/search.hpp) on MariaDB, over a Mroonga table with a
// bigram full-text index (message_fts, MariaDB migration 5; docs/schema.md "Search on MariaDB"),
// which finds any substring in any script, CJK included.
//
// Keeping in step: triggers of the schema on channel_message and message copy every insert,
// edit and delete into message_fts, in the statement that changes the message. Mroonga is not
// transactional: a rolled-back transaction (a deadlock retry) may leave its index rows behind.
// So every candidate is joined to its message row (it must exist and not be deleted) and its
// current text there must contain every term (LIKE): a stale index row is never a hit. The
// retry of the transaction re-writes the index rows (REPLACE).
//
// Back-fill: messages stored before the migration are indexed by backfill_step, newest first,
// in chunks of `backfill_batch` per table (search_state holds what is left, so it resumes
// after a restart; the chunk locks search_state, so processes that run it at once take turns).
//
// Queries: every term a quoted phrase in Mroonga's boolean mode (never query syntax), with a
// time budget (SET STATEMENT max_statement_time): past it, unavailable.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "common/step_thread.hpp"
#include "domain/ports/search.hpp"
#include "store_mysql/mysql_db.hpp"

namespace imd {

struct MysqlSearchOptions {
  int timeout_ms = 2000;
  std::uint32_t backfill_batch = 500;
  int backfill_pause_ms = 5;
};

class MysqlSearch final : public Search {
 public:
  MysqlSearch(std::shared_ptr<MysqlDatabase> db, MysqlSearchOptions options = {});

  Result<SearchPage> search(Id user, const SearchQuery& q) override;

  void start_backfill();
  Result<bool> backfill_step();
  Result<bool> indexing();

 private:
  std::shared_ptr<MysqlDatabase> db_;
  MysqlSearchOptions options_;
  std::unique_ptr<StepThread> filler_;  // last: stopped before the rest goes
};

}  // namespace imd
