// SqliteStore: the standalone Store adapter. Its methods are SqlStore's (store_sql/sql_store.hpp,
// which also states the contract choices); this header adds how SqlStore runs on SQLite
// (SqliteDialect) and what only this adapter has: history pages from remembered rows, and
// delivery ACKs in one transaction.
//
// Thread-safe, blocking. Writes serialize on the database's writer connection; reads run on
// its reader pool. Errors: not_found, conflict, forbidden as the port says; unavailable for an
// engine failure (busy beyond busy_timeout_ms, I/O). Never throws.
#pragma once

#include <memory>
#include <optional>

#include "domain/ports/store.hpp"
#include "store/message_row_cache.hpp"
#include "store/sqlite_db.hpp"
#include "store_sql/sql_store.hpp"

namespace imd {

// SqlStore's engine on SQLite (the SqlDialect concept in store_sql/sql_store.hpp).
struct SqliteDialect {
  using Database = SqliteDatabase;
  using Connection = SqliteConnection;
  using Rows = SqliteStatement;
  static constexpr const DialectSql& sql = kSqliteSql;

  // The connection's cached statement for `text` with `args` bound to ?1, ?2, ... (ids as
  // int64: to_db; range bounds clamped: to_db_bound), ready to step.
  template <class... Args>
  static Result<SqliteStatement> query(SqliteConnection& c, std::string_view text,
                                       const Args&... args) {
    auto s = c.prepare(text);
    if (s.ok()) s->bind_all(value(args)...);
    return s;
  }
  // Runs a statement without rows; sqlite3_changes: the rows it inserted, deleted, or matched
  // (an UPDATE counts every row its WHERE selects).
  template <class... Args>
  static Result<std::uint64_t> change(SqliteConnection& c, std::string_view text,
                                      const Args&... args) {
    auto s = query(c, text, args...);
    if (!s.ok()) return s.error();
    IMD_TRY(s->run());
    return static_cast<std::uint64_t>(c.changes());
  }

  // One item after another, each statement prepared once for the batch: the writer holds the
  // whole database, so nothing can race an item between its reads and its writes.
  static Result<std::vector<Result<Appended>>> append_batch(SqliteConnection& c,
                                                            std::span<const NewMessage> batch);
  // The writer holds the whole database, so the cursor read by advance_cursor is still current:
  // the target is written as is, and a delivery's message id comes from a subquery.
  static Result<std::uint64_t> write_cursor(SqliteConnection& c, const sql::CursorWrite& w);

 private:
  static std::int64_t value(std::uint64_t id) { return to_db(id); }
  static std::int64_t value(std::int64_t v) { return v; }
  static std::int64_t value(std::uint32_t v) { return v; }
  static std::int64_t value(sql::Bound b) { return to_db_bound(b.value); }
  static std::string_view value(std::string_view s) { return s; }
  static std::string_view value(const std::string& s) { return s; }
  static const std::optional<std::string>& value(const std::optional<std::string>& s) { return s; }
};

extern template class SqlStore<SqliteDialect>;

class SqliteStore final : public SqlStore<SqliteDialect> {
 public:
  // History pages are served from `row_cache_bytes` of remembered rows where they can be
  // (store/message_row_cache.hpp; 0: always from the database).
  static constexpr std::size_t kDefaultRowCacheBytes = 64u << 20;
  explicit SqliteStore(std::shared_ptr<SqliteDatabase> db,
                       std::size_t row_cache_bytes = kDefaultRowCacheBytes);

  // SqlStore's page, answered from the row cache when it holds every row of it; what the
  // database returns is remembered.
  Result<std::vector<Message>> messages(const ConvKey& conv, const HistoryQuery& q) override;
  // From the row cache: a before_seq/after_seq page whose every row is remembered.
  std::optional<std::vector<Message>> cached_messages(const ConvKey& conv,
                                                      const HistoryQuery& q) override;
  // SqlStore's, then the changed rows replace the remembered ones.
  Result<std::vector<Result<Changed>>> change_messages(std::span<const NewMessage> batch) override;
  // SqlStore's, then the channel's remembered rows are dropped.
  Result<DeletedChannel> delete_channel(Id id) override;
  // One write transaction for all of them, which the single writer makes cheap; invalid keys
  // are skipped too. (MysqlStore keeps the port's default: a transaction per cursor.)
  Result<std::vector<DeliveryUpdate>> advance_deliveries(
      std::span<const DeliveryUpdate> updates) override;

 private:
  std::optional<MessageRowCache> rows_;
};

}  // namespace imd
