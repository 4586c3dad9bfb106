#include "store/sqlite_backup.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>

namespace imd {
namespace fs = std::filesystem;

namespace {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, Closer>;

Error sqlite_error(sqlite3* db, const std::string& what) {
  return make_error(Errc::unavailable, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Result<Db> open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, "opening " + path);
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

// The single-row, single-column text answer of `sql` ("ok" for the checks).
Result<std::string> scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return sqlite_error(db, sql);
  std::string out;
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    out = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_error(db, sql);
  return out;
}

Result<void> fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::unavailable, "cannot open " + path + " to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return make_error(Errc::unavailable, "fsync of " + path + " failed");
  return {};
}

// The file passes `check` and holds imd's tables.
Result<void> verify(const std::string& path, const char* check) {
  auto db = open(path, SQLITE_OPEN_READONLY);
  if (!db) return db.error();
  auto ok = scalar(db->get(), check);
  if (!ok) return ok.error();
  if (*ok != "ok") return make_error(Errc::invalid_argument, path + " is damaged: " + *ok);
  auto tables = scalar(db->get(),
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                       "('user', 'message', 'dm', 'channel_message')");
  if (!tables) return tables.error();
  if (*tables != "4") {
    return make_error(Errc::invalid_argument, path + " is not an imd database");
  }
  return {};
}

}  // namespace

Result<BackupReport> backup_sqlite(const std::string& db_path, const std::string& to) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::exists(db_path, ec))
    return make_error(Errc::invalid_argument, "no database at " + db_path);
  if (fs::exists(to, ec))
    return make_error(Errc::invalid_argument, to + " exists: not overwritten");
  auto src = open(db_path, SQLITE_OPEN_READONLY);
  if (!src) return src.error();
  const std::string partial = to + ".partial";
  fs::remove(partial, ec);
  BackupReport report;
  {
    auto dst = open(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!dst) return dst.error();
    sqlite3_backup* b = sqlite3_backup_init(dst->get(), "main", src->get(), "main");
    if (b == nullptr) return sqlite_error(dst->get(), "starting the backup");
    // One step: one read transaction, one consistent snapshot (see the header). BUSY/LOCKED
    // are retried within the busy timeout by the connections' handlers.
    const int rc = sqlite3_backup_step(b, -1);
    report.pages = static_cast<std::uint64_t>(sqlite3_backup_pagecount(b));
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      fs::remove(partial, ec);
      return make_error(Errc::unavailable,
                        std::string("backup of ") + db_path + " failed: " + sqlite3_errstr(rc));
    }
    // A self-contained file: no -wal beside it.
    if (auto j = scalar(dst->get(), "PRAGMA journal_mode = DELETE"); !j) return j.error();
  }
  if (auto v = verify(partial, "PRAGMA quick_check"); !v) {
    fs::remove(partial, ec);
    return v.error();
  }
  if (auto s = fsync_path(partial); !s) return s.error();
  fs::rename(partial, to, ec);
  if (ec) return make_error(Errc::unavailable, "renaming to " + to + ": " + ec.message());
  const auto dir = fs::path(to).has_parent_path() ? fs::path(to).parent_path() : fs::path(".");
  if (auto s = fsync_path(dir.string()); !s) return s.error();
  report.bytes = fs::file_size(to, ec);
  report.millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return report;
}

Result<void> restore_sqlite(const std::string& from, const std::string& data_dir) {
  std::error_code ec;
  const fs::path db = fs::path(data_dir) / "imd.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path p = db.string() + suffix;
    if (fs::exists(p, ec)) {
      return make_error(Errc::invalid_argument,
                        p.string() + " exists: stop the server and move the old database away");
    }
  }
  if (auto v = verify(from, "PRAGMA integrity_check"); !v) return v.error();
  // A search.db left here indexes the database moved away, not this one: it goes, and the
  // server rebuilds it from the restored messages (sqlite_search.hpp).
  for (const char* f : {"search.db", "search.db-wal", "search.db-shm"}) {
    fs::remove(fs::path(data_dir) / f, ec);
    if (ec)
      return make_error(Errc::unavailable,
                        "removing the old " + std::string(f) + ": " + ec.message());
  }
  fs::create_directories(data_dir, ec);
  if (ec) return make_error(Errc::unavailable, "creating " + data_dir + ": " + ec.message());
  const std::string partial = db.string() + ".partial";
  fs::copy_file(from, partial, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error(Errc::unavailable, "copying " + from + ": " + ec.message());
  fs::permissions(partial, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (auto s = fsync_path(partial); !s) return s.error();
  fs::rename(partial, db, ec);
  if (ec) return make_error(Errc::unavailable, "renaming to " + db.string() + ": " + ec.message());
  return fsync_path(data_dir);
}

}  // namespace imd
