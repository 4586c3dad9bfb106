#include "store_mysql/mysql_db.hpp"

#include <errmsg.h>
#include <mysqld_error.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

#include "common/breaker.hpp"
#include "store_mysql/mysql_migrations.hpp"

namespace imd {

// Statements of a batch insert run to thousands of characters: errors quote their start.
static std::string abbrev(std::string_view sql) {
  return sql.size() <= 96 ? std::string(sql) : std::string(sql.substr(0, 93)) + "...";
}

namespace {

bool is_client_error(unsigned errnum) {
  return (errnum >= CR_MIN_ERROR && errnum <= CR_MAX_ERROR) ||
         (errnum >= CER_MIN_ERROR && errnum <= CER_MAX_ERROR);
}

}  // namespace

bool mysql_connection_lost(unsigned errnum) {
  switch (errnum) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
      return true;
    default:
      return false;
  }
}

bool mysql_lock_conflict(unsigned errnum) {
  return errnum == ER_LOCK_DEADLOCK || errnum == ER_LOCK_WAIT_TIMEOUT;
}

Error mysql_to_error(unsigned errnum, std::string_view message, std::string_view what) {
  std::string text = "mysql: ";
  text += what;
  text += ": ";
  text += message;
  text += " (" + std::to_string(errnum) + ")";
  switch (errnum) {
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
      return make_error(Errc::conflict, std::move(text));
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
      return make_error(Errc::not_found, std::move(text));
    case ER_CONSTRAINT_FAILED:
    case ER_BAD_NULL_ERROR:
    case ER_NO_DEFAULT_FOR_FIELD:
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_WARN_DATA_OUT_OF_RANGE:
      return make_error(Errc::invalid_argument, std::move(text));
    case ER_PARSE_ERROR:
    case ER_BAD_FIELD_ERROR:
    case ER_NO_SUCH_TABLE:
    case ER_WRONG_VALUE_COUNT_ON_ROW:
      return make_error(Errc::internal, std::move(text));
    default:
      return make_error(Errc::unavailable, std::move(text));
  }
}

// --- MysqlStatement

MysqlStatement::MysqlStatement(MysqlConnection* conn, MYSQL_STMT* stmt, std::string sql)
    : conn_(conn), stmt_(stmt), sql_(std::move(sql)) {}

MysqlStatement::~MysqlStatement() {
  mysql_stmt_close(stmt_);
}

Error MysqlStatement::fail(std::string_view what) {
  return conn_->fail(mysql_stmt_errno(stmt_), mysql_stmt_error(stmt_), what);
}

MysqlStatement& MysqlStatement::bind_signed(std::int64_t value) {
  if (nparams_ == params_.size()) params_.emplace_back();
  Param& p = params_[nparams_++];
  p.kind = Param::Kind::int64;
  p.i = value;
  return *this;
}

MysqlStatement& MysqlStatement::bind_unsigned(std::uint64_t value) {
  if (nparams_ == params_.size()) params_.emplace_back();
  Param& p = params_[nparams_++];
  p.kind = Param::Kind::uint64;
  p.u = value;
  return *this;
}

MysqlStatement& MysqlStatement::bind(std::string_view value) {
  if (nparams_ == params_.size()) params_.emplace_back();
  Param& p = params_[nparams_++];
  p.kind = Param::Kind::text;
  p.s.assign(value);  // owned: a temporary argument cannot dangle before execute()
  return *this;
}

MysqlStatement& MysqlStatement::bind(const std::optional<std::string>& value) {
  return value ? bind(std::string_view(*value)) : bind_null();
}

MysqlStatement& MysqlStatement::bind_null() {
  if (nparams_ == params_.size()) params_.emplace_back();
  params_[nparams_++].kind = Param::Kind::null;
  return *this;
}

Result<void> MysqlStatement::execute() {
  const std::size_t bound = std::exchange(nparams_, 0);
  const unsigned long expected = mysql_stmt_param_count(stmt_);
  if (bound != expected) {
    return make_error(Errc::internal, "mysql: " + std::to_string(bound) + " values bound for " +
                                          std::to_string(expected) + " parameters of " +
                                          abbrev(sql_));
  }
  param_binds_.assign(bound, MYSQL_BIND{});
  param_lengths_.assign(bound, 0);
  for (std::size_t i = 0; i < bound; ++i) {
    Param& p = params_[i];
    MYSQL_BIND& b = param_binds_[i];
    switch (p.kind) {
      case Param::Kind::null:
        b.buffer_type = MYSQL_TYPE_NULL;
        break;
      case Param::Kind::int64:
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &p.i;
        break;
      case Param::Kind::uint64:
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &p.u;
        b.is_unsigned = 1;
        break;
      case Param::Kind::text:
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = p.s.data();
        b.buffer_length = p.s.size();
        param_lengths_[i] = p.s.size();
        b.length = &param_lengths_[i];
        break;
    }
  }
  if (has_result_) {
    mysql_stmt_free_result(stmt_);
    has_result_ = false;
  }
  if (bound > 0 && mysql_stmt_bind_param(stmt_, param_binds_.data()) != 0) return fail("bind");
  if (mysql_stmt_execute(stmt_) != 0) return fail(abbrev(sql_));
  if (mysql_stmt_field_count(stmt_) == 0) return {};
  // Buffer the whole result, so the connection is free for the next statement, and learn each
  // column's longest value, so a text buffer of that size never truncates.
  if (mysql_stmt_store_result(stmt_) != 0) return fail(abbrev(sql_));
  has_result_ = true;
  return bind_result_columns();
}

Result<void> MysqlStatement::bind_result_columns() {
  MYSQL_RES* meta = mysql_stmt_result_metadata(stmt_);
  if (meta == nullptr) return fail("result metadata");
  const unsigned count = mysql_num_fields(meta);
  const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
  columns_.resize(count);
  result_binds_.assign(count, MYSQL_BIND{});
  for (unsigned i = 0; i < count; ++i) {
    Column& col = columns_[i];
    MYSQL_BIND& b = result_binds_[i];
    switch (fields[i].type) {
      case MYSQL_TYPE_TINY:
      case MYSQL_TYPE_SHORT:
      case MYSQL_TYPE_INT24:
      case MYSQL_TYPE_LONG:
      case MYSQL_TYPE_LONGLONG:
        col.integer = true;
        col.is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &col.value;
        b.is_unsigned = col.is_unsigned ? 1 : 0;
        break;
      default:  // text, blobs, and anything else (e.g. a DECIMAL from COALESCE) as text
        col.integer = false;
        col.text.resize(std::max<unsigned long>(fields[i].max_length, 1));
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = col.text.data();
        b.buffer_length = col.text.size();
        break;
    }
    b.length = &col.length;
    b.is_null = &col.null;
    b.error = &col.error;
  }
  mysql_free_result(meta);
  if (mysql_stmt_bind_result(stmt_, result_binds_.data()) != 0) return fail("bind result");
  return {};
}

Result<bool> MysqlStatement::fetch() {
  if (!has_result_) return false;
  const int rc = mysql_stmt_fetch(stmt_);
  if (rc == 0) return true;
  if (rc == MYSQL_NO_DATA) return false;
  if (rc == MYSQL_DATA_TRUNCATED) {
    return make_error(Errc::internal, "mysql: a column value was truncated in " + abbrev(sql_));
  }
  return fail(abbrev(sql_));
}

std::uint64_t MysqlStatement::affected_rows() const {
  return mysql_stmt_affected_rows(stmt_);
}

bool MysqlStatement::column_is_null(int col) const {
  return columns_[static_cast<std::size_t>(col)].null != 0;
}

std::uint64_t MysqlStatement::column_id(int col) const {
  const Column& c = columns_[static_cast<std::size_t>(col)];
  if (c.null) return 0;
  if (c.integer) return static_cast<std::uint64_t>(c.value);
  std::uint64_t v = 0;
  std::from_chars(c.text.data(), c.text.data() + c.length, v);
  return v;
}

std::int64_t MysqlStatement::column_int64(int col) const {
  const Column& c = columns_[static_cast<std::size_t>(col)];
  if (c.null) return 0;
  if (c.integer) return c.value;
  std::int64_t v = 0;
  std::from_chars(c.text.data(), c.text.data() + c.length, v);
  return v;
}

std::string MysqlStatement::column_text(int col) const {
  const Column& c = columns_[static_cast<std::size_t>(col)];
  if (c.null) return {};
  if (c.integer) {
    return c.is_unsigned ? std::to_string(static_cast<std::uint64_t>(c.value))
                         : std::to_string(c.value);
  }
  return std::string(c.text.data(), c.length);
}

// --- MysqlConnection

namespace {

// mysql_library_init is not thread-safe and mysql_init calls it when it was not done yet.
void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (mysql_library_init(0, nullptr, nullptr) != 0) {
      throw std::runtime_error("mysql: mysql_library_init failed");
    }
  });
}

}  // namespace

Result<std::unique_ptr<MysqlConnection>> MysqlConnection::open(const MysqlConfig& config) {
  init_library_once();
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) return make_error(Errc::unavailable, "mysql: out of memory");
  const unsigned connect_timeout = static_cast<unsigned>(config.connect_timeout_s);
  const unsigned read_timeout = static_cast<unsigned>(config.read_timeout_s);
  const unsigned write_timeout = static_cast<unsigned>(config.write_timeout_s);
  const my_bool no = 0;
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  // Never silently: a reconnect would lose the session settings, the prepared statements and
  // any open transaction. The pool reconnects explicitly instead.
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &no);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  // Run on every (re)connect; all value-free (the number is ours, checked in the config).
  mysql_options(mysql, MYSQL_INIT_COMMAND,
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
                "NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'");
  mysql_options(mysql, MYSQL_INIT_COMMAND,
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  const std::string lock_wait =
      "SET SESSION innodb_lock_wait_timeout = " + std::to_string(config.lock_wait_timeout_s);
  mysql_options(mysql, MYSQL_INIT_COMMAND, lock_wait.c_str());

  const bool socket = !config.unix_socket.empty();
  // CLIENT_FOUND_ROWS: an UPDATE reports the rows it matched, not only those it changed, so
  // "revoke an already revoked token" is found, not missing.
  if (mysql_real_connect(mysql, socket ? nullptr : config.host.c_str(), config.user.c_str(),
                         config.password.c_str(), config.database.c_str(), socket ? 0 : config.port,
                         socket ? config.unix_socket.c_str() : nullptr,
                         CLIENT_FOUND_ROWS) == nullptr) {
    Error err = mysql_to_error(mysql_errno(mysql), ::mysql_error(mysql), "connect");
    err.code = Errc::unavailable;
    mysql_close(mysql);
    return err;
  }
  return std::unique_ptr<MysqlConnection>(new MysqlConnection(mysql));
}

MysqlConnection::~MysqlConnection() {
  cache_.clear();  // statements first: they belong to the connection
  mysql_close(mysql_);
}

Error MysqlConnection::fail(unsigned errnum, const char* message, std::string_view what) {
  last_errno_ = errnum;
  if (is_client_error(errnum) || mysql_connection_lost(errnum)) broken_ = true;
  return mysql_to_error(errnum, message != nullptr ? message : "", what);
}

Result<MysqlStatement*> MysqlConnection::prepare(std::string_view sql) {
  std::string key(sql);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second.get();
  MYSQL_STMT* stmt = mysql_stmt_init(mysql_);
  if (stmt == nullptr) return fail(mysql_errno(mysql_), ::mysql_error(mysql_), "statement init");
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    Error err = fail(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), "prepare " + key);
    mysql_stmt_close(stmt);
    return err;
  }
  const my_bool yes = 1;
  mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
  auto owned = std::unique_ptr<MysqlStatement>(new MysqlStatement(this, stmt, key));
  MysqlStatement* raw = owned.get();
  cache_.emplace(std::move(key), std::move(owned));
  return raw;
}

Result<void> MysqlConnection::execute_text(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) {
    return fail(mysql_errno(mysql_), ::mysql_error(mysql_), abbrev(sql));
  }
  // Value-free statements return no rows; drain anything so the connection stays in sync.
  if (MYSQL_RES* res = mysql_store_result(mysql_); res != nullptr) mysql_free_result(res);
  return {};
}

unsigned long MysqlConnection::server_thread_id() const {
  return mysql_thread_id(mysql_);
}

unsigned long MysqlConnection::server_version() const {
  return mysql_get_server_version(mysql_);
}

// --- MysqlDatabase

MysqlDatabase::Tracked MysqlDatabase::track_call() {
  Breaker* b = pool_.breaker.load(std::memory_order_acquire);
  if (b == nullptr) return {};
  const Breaker::Permit p = b->track();
  return Tracked{b, p.generation, p.ignored, p.started};
}

void MysqlDatabase::end_call(const Tracked& call, const Error* error) {
  call.breaker->record_result(Breaker::Permit{call.generation, false, call.ignored, call.started},
                              error);
}

void MysqlDatabase::Pool::add(std::unique_ptr<MysqlConnection> conn) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(conn));
  ++open_;
}

Result<MysqlDatabase::Pool::Lease> MysqlDatabase::Pool::acquire(bool fresh) {
  if (Breaker* b = breaker.load(std::memory_order_acquire); b != nullptr && b->refusing()) {
    return b->refusal();
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.acquire_timeout_ms);
  std::unique_ptr<MysqlConnection> stale;  // closed outside the lock
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return !idle_.empty() || open_ < config_.pool_size; })) {
      return make_error(Errc::unavailable, "mysql: no connection free within " +
                                               std::to_string(config_.acquire_timeout_ms) +
                                               " ms (pool_size " +
                                               std::to_string(config_.pool_size) + ")");
    }
    if (!idle_.empty()) {
      if (!fresh) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(conn));
      }
      if (open_ >= config_.pool_size) {
        // A fresh one is wanted and the pool is full: an idle one makes room.
        stale = std::move(idle_.back());
        idle_.pop_back();
        --open_;
      }
    }
    ++open_;
  }
  stale.reset();
  auto opened = MysqlConnection::open(config_);
  if (!opened.ok()) {
    {
      std::lock_guard lock(mu_);
      --open_;
    }
    cv_.notify_one();
    return opened.error();
  }
  return Lease(this, std::move(*opened));
}

void MysqlDatabase::Pool::release(std::unique_ptr<MysqlConnection> conn) {
  const bool broken = conn->broken();
  if (broken) conn.reset();  // closes the socket; outside the lock
  {
    std::lock_guard lock(mu_);
    if (broken) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  cv_.notify_one();
}

MysqlDatabase::AbortGuard::~AbortGuard() {
  if (conn != nullptr) rollback(*conn);
}

void MysqlDatabase::rollback(MysqlConnection& conn) {
  if (conn.broken()) return;
  if (!conn.execute_text("ROLLBACK").ok()) conn.mark_broken();
}

void MysqlDatabase::backoff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int ceiling_ms = 1 << std::min(attempt, 6);  // 2, 4, 8, ... 64 ms
  std::uniform_int_distribution<int> pick(1, ceiling_ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng)));
}

namespace {

[[noreturn]] void fail_open(const MysqlConfig& c, const std::string& what) {
  const std::string where =
      c.unix_socket.empty() ? c.host + ":" + std::to_string(c.port) : c.unix_socket;
  throw std::runtime_error("mysql store '" + c.database + "' at " + where + ": " + what);
}

}  // namespace

MysqlDatabase::MysqlDatabase(MysqlConfig config) : config_(std::move(config)) {
  const MysqlConfig& c = config_;
  if (c.database.empty()) fail_open(c, "no database configured");
  if (c.user.empty()) fail_open(c, "no user configured");
  if (c.pool_size < 1) fail_open(c, "pool_size must be >= 1");
  if (c.connect_timeout_s < 1 || c.read_timeout_s < 1 || c.write_timeout_s < 1) {
    fail_open(c, "connect/read/write timeouts must be >= 1 s");
  }
  if (c.acquire_timeout_ms < 0) fail_open(c, "acquire_timeout_ms must be >= 0");
  if (c.lock_wait_timeout_s < 1 || c.lock_wait_timeout_s >= c.read_timeout_s) {
    fail_open(c, "lock_wait_timeout_s must be >= 1 and below read_timeout_s");
  }
  auto conn = MysqlConnection::open(c);
  if (!conn.ok()) fail_open(c, conn.error().message);
  // utf8mb4_uca1400_* collations (user.name) arrived in MariaDB 10.10.
  if ((*conn)->server_version() < 101000) {
    fail_open(c, "MariaDB 10.10 or newer is required, the server is " +
                     std::to_string((*conn)->server_version()));
  }
  auto applied =
      apply_mysql_migrations(**conn, mysql_migrations(), std::max(c.connect_timeout_s, 30));
  if (!applied.ok()) fail_open(c, "migration failed: " + applied.error().message);
  migrations_applied_ = *applied;
  auto version = mysql_schema_version(**conn);
  if (!version.ok()) fail_open(c, version.error().message);
  schema_version_ = *version;
  pool_.add(std::move(*conn));
}

MysqlDatabase::~MysqlDatabase() = default;

}  // namespace imd
