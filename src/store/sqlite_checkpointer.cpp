#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/log.hpp"
#include "common/metrics_text.hpp"
#include "common/thread_name.hpp"
#include "store/sqlite_db.hpp"

namespace imd {
namespace {

std::uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

void write_wal_metrics(const WalStatus& s, MetricsText& out) {
  auto d = [](auto v) { return static_cast<double>(v); };
  out.gauge("imd_sqlite_db_bytes", "Size of the SQLite database file.", d(s.db_bytes));
  out.gauge("imd_sqlite_wal_bytes", "Size of the SQLite WAL file.", d(s.wal_bytes));
  out.gauge("imd_sqlite_shm_bytes", "Size of the SQLite WAL index (-shm) file.", d(s.shm_bytes));
  out.gauge("imd_sqlite_wal_frames", "Frames in the WAL at the last checkpoint.", d(s.log_frames));
  out.gauge("imd_sqlite_wal_copied_frames",
            "Frames of the WAL copied into the database at the last checkpoint.",
            d(s.copied_frames));
  out.gauge("imd_sqlite_checkpoint_stalled_seconds",
            "How long WAL frames have waited with no checkpoint copying any (0: moving).",
            d(s.stalled_ms) / 1000.0);
  out.counter("imd_sqlite_checkpoints_total", "Background WAL checkpoints.", d(s.checkpoints));
  out.counter("imd_sqlite_writer_checkpoints_total",
              "WAL checkpoints run by the writer because the log was long.",
              d(s.writer_checkpoints));
  out.counter("imd_sqlite_checkpoint_busy_total",
              "WAL checkpoints that found another checkpoint running.", d(s.busy));
  out.counter("imd_sqlite_checkpoint_failures_total", "WAL checkpoints that failed.",
              d(s.failures));
  out.counter("imd_sqlite_wal_written_bytes_total",
              "WAL bytes the commits wrote (whole pages): divided by the messages stored, the "
              "store's write amplification.",
              d(s.written_bytes));
}

SqliteCheckpointer::SqliteCheckpointer(SqliteCheckpointerOptions options)
    : options_(std::move(options)) {
  // PASSIVE checkpoints never wait, so no busy timeout.
  conn_ =
      std::make_unique<SqliteConnection>(options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, 0);
  // A reset log longer than this is cut back (the writer has the same setting).
  if (auto r = conn_->exec_script("PRAGMA journal_size_limit = 67108864;"); !r.ok()) {
    throw std::runtime_error("sqlite checkpointer: " + r.error().message);
  }
  std::int64_t page_size = 4096;
  if (auto s = conn_->prepare("PRAGMA page_size"); s.ok()) {
    if (auto row = s->step(); row.ok() && *row) page_size = s->column_int64(0);
  }
  // A WAL frame is a page and a 24-byte header.
  frame_bytes_ = page_size + 24;
  restart_frames_ = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(options_.restart_bytes) / (page_size + 24));
  status_.running = true;
  last_progress_ = last_warning_ = std::chrono::steady_clock::now();
  open_wal();
  thread_ = std::thread([this] {
    set_thread_name("imd-checkpoint");
    loop();
  });
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

WalStatus SqliteCheckpointer::status() const {
  std::lock_guard lock(status_mu_);
  WalStatus s = status_;
  s.db_bytes = file_bytes(options_.path);
  s.wal_bytes = file_bytes(options_.path + "-wal");
  s.shm_bytes = file_bytes(options_.path + "-shm");
  s.written_bytes =
      written_frames_.load(std::memory_order_relaxed) * static_cast<std::uint64_t>(frame_bytes_);
  return s;
}

WalStatus SqliteCheckpointer::run_once() {
  {
    std::lock_guard lock(round_mu_);
    round();
  }
  return status();
}

void SqliteCheckpointer::loop() {
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, options_.interval, [this] { return stopping_; })) {
    lock.unlock();
    {
      std::lock_guard round_lock(round_mu_);
      round();
    }
    lock.lock();
  }
}

// Any read makes the pager look at the database header, see WAL mode and open the log.
bool SqliteCheckpointer::open_wal() {
  auto r = conn_->exec_script("PRAGMA schema_version;");
  if (!r.ok()) LOG_WARN("sqlite checkpointer cannot read the database: " << r.error().message);
  return r.ok();
}

void SqliteCheckpointer::round() {
  sqlite3* db = conn_->handle();
  int log = -1, copied = -1;
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  if (rc == SQLITE_OK && log < 0 && open_wal()) {
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  }
  std::lock_guard lock(status_mu_);
  note(db, rc, log, copied, false);
  if (rc == SQLITE_OK && log >= 0) {
    wants_writer_.store(log > restart_frames_, std::memory_order_relaxed);
  }
}

void SqliteCheckpointer::watch_commits(SqliteConnection& writer) {
  sqlite3_wal_hook(
      writer.handle(),
      [](void* self, sqlite3*, const char*, int frames) {
        auto* c = static_cast<SqliteCheckpointer*>(self);
        // A shorter log than after the last commit: it started over, and this commit's frames
        // are all of it. (One writer: the hook runs on its thread only.)
        const std::int64_t added =
            frames >= c->last_commit_frames_ ? frames - c->last_commit_frames_ : frames;
        c->last_commit_frames_ = frames;
        c->written_frames_.fetch_add(static_cast<std::uint64_t>(added), std::memory_order_relaxed);
        if (frames > c->restart_frames_) c->wants_writer_.store(true, std::memory_order_relaxed);
        return SQLITE_OK;
      },
      this);
}

void SqliteCheckpointer::checkpoint_on_writer(SqliteConnection& writer) {
  sqlite3* db = writer.handle();
  int log = -1, copied = -1;
  const int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  // Everything copied: the next commit starts the log over (unless a reader still holds an
  // old snapshot then; the next background round asks again).
  if (rc == SQLITE_OK && log >= 0 && copied >= log) {
    wants_writer_.store(false, std::memory_order_relaxed);
  }
  std::lock_guard lock(status_mu_);
  note(db, rc, log, copied, true);
}

void SqliteCheckpointer::note(sqlite3* db, int rc, int log, int copied, bool on_writer) {
  const auto now = std::chrono::steady_clock::now();
  ++(on_writer ? status_.writer_checkpoints : status_.checkpoints);
  if (rc == SQLITE_BUSY) {
    ++status_.busy;  // another checkpoint was running: it does the work
    return;
  }
  if (rc != SQLITE_OK) {
    ++status_.failures;
    LOG_WARN("sqlite checkpoint failed: " << sqlite3_errmsg(db));
    return;
  }
  if (log < 0) return;  // no WAL opened yet (nothing was ever written)
  // Progress: frames were copied, the log started over, or nothing waits.
  const bool moved = copied > status_.copied_frames || log < status_.log_frames || copied >= log;
  status_.log_frames = log;
  status_.copied_frames = copied;
  if (moved) {
    last_progress_ = now;
    status_.stalled_ms = 0;
    return;
  }
  status_.stalled_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress_).count();
  if (now - last_progress_ >= options_.stall_warn && now - last_warning_ >= options_.stall_warn) {
    last_warning_ = now;
    LOG_WARN("sqlite checkpoints make no progress for "
             << static_cast<double>(status_.stalled_ms) / 1000.0 << " s: " << copied << " of "
             << log << " WAL frames copied, WAL " << file_bytes(options_.path + "-wal") / (1 << 20)
             << " MiB (a long read transaction holds an old snapshot?)");
  }
}

}  // namespace imd
