#include "store/sqlite_db.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "common/metrics_text.hpp"
#include "store/sqlite_migrations.hpp"

namespace imd {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string message = "sqlite: ";
  message += what;
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int extended = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  switch (extended) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
      return make_error(Errc::conflict, std::move(message));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return make_error(Errc::not_found, std::move(message));
    default:
      break;
  }
  if ((extended & 0xff) == SQLITE_CONSTRAINT) {
    return make_error(Errc::invalid_argument, std::move(message));
  }
  return make_error(Errc::unavailable, std::move(message));
}

// --- SqliteStatement

SqliteStatement::SqliteStatement(sqlite3_stmt* stmt, bool* in_use) : stmt_(stmt), in_use_(in_use) {}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      bind_rc_(other.bind_rc_) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    in_use_ = std::exchange(other.in_use_, nullptr);
    bind_rc_ = other.bind_rc_;
  }
  return *this;
}

SqliteStatement::~SqliteStatement() {
  release();
}

void SqliteStatement::release() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    reset();
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  in_use_ = nullptr;
}

void SqliteStatement::reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

SqliteStatement& SqliteStatement::note_bind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::int64_t value) {
  return note_bind(sqlite3_bind_int64(stmt_, index, value));
}

SqliteStatement& SqliteStatement::bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: sqlite copies, so a temporary argument cannot dangle before step().
  return note_bind(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

SqliteStatement& SqliteStatement::bind(int index, const std::optional<std::string>& value) {
  return value ? bind(index, std::string_view(*value)) : bind_null(index);
}

SqliteStatement& SqliteStatement::bind_null(int index) {
  return note_bind(sqlite3_bind_null(stmt_, index));
}

Result<bool> SqliteStatement::step() {
  if (stmt_ == nullptr) return make_error(Errc::internal, "sqlite: step on an empty statement");
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) return sqlite_error(nullptr, bind_rc_, "bind");
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error err = sqlite_error(db, rc, sqlite3_sql(stmt_));
  // Without a reset the statement would keep reporting the error (and hold its locks).
  sqlite3_reset(stmt_);
  return err;
}

Result<void> SqliteStatement::run() {
  for (;;) {
    auto row = step();
    if (!row.ok()) return row.error();
    if (!*row) return {};
  }
}

std::string SqliteStatement::column_text(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

// --- SqliteConnection

SqliteConnection::SqliteConnection(const std::string& path, int flags, int busy_timeout_ms) {
  // NOMUTEX: the database hands each connection to one thread at a time.
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "sqlite: cannot open '" + path +
                          "': " + (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw std::runtime_error(message);
  }
  sqlite3_extended_result_codes(db_, 1);
  busy_.timeout_ms = busy_timeout_ms;
  sqlite3_busy_handler(db_, &SqliteConnection::on_busy, &busy_);
}

int SqliteConnection::on_busy(void* wait, int count) {
  auto& w = *static_cast<BusyWait*>(wait);
  const auto now = std::chrono::steady_clock::now();
  if (count == 0) w.since = now;
  if (now - w.since >= std::chrono::milliseconds(w.timeout_ms)) return 0;
  // 50 us at first (a commit or a short read is usually over by then), at most 1 ms.
  std::this_thread::sleep_for(std::chrono::microseconds(std::min(50 << std::min(count, 5), 1000)));
  return 1;
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached->stmt);
  sqlite3_close_v2(db_);
}

Result<SqliteStatement> SqliteConnection::prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second->in_use) {
    it->second->in_use = true;
    return SqliteStatement(it->second->stmt, &it->second->in_use);
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, "prepare");
  if (it != cache_.end()) {
    // The cached one is borrowed further up the stack: this copy is owned and finalized.
    return SqliteStatement(stmt, nullptr);
  }
  auto cached = std::make_unique<Cached>();
  cached->stmt = stmt;
  cached->in_use = true;
  bool* in_use = &cached->in_use;
  cache_.emplace(std::string(sql), std::move(cached));
  return SqliteStatement(stmt, in_use);
}

Result<void> SqliteConnection::exec(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt.ok()) return stmt.error();
  return stmt->run();
}

Result<void> SqliteConnection::exec_script(const std::string& sql) {
  char* errmsg = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &errmsg);
  if (rc == SQLITE_OK) return {};
  Error err = sqlite_error(db_, rc, "exec");
  if (errmsg != nullptr) {
    err.message += " (" + std::string(errmsg) + ")";
    sqlite3_free(errmsg);
  }
  return err;
}

// --- SqliteDatabase

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("sqlite store '" + path + "': " + what);
}

bool is_memory_path(const std::string& path) {
  return path == ":memory:" || path.rfind("file::memory:", 0) == 0;
}

// The pragma value cannot be bound, so it comes from this fixed list, never from the caller.
std::string_view checked_synchronous(const std::string& path, const std::string& value) {
  static constexpr std::array<std::string_view, 4> kAllowed = {"OFF", "NORMAL", "FULL", "EXTRA"};
  for (std::string_view allowed : kAllowed) {
    if (value.size() == allowed.size() &&
        std::equal(value.begin(), value.end(), allowed.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        })) {
      return allowed;
    }
  }
  fail(path, "synchronous must be OFF, NORMAL, FULL or EXTRA, not '" + value + "'");
}

// Process-wide sqlite settings; they only take effect before sqlite's first initialization,
// hence once, before the first connection. Statement journals (one per write statement inside
// a multi-statement transaction, i.e. every statement of a group commit) default to a 64 KiB
// first chunk that glibc returns to the OS and takes back each statement: -1 keeps them in
// memory in small chunks, which measured 1.4x the append throughput. If sqlite was already
// initialized elsewhere the call fails harmlessly.
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1); });
}

void must(const std::string& path, const Result<void>& r) {
  if (!r.ok()) fail(path, r.error().message);
}

}  // namespace

SqliteDatabase::SqliteDatabase(SqliteConfig config)
    : SqliteDatabase(std::move(config), sqlite_migrations()) {}

SqliteDatabase::SqliteDatabase(SqliteConfig config, std::span<const SqliteMigration> migrations)
    : config_(std::move(config)), timeout_(std::max(0, config_.busy_timeout_ms)) {
  const std::string& path = config_.path;
  if (path.empty()) fail(path, "no database path configured");
  if (config_.read_connections < 0) fail(path, "read_connections must be >= 0");
  if (config_.busy_timeout_ms < 0) fail(path, "busy_timeout_ms must be >= 0");
  if (config_.mmap_bytes < 0) fail(path, "mmap_bytes must be >= 0");
  if (sqlite3_threadsafe() == 0) fail(path, "libsqlite3 was built without thread support");
  if (sqlite3_libversion_number() < 3035000) {  // RETURNING and DO NOTHING upserts
    fail(path, std::string("libsqlite3 ") + sqlite3_libversion() + " is too old; 3.35 or newer");
  }
  const std::string_view synchronous = checked_synchronous(path, config_.synchronous);
  const bool memory = is_memory_path(path);
  configure_sqlite_once();

  auto writer = std::make_unique<SqliteConnection>(
      path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, config_.busy_timeout_ms);
  must(path, writer->exec_script("PRAGMA foreign_keys = ON;"));
  must(path, writer->exec_script("PRAGMA synchronous = " + std::string(synchronous) + ";"));
  const std::string mmap = "PRAGMA mmap_size = " + std::to_string(config_.mmap_bytes) + ";";
  must(path, writer->exec_script(mmap));
  if (!memory) {
    auto mode = writer->prepare("PRAGMA journal_mode = WAL");
    if (!mode.ok()) fail(path, mode.error().message);
    auto row = mode->step();
    if (!row.ok()) fail(path, row.error().message);
    if (!*row || mode->column_text(0) != "wal") {
      fail(path, "cannot switch to WAL journal mode (is the file on a network filesystem?)");
    }
  }

  auto applied = apply_sqlite_migrations(*writer, migrations);
  if (!applied.ok()) fail(path, "migration failed: " + applied.error().message);
  migrations_applied_ = *applied;
  auto version = sqlite_schema_version(*writer);
  if (!version.ok()) fail(path, version.error().message);
  schema_version_ = *version;
  attach(*writer);
  writer_.add(std::move(writer));
  writer_.time_leases(&writer_wait_, &writer_hold_);

  if (!memory && config_.checkpoint_interval_ms > 0) {
    // Commits no longer checkpoint (and fsync) while holding the writer; a background
    // connection does it instead. The WAL file is cut back to 64 MiB when it is reset.
    must(path, writer_.acquire(timeout_, "the writer")
                   ->conn()
                   .exec_script("PRAGMA wal_autocheckpoint = 0; "
                                "PRAGMA journal_size_limit = 67108864;"));
    SqliteCheckpointerOptions co;
    co.path = path;
    co.interval = std::chrono::milliseconds(config_.checkpoint_interval_ms);
    co.restart_bytes = config_.checkpoint_restart_bytes;
    co.stall_warn = std::chrono::milliseconds(config_.checkpoint_stall_warn_ms);
    checkpointer_ = std::make_unique<SqliteCheckpointer>(co);
    checkpointer_->watch_commits(writer_.acquire(timeout_, "the writer")->conn());
  }

  if (!memory) {
    for (int i = 0; i < config_.read_connections; ++i) {
      auto reader = std::make_unique<SqliteConnection>(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                                                       config_.busy_timeout_ms);
      must(path, reader->exec_script("PRAGMA foreign_keys = ON;"));
      must(path, reader->exec_script(mmap));
      attach(*reader);
      readers_.add(std::move(reader));
    }
  }
}

SqliteDatabase::~SqliteDatabase() = default;

void SqliteDatabase::attach(SqliteConnection& conn) const {
  const std::string& name = config_.attach_as;
  if (config_.attach_path.empty() && name.empty()) return;
  // The schema name cannot be bound: it comes from the code, checked here all the same.
  const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return std::islower(static_cast<unsigned char>(ch)) != 0 || ch == '_';
  });
  if (!plain || config_.attach_path.empty()) fail(config_.path, "bad attach settings");
  // A URI, so that the file opens read-only whatever the connection's own flags.
  std::string uri = "file:";
  for (char ch : config_.attach_path) {
    if (ch == '%' || ch == '?' || ch == '#') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[(static_cast<unsigned char>(ch) >> 4) & 0xF];
      uri += kHex[static_cast<unsigned char>(ch) & 0xF];
    } else {
      uri += ch;
    }
  }
  uri += "?mode=ro";
  auto s = conn.prepare("ATTACH DATABASE ? AS " + name);
  if (!s.ok()) fail(config_.path, s.error().message);
  s->bind_all(uri);
  must(config_.path, s->run());
}

WalStatus SqliteDatabase::wal_status() const {
  return checkpointer_ ? checkpointer_->status() : WalStatus{};
}

void SqliteDatabase::write_metrics(MetricsText& out) const {
  write_wal_metrics(wal_status(), out);
  out.family("imd_sqlite_writer_wait_seconds",
             "How long each write transaction waited for the one SQLite writer.", "histogram");
  writer_wait_.write(out, "imd_sqlite_writer_wait_seconds", {});
  out.family("imd_sqlite_writer_hold_seconds",
             "How long each write transaction held the one SQLite writer.", "histogram");
  writer_hold_.write(out, "imd_sqlite_writer_hold_seconds", {});
}

WalStatus SqliteDatabase::checkpoint_now() {
  return checkpointer_ ? checkpointer_->run_once() : WalStatus{};
}

void SqliteDatabase::Pool::add(std::unique_ptr<SqliteConnection> conn) {
  std::lock_guard lock(mu_);
  idle_.push_back(conn.get());
  all_.push_back(std::move(conn));
}

Result<SqliteDatabase::Pool::Lease> SqliteDatabase::Pool::acquire(std::chrono::milliseconds timeout,
                                                                  std::string_view what) {
  const std::int64_t asked = wait_ != nullptr ? metrics::steady_ns() : 0;
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !idle_.empty(); })) {
    return make_error(Errc::unavailable, "sqlite: timed out waiting for " + std::string(what));
  }
  SqliteConnection* conn = idle_.back();
  idle_.pop_back();
  lock.unlock();
  std::int64_t since = 0;
  if (wait_ != nullptr) {
    since = metrics::steady_ns();
    wait_->observe(static_cast<std::uint64_t>(std::max<std::int64_t>(0, since - asked) / 1000));
  }
  return Lease(this, conn, since);
}

void SqliteDatabase::Pool::release(SqliteConnection* conn, std::int64_t since_ns) {
  if (hold_ != nullptr && since_ns != 0) hold_->observe(metrics::micros_since(since_ns));
  {
    std::lock_guard lock(mu_);
    idle_.push_back(conn);
  }
  cv_.notify_one();
}

Result<void> SqliteDatabase::finish(SqliteConnection& conn, bool ok) {
  if (!ok) return conn.exec("ROLLBACK");
  auto committed = conn.exec("COMMIT");
  if (!committed.ok()) {
    (void)conn.exec("ROLLBACK");
    Error err = committed.error();
    err.code = Errc::unavailable;  // whatever the cause, nothing was stored
    return err;
  }
  return {};
}

}  // namespace imd
