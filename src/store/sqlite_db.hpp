// SqliteDatabase: a small RAII layer over the sqlite3 C API for the standalone store.
//
// One writer connection, held by one caller at a time (every write runs in a BEGIN IMMEDIATE
// transaction on it), and a bounded pool of read-only connections, so reads run in parallel
// with the writer (WAL) and never queue behind a batch commit.
//
// Contract:
// - Thread-safe: read() and write() may be called from any thread. They block; run them on a
//   blocking pool. They are not reentrant: calling write() from inside write() times out.
// - Opening (the constructor) throws std::runtime_error with a clear message; that is the only
//   exception. Everything after returns Result: engine failures (I/O, busy, lock timeout) are
//   Errc::unavailable, unique violations Errc::conflict, foreign-key violations
//   Errc::not_found, other constraint failures Errc::invalid_argument.
// - SQL text is always a constant; values are bound with sqlite3_bind_*, never spliced in.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "common/metrics.hpp"
#include "store/sqlite_checkpointer.hpp"

namespace imd {

struct SqliteConfig {
  // A file path. ":memory:" works for throwaway databases, but then WAL is off and reads go
  // through the writer (a private in-memory database cannot be shared with reader connections).
  std::string path;
  std::string synchronous = "NORMAL";  // OFF, NORMAL, FULL or EXTRA
  int read_connections = 4;            // 0: reads use the writer connection
  int busy_timeout_ms = 5000;          // also bounds the wait for the writer and for a reader
  // WAL checkpoints run on a background connection this often, never inside a write
  // transaction (0: SQLite's automatic checkpoints, taken by whichever commit crosses 1000
  // pages, with its fsync inside the writer's critical section).
  int checkpoint_interval_ms = 100;
  // A log longer than this gets a checkpoint from the writer between two transactions (see
  // sqlite_checkpointer.hpp), which keeps the WAL file near this size plus one interval's writes.
  std::uint64_t checkpoint_restart_bytes = 32ull << 20;
  // A warning when frames wait in the log and no checkpoint copied any for this long.
  int checkpoint_stall_warn_ms = 30000;
  // Every connection reads the database file through a memory map of up to this many bytes
  // instead of read() calls (PRAGMA mmap_size; writes still go through write()). 0: off.
  std::int64_t mmap_bytes = 0;
  // Another database file attached read-only on every connection as schema `attach_as` (both
  // empty: none). search.db's connections read imd.db this way (sqlite_search.hpp); a write
  // transaction then holds a read snapshot of it, never its lock.
  std::string attach_path{};
  std::string attach_as{};  // letters and '_' only
};

// A schema migration: (version, SQL script); see sqlite_migrations.hpp.
struct SqliteMigration {
  int version;
  std::string_view sql;
};

// Maps an sqlite result code (with the connection's message) to the error model.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

// Ids are unsigned in C++ and INTEGER (int64) in sqlite. Snowflake ids fit in 63 bits; the
// bit pattern round-trips either way, so a cast is exact for every id we generate.
inline std::int64_t to_db(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}
inline std::uint64_t from_db(std::int64_t v) {
  return static_cast<std::uint64_t>(v);
}
// For range bounds (seq, keyset cursors): values past int64 max compare as "above everything".
inline std::int64_t to_db_bound(std::uint64_t v) {
  constexpr auto kMax = static_cast<std::uint64_t>(INT64_MAX);
  return static_cast<std::int64_t>(v > kMax ? kMax : v);
}

// A prepared statement borrowed from a connection's cache (or owned, when the cached one is
// already in use). Destruction resets it and clears its bindings. Parameters are 1-based,
// columns 0-based, as in sqlite. Bind errors are reported by the next step().
class SqliteStatement {
 public:
  SqliteStatement() = default;  // empty until assigned from SqliteConnection::prepare
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  SqliteStatement& bind(int index, std::int64_t value);
  SqliteStatement& bind(int index, std::string_view value);
  // Exact overloads, so strings do not have to choose between string_view and optional.
  SqliteStatement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  SqliteStatement& bind(int index, const char* value) {
    return bind(index, std::string_view(value));
  }
  SqliteStatement& bind(int index, const std::optional<std::string>& value);  // nullopt: NULL
  SqliteStatement& bind_null(int index);

  // Binds the arguments to parameters 1..N.
  template <class... Args>
  SqliteStatement& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  // Advances: true when a row is available, false when done.
  Result<bool> step();
  // Steps to completion, ignoring any rows.
  Result<void> run();
  // Reads the first row into fn(*this) (when there is one), then steps to completion, so a
  // RETURNING statement has finished its work. True when a row was seen.
  template <class F>
  Result<bool> step_once(F&& fn) {
    auto row = step();
    if (!row.ok() || !*row) return row;
    fn(*this);
    auto rest = run();
    if (!rest.ok()) return rest.error();
    return true;
  }
  // Ready for new bindings and a new execution.
  void reset();

  std::int64_t column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::uint64_t column_id(int col) const { return from_db(column_int64(col)); }
  std::string column_text(int col) const;
  bool column_is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  friend class SqliteConnection;
  SqliteStatement(sqlite3_stmt* stmt, bool* in_use);
  SqliteStatement& note_bind(int rc);
  void release();

  sqlite3_stmt* stmt_ = nullptr;
  bool* in_use_ = nullptr;  // the cache slot's flag; nullptr when this statement is owned
  int bind_rc_ = SQLITE_OK;
};

// One sqlite3 connection and its statement cache. Used by one thread at a time (the database
// hands it out under the writer mutex or as a pool lease).
class SqliteConnection {
 public:
  // Throws std::runtime_error (start-up only).
  SqliteConnection(const std::string& path, int flags, int busy_timeout_ms);
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  ~SqliteConnection();

  // A prepared statement for `sql`, cached by its text.
  Result<SqliteStatement> prepare(std::string_view sql);
  // Runs one statement that returns no rows needed (BEGIN, COMMIT, ...), through the cache.
  Result<void> exec(std::string_view sql);
  // Runs a script of several statements, uncached (migrations, pragmas at open).
  Result<void> exec_script(const std::string& sql);

  std::int64_t changes() const { return sqlite3_changes64(db_); }
  sqlite3* handle() const { return db_; }

 private:
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Cached>> cache_;
  // The busy handler's state: a wait for a lock polls finely (sqlite's own busy_timeout
  // sleeps 1, 2, 5 ... 100 ms, long next to a commit) and gives up after timeout_ms.
  struct BusyWait {
    int timeout_ms = 0;
    std::chrono::steady_clock::time_point since;
  };
  static int on_busy(void* wait, int count);
  BusyWait busy_;
};

class SqliteDatabase {
 public:
  // Opens (creating if needed) the database, sets WAL, foreign_keys and synchronous, applies
  // pending migrations (the store's, or `migrations` for another file such as search.db), and
  // opens the reader pool. Throws std::runtime_error on any failure.
  explicit SqliteDatabase(SqliteConfig config);
  SqliteDatabase(SqliteConfig config, std::span<const SqliteMigration> migrations);
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;
  ~SqliteDatabase();

  // Runs fn(SqliteConnection&) -> Result<T> in a BEGIN IMMEDIATE transaction on the writer:
  // commits when it returns ok, rolls back when it returns an error. unavailable when the
  // writer cannot be had within busy_timeout_ms or the commit fails.
  template <class F>
  auto write(F&& fn) -> std::invoke_result_t<F&, SqliteConnection&>;

  // Runs fn(SqliteConnection&) -> Result<T> in a read transaction (one consistent snapshot)
  // on a pooled read-only connection. unavailable when no reader frees up within
  // busy_timeout_ms.
  template <class F>
  auto read(F&& fn) -> std::invoke_result_t<F&, SqliteConnection&>;

  const SqliteConfig& config() const { return config_; }
  // The schema version after opening, and how many migrations this open applied.
  int schema_version() const { return schema_version_; }
  int migrations_applied() const { return migrations_applied_; }
  // The WAL and its checkpoints (running = false for an in-memory database). Thread-safe.
  WalStatus wal_status() const;
  // One checkpoint round now (tests); the same as wal_status() without a checkpointer.
  WalStatus checkpoint_now();
  // The WAL metrics (write_wal_metrics) and the writer's: how long each write waited for the
  // writer connection and how long it held it (imd_sqlite_writer_{wait,hold}_seconds).
  void write_metrics(MetricsText& out) const;

 private:
  // A fixed set of connections handed out one caller at a time. The writer is a pool of one.
  // (A mutex and condition variable rather than std::timed_mutex: same bounded wait, and
  // ThreadSanitizer understands it.)
  class Pool {
   public:
    class Lease {
     public:
      Lease(Pool* pool, SqliteConnection* conn, std::int64_t since_ns)
          : pool_(pool), conn_(conn), since_ns_(since_ns) {}
      Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(o.conn_), since_ns_(o.since_ns_) {
        o.conn_ = nullptr;
      }
      Lease& operator=(Lease&&) = delete;
      ~Lease() {
        if (conn_ != nullptr) pool_->release(conn_, since_ns_);
      }
      SqliteConnection& conn() const { return *conn_; }

     private:
      Pool* pool_;
      SqliteConnection* conn_;
      std::int64_t since_ns_;  // when it was handed out (0: not timed)
    };

    void add(std::unique_ptr<SqliteConnection> conn);
    bool empty() const { return all_.empty(); }
    // unavailable when none frees up within `timeout`.
    Result<Lease> acquire(std::chrono::milliseconds timeout, std::string_view what);
    // From now on each lease's wait and hold are observed (microseconds).
    void time_leases(metrics::Histogram* wait, metrics::Histogram* hold) {
      wait_ = wait;
      hold_ = hold;
    }

   private:
    void release(SqliteConnection* conn, std::int64_t since_ns);

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<SqliteConnection>> all_;
    std::vector<SqliteConnection*> idle_;
    metrics::Histogram* wait_ = nullptr;
    metrics::Histogram* hold_ = nullptr;
  };

  // Rolls back when an exception (e.g. bad_alloc) leaves fn, so the connection stays usable.
  struct RollbackGuard {
    SqliteConnection* conn;
    ~RollbackGuard() {
      if (conn) (void)conn->exec("ROLLBACK");
    }
  };

  // Commits, or rolls back when `ok` is false; returns the commit's error if it fails.
  static Result<void> finish(SqliteConnection& conn, bool ok);
  // Attaches config_.attach_path read-only (start-up: throws on failure).
  void attach(SqliteConnection& conn) const;

  SqliteConfig config_;
  std::chrono::milliseconds timeout_;
  int schema_version_ = 0;
  int migrations_applied_ = 0;
  metrics::Histogram writer_wait_{metrics::latency_buckets()};
  metrics::Histogram writer_hold_{metrics::latency_buckets()};
  Pool writer_;   // exactly one connection
  Pool readers_;  // read-only connections; empty when reads share the writer

  std::unique_ptr<SqliteCheckpointer> checkpointer_;  // null: :memory: or auto-checkpoints
};

template <class F>
auto SqliteDatabase::write(F&& fn) -> std::invoke_result_t<F&, SqliteConnection&> {
  using R = std::invoke_result_t<F&, SqliteConnection&>;
  auto lease = writer_.acquire(timeout_, "the writer");
  if (!lease.ok()) return R(lease.error());
  SqliteConnection& conn = lease->conn();
  if (auto begun = conn.exec("BEGIN IMMEDIATE"); !begun.ok()) return R(begun.error());
  RollbackGuard guard{&conn};
  R result = fn(conn);
  guard.conn = nullptr;
  if (!result.ok()) {
    (void)finish(conn, false);  // the caller wants fn's error, not the rollback's
    return result;
  }
  if (auto done = finish(conn, true); !done.ok()) return R(done.error());
  if (checkpointer_ && checkpointer_->wants_writer()) checkpointer_->checkpoint_on_writer(conn);
  return result;
}

template <class F>
auto SqliteDatabase::read(F&& fn) -> std::invoke_result_t<F&, SqliteConnection&> {
  using R = std::invoke_result_t<F&, SqliteConnection&>;
  // Without a pool (in-memory database, read_connections = 0) reads share the writer.
  auto lease = readers_.empty() ? writer_.acquire(timeout_, "the writer")
                                : readers_.acquire(timeout_, "a read connection");
  if (!lease.ok()) return R(lease.error());
  SqliteConnection& conn = lease->conn();
  if (auto begun = conn.exec("BEGIN"); !begun.ok()) return R(begun.error());
  RollbackGuard guard{&conn};
  R result = fn(conn);
  guard.conn = nullptr;
  // A read transaction has nothing to keep; ending it releases the WAL snapshot.
  (void)finish(conn, false);
  return result;
}

}  // namespace imd
