// MysqlStore: the cluster Store adapter on MySQL / MariaDB (docs/schema.md, "MySQL / MariaDB",
// for the schema and each query's index). Its methods are SqlStore's
// (store_sql/sql_store.hpp, which also states the contract choices); this header adds how
// SqlStore runs on MariaDB (MysqlDialect).
//
// Thread-safe, blocking; any number of processes may share one database. Every write is one
// InnoDB transaction (REPEATABLE READ); reads run in autocommit mode. Errors: not_found,
// conflict, forbidden, invalid_argument as the port says; unavailable for an engine failure
// (connection lost, pool exhausted, lock waits or deadlocks that outlived the retries).
// Never throws.
//
// users_by_name compares case-insensitively but accent- and space-exactly
// (utf8mb4_uca1400_nopad_as_ci), the closest match to SQLite's NOCASE.
#pragma once

#include <memory>

#include "domain/ports/store.hpp"
#include "store_mysql/mysql_db.hpp"
#include "store_sql/sql_store.hpp"

namespace imd {

// The rows of an executed statement (held in client memory by the connection's cached
// MysqlStatement until it runs again), as SqlStore reads them.
class MysqlRows {
 public:
  explicit MysqlRows(MysqlStatement& s) : s_(&s) {}
  Result<bool> step() { return s_->fetch(); }
  bool column_is_null(int col) const { return s_->column_is_null(col); }
  std::uint64_t column_id(int col) const { return s_->column_id(col); }
  std::int64_t column_int64(int col) const { return s_->column_int64(col); }
  std::string column_text(int col) const { return s_->column_text(col); }

 private:
  MysqlStatement* s_;
};

// SqlStore's engine on MariaDB (the SqlDialect concept in store_sql/sql_store.hpp).
struct MysqlDialect {
  using Database = MysqlDatabase;
  using Connection = MysqlConnection;
  using Rows = MysqlRows;
  static constexpr const DialectSql& sql = kMysqlSql;

  // The connection's cached statement for `text`, `args` bound in order, executed.
  template <class... Args>
  static Result<MysqlRows> query(MysqlConnection& c, std::string_view text, const Args&... args) {
    auto s = c.run(text, value(args)...);
    if (!s.ok()) return s.error();
    return MysqlRows(**s);
  }
  // Runs a statement without rows; the rows it changed (for an UPDATE: matched, as the
  // connection sets CLIENT_FOUND_ROWS).
  template <class... Args>
  static Result<std::uint64_t> change(MysqlConnection& c, std::string_view text,
                                      const Args&... args) {
    auto s = c.run(text, value(args)...);
    if (!s.ok()) return s.error();
    return (*s)->affected_rows();
  }

  // One transaction per batch that several consumers may run against the same conversations
  // at once: it locks the batch's conversation rows (SELECT ... FOR UPDATE, channels then DMs,
  // each in ascending key order, so two batches never wait on each other in a cycle), assigns
  // the seqs in memory from the locked last_seq, and writes with multi-row statements. A
  // deadlock, a lock wait timeout or a (sender, cid) raced by another consumer re-runs the
  // whole transaction (nothing of it was committed).
  static Result<std::vector<Result<Appended>>> append_batch(MysqlConnection& c,
                                                            std::span<const NewMessage> batch);
  // Only the member's own row is locked (by the UPDATE); the conversation's row was read
  // without a lock, so a cursor update never waits behind a batch that holds it (and never
  // takes locks in the opposite order of append_messages). A last_seq read a moment early only
  // clamps lower; GREATEST keeps the cursor monotonic against a concurrent advance.
  static Result<std::uint64_t> write_cursor(MysqlConnection& c, const sql::CursorWrite& w);

 private:
  static std::uint64_t value(sql::Bound b) { return b.value; }
  template <class T>
  static const T& value(const T& v) {
    return v;
  }
};

extern template class SqlStore<MysqlDialect>;

class MysqlStore final : public SqlStore<MysqlDialect> {
 public:
  explicit MysqlStore(std::shared_ptr<MysqlDatabase> db) : SqlStore(std::move(db)) {}
};

}  // namespace imd
