// MysqlDatabase: a small RAII layer over the MariaDB Connector/C API (libmariadb) for the
// cluster store: a bounded connection pool, per-connection prepared-statement caches,
// transactions with bounded retries, and reconnection after a dropped connection.
//
// Contract:
// - Thread-safe: read() and write() may be called from any thread. They block (network I/O);
//   run them on a blocking pool. They are not reentrant: a call from inside fn takes a second
//   connection, and with a pool of one it times out.
// - Opening (the constructor) throws std::runtime_error with a clear message; that is the only
//   exception. Everything after returns Result: unique violations are Errc::conflict, foreign-key
//   violations Errc::not_found, CHECK / NOT NULL / too-long values Errc::invalid_argument, SQL
//   the server rejects as malformed Errc::internal, everything else (connection lost, timeouts,
//   deadlocks that outlived the retries, pool exhausted) Errc::unavailable.
// - Values are always bound to '?' parameters of prepared statements (mysql_stmt_*). SQL text
//   is a constant, or built from constant pieces only (the multi-row statements); it is never
//   spliced with a value. The text protocol is used only for value-free statements:
//   START TRANSACTION, COMMIT, ROLLBACK and the DDL of the migrations.
// - Every connection speaks utf8mb4, runs REPEATABLE READ with strict SQL mode, and waits
//   at most lock_wait_timeout_s for a row lock.
#pragma once

#include <mysql.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace imd {

class Breaker;  // common/breaker.hpp

struct MysqlConfig {
  std::string host = "127.0.0.1";
  unsigned port = 3306;
  std::string user, password, database;
  std::string unix_socket;  // when set, the connection uses it instead of host:port
  int pool_size = 8;
  int connect_timeout_s = 5;
  int read_timeout_s = 10;
  int write_timeout_s = 10;
  int acquire_timeout_ms = 5000;  // waiting longer for a free connection is unavailable
  // InnoDB's row-lock wait (session innodb_lock_wait_timeout; the server default is 50 s).
  // It must stay below read_timeout_s: a lock wait then ends as a retryable engine error
  // instead of a client read timeout that drops the connection.
  int lock_wait_timeout_s = 5;
};

// Maps a server or client error number to the error model.
Error mysql_to_error(unsigned errnum, std::string_view message, std::string_view what);
// The connection is gone (server restart, KILL, network): the statement did not complete.
bool mysql_connection_lost(unsigned errnum);
// InnoDB aborted the statement or transaction over locks; re-running the transaction may work.
bool mysql_lock_conflict(unsigned errnum);

class MysqlConnection;

// A prepared statement, owned by its connection's cache. Parameters are bound in order (a
// value used twice in the SQL is bound twice), then execute() runs it; a result set is read
// whole into client memory, so other statements may run on the connection while its rows are
// read, until the same statement is executed again. Columns are 0-based.
class MysqlStatement {
 public:
  MysqlStatement(const MysqlStatement&) = delete;
  MysqlStatement& operator=(const MysqlStatement&) = delete;
  ~MysqlStatement();

  template <std::integral T>
  MysqlStatement& bind(T value) {
    if constexpr (std::is_signed_v<T>) {
      return bind_signed(static_cast<std::int64_t>(value));
    } else {
      return bind_unsigned(static_cast<std::uint64_t>(value));
    }
  }
  MysqlStatement& bind(std::string_view value);
  MysqlStatement& bind(const std::string& value) { return bind(std::string_view(value)); }
  MysqlStatement& bind(const char* value) { return bind(std::string_view(value)); }
  MysqlStatement& bind(const std::optional<std::string>& value);  // nullopt: NULL
  MysqlStatement& bind_null();
  template <class... Args>
  MysqlStatement& bind_all(const Args&... args) {
    (bind(args), ...);
    return *this;
  }

  // Runs the statement with the parameters bound since the last execute (then forgets them).
  Result<void> execute();
  // The next row of the result: true when one is available.
  Result<bool> fetch();
  // Rows changed by an INSERT/UPDATE/DELETE; rows matched, for an UPDATE (CLIENT_FOUND_ROWS).
  std::uint64_t affected_rows() const;

  bool column_is_null(int col) const;
  std::uint64_t column_id(int col) const;  // unsigned integer column (or a decimal one)
  std::int64_t column_int64(int col) const;
  std::string column_text(int col) const;  // "" for NULL

 private:
  friend class MysqlConnection;
  MysqlStatement(MysqlConnection* conn, MYSQL_STMT* stmt, std::string sql);
  MysqlStatement& bind_signed(std::int64_t value);
  MysqlStatement& bind_unsigned(std::uint64_t value);
  Result<void> bind_result_columns();
  Error fail(std::string_view what);

  struct Param {
    enum class Kind { null, int64, uint64, text } kind = Kind::null;
    std::int64_t i = 0;
    std::uint64_t u = 0;
    std::string s;
  };
  struct Column {
    bool integer = false;  // bound as a 64-bit integer; otherwise as text
    bool is_unsigned = false;
    std::int64_t value = 0;
    std::vector<char> text;
    unsigned long length = 0;
    my_bool null = 0;
    my_bool error = 0;
  };

  MysqlConnection* conn_;
  MYSQL_STMT* stmt_;
  std::string sql_;
  std::vector<Param> params_;  // reused across executions; the first nparams_ are bound
  std::size_t nparams_ = 0;
  std::vector<MYSQL_BIND> param_binds_;
  std::vector<unsigned long> param_lengths_;
  std::vector<Column> columns_;
  std::vector<MYSQL_BIND> result_binds_;
  bool has_result_ = false;
};

// One server connection and its statement cache. Used by one thread at a time (the pool hands
// it out as a lease). A connection that reported a lost-connection or client error is broken:
// the pool discards it instead of reusing it.
class MysqlConnection {
 public:
  // Connects and sets up the session; unavailable when the server cannot be reached or refuses.
  static Result<std::unique_ptr<MysqlConnection>> open(const MysqlConfig& config);
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;
  ~MysqlConnection();

  // The cached prepared statement for `sql` (prepared on first use).
  Result<MysqlStatement*> prepare(std::string_view sql);
  // prepare + bind_all + execute.
  template <class... Args>
  Result<MysqlStatement*> run(std::string_view sql, const Args&... args) {
    auto stmt = prepare(sql);
    if (!stmt.ok()) return stmt.error();
    (*stmt)->bind_all(args...);
    IMD_TRY((*stmt)->execute());
    return stmt;
  }
  // A value-free statement over the text protocol (transaction control, DDL). Never pass text
  // that contains a value.
  Result<void> execute_text(std::string_view sql);

  bool broken() const { return broken_; }
  // Makes the pool drop this connection (its session state is unknown).
  void mark_broken() { broken_ = true; }
  // The error number of the last failed call on this connection (0: none since clear_error).
  unsigned last_errno() const { return last_errno_; }
  void clear_error() {
    last_errno_ = 0;
    retry_requested_ = false;
  }
  // Called by a transaction body before it returns an error that a re-run of the whole
  // transaction can resolve (e.g. a unique key raced by a concurrent writer that committed).
  void request_retry() { retry_requested_ = true; }
  bool retry_requested() const { return retry_requested_; }
  // The server's id of this session (for KILL in tests).
  unsigned long server_thread_id() const;
  unsigned long server_version() const;

 private:
  friend class MysqlStatement;
  explicit MysqlConnection(MYSQL* mysql) : mysql_(mysql) {}
  // Records the failure (errno, broken) and maps it.
  Error fail(unsigned errnum, const char* message, std::string_view what);

  MYSQL* mysql_;
  std::unordered_map<std::string, std::unique_ptr<MysqlStatement>> cache_;
  bool broken_ = false;
  unsigned last_errno_ = 0;
  bool retry_requested_ = false;
};

class MysqlDatabase {
 public:
  // Validates the config, connects, and applies pending migrations. Throws std::runtime_error
  // (with the server's message, never the password) on any failure.
  explicit MysqlDatabase(MysqlConfig config);
  MysqlDatabase(const MysqlDatabase&) = delete;
  MysqlDatabase& operator=(const MysqlDatabase&) = delete;
  ~MysqlDatabase();

  // Runs fn(MysqlConnection&) -> Result<T> on a pooled connection in autocommit mode (each
  // statement reads its own snapshot). When the connection turns out to be lost, fn is run
  // once more on a fresh connection: reads are safe to repeat.
  template <class F>
  auto read(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&>;

  // Runs fn(MysqlConnection&) -> Result<T> inside START TRANSACTION ... COMMIT; rolls back when
  // it returns an error. The whole transaction is re-run (at most kMaxAttempts times, with a
  // short random backoff) when InnoDB reports a deadlock or lock wait timeout, or fn requested
  // it; and once on a fresh connection when the connection was lost before COMMIT was sent
  // (the server discards an uncommitted transaction of a dropped session, so nothing was
  // stored). A connection lost during COMMIT is unavailable and never retried: the outcome
  // is unknown. fn must therefore have no effect outside the database.
  template <class F>
  auto write(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&>;

  const MysqlConfig& config() const { return config_; }
  // From now on read() and write() are refused at once (the breaker's unavailable, with its
  // retry-after) while `breaker` refuses: a stalled server costs callers nothing instead of a
  // read timeout each. The breaker is fed by the composition root's probe (DependencyGuard)
  // and by every read() and write() (Breaker::track: a lost connection or a timeout counts
  // toward opening it, a success closes it from half-open).
  // Set once, before serving; the breaker must outlive this database's use.
  void guard_with(Breaker* breaker) { pool_.breaker.store(breaker, std::memory_order_release); }
  int schema_version() const { return schema_version_; }
  int migrations_applied() const { return migrations_applied_; }
  // Counters since construction.
  std::uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  std::uint64_t transaction_retries() const { return retries_.load(std::memory_order_relaxed); }

  static constexpr int kMaxAttempts = 5;

 private:
  // At most pool_size connections, opened on demand; a broken one is closed, not returned.
  class Pool {
   public:
    class Lease {
     public:
      Lease(Pool* pool, std::unique_ptr<MysqlConnection> conn)
          : pool_(pool), conn_(std::move(conn)) {}
      Lease(Lease&& o) noexcept = default;
      Lease& operator=(Lease&&) = delete;
      ~Lease() {
        if (conn_) pool_->release(std::move(conn_));
      }
      MysqlConnection& conn() const { return *conn_; }

     private:
      Pool* pool_;
      std::unique_ptr<MysqlConnection> conn_;
    };

    Pool(const MysqlConfig& config) : config_(config) {}
    std::atomic<Breaker*> breaker{nullptr};  // guard_with()
    void add(std::unique_ptr<MysqlConnection> conn);
    // unavailable when no connection frees up within acquire_timeout_ms or a new one cannot
    // be opened. `fresh`: a newly opened connection, never an idle one (after a lost one).
    Result<Lease> acquire(bool fresh);

   private:
    void release(std::unique_ptr<MysqlConnection> conn);

    const MysqlConfig& config_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<MysqlConnection>> idle_;
    int open_ = 0;  // idle + leased + being opened
  };

  // Rolls back (or drops a connection that cannot) when fn leaves by an exception.
  struct AbortGuard {
    MysqlConnection* conn;
    ~AbortGuard();
  };

  template <class F>
  auto read_untracked(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&>;
  template <class F>
  auto write_untracked(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&>;
  // One call as the breaker of guard_with() sees it (Breaker::track, record_result): the
  // fields of its Breaker::Permit, so that this header needs no breaker.hpp.
  struct Tracked {
    Breaker* breaker = nullptr;  // none: nothing to tell
    std::uint64_t generation = 0;
    bool ignored = false;
    std::int64_t started = 0;
  };
  Tracked track_call();
  static void end_call(const Tracked& call, const Error* error);
  // Runs call() and tells the breaker of guard_with(), if any, how it went.
  template <class Call>
  auto tracked(Call&& call) -> std::invoke_result_t<Call&> {
    const Tracked t = track_call();
    auto r = call();
    if (t.breaker != nullptr) end_call(t, r.ok() ? nullptr : &r.error());
    return r;
  }

  // ROLLBACK; a connection where even that fails is dropped.
  static void rollback(MysqlConnection& conn);
  static void backoff(int attempt);
  void note_reconnect() { reconnects_.fetch_add(1, std::memory_order_relaxed); }
  void note_retry() { retries_.fetch_add(1, std::memory_order_relaxed); }

  MysqlConfig config_;
  int schema_version_ = 0;
  int migrations_applied_ = 0;
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> retries_{0};
  Pool pool_{config_};
};

template <class F>
auto MysqlDatabase::read(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&> {
  return tracked([&] { return read_untracked(fn); });
}

template <class F>
auto MysqlDatabase::write(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&> {
  return tracked([&] { return write_untracked(fn); });
}

template <class F>
auto MysqlDatabase::read_untracked(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&> {
  using R = std::invoke_result_t<F&, MysqlConnection&>;
  for (int attempt = 1;; ++attempt) {
    auto lease = pool_.acquire(attempt > 1);
    if (!lease.ok()) return R(lease.error());
    MysqlConnection& conn = lease->conn();
    conn.clear_error();
    R result = fn(conn);
    if (!result.ok() && conn.broken() && mysql_connection_lost(conn.last_errno()) && attempt == 1) {
      note_reconnect();
      continue;  // the lease drops the broken connection
    }
    return result;
  }
}

template <class F>
auto MysqlDatabase::write_untracked(F&& fn) -> std::invoke_result_t<F&, MysqlConnection&> {
  using R = std::invoke_result_t<F&, MysqlConnection&>;
  bool reconnected = false;  // at most once per call
  bool fresh = false;        // the next attempt must not take an idle (maybe stale) connection
  for (int attempt = 1;; ++attempt) {
    auto lease = pool_.acquire(std::exchange(fresh, false));
    if (!lease.ok()) return R(lease.error());
    MysqlConnection& conn = lease->conn();
    conn.clear_error();
    const bool may_retry = attempt < kMaxAttempts;
    auto lost_before_commit = [&] {
      return conn.broken() && mysql_connection_lost(conn.last_errno()) && !reconnected && may_retry;
    };
    if (auto begun = conn.execute_text("START TRANSACTION"); !begun.ok()) {
      if (lost_before_commit()) {
        reconnected = fresh = true;
        note_reconnect();
        continue;
      }
      return R(begun.error());
    }
    AbortGuard guard{&conn};
    R result = fn(conn);
    guard.conn = nullptr;
    if (result.ok()) {
      auto committed = conn.execute_text("COMMIT");
      if (committed.ok()) return result;
      Error err = committed.error();
      err.code = Errc::unavailable;
      if (conn.broken()) {
        err.message += " (the connection was lost during COMMIT: the outcome is unknown)";
        return R(err);
      }
      const bool conflict = mysql_lock_conflict(conn.last_errno());
      rollback(conn);
      if (conflict && may_retry) {
        note_retry();
        backoff(attempt);
        continue;
      }
      return R(err);
    }
    if (conn.broken()) {
      // Lost before COMMIT was sent: the server rolls the transaction back.
      if (lost_before_commit()) {
        reconnected = fresh = true;
        note_reconnect();
        continue;
      }
      return result;
    }
    const bool retry = mysql_lock_conflict(conn.last_errno()) || conn.retry_requested();
    rollback(conn);
    if (retry && may_retry) {
      note_retry();
      backoff(attempt);
      continue;
    }
    return result;
  }
}

}  // namespace imd
