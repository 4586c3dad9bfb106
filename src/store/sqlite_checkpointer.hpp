// SqliteCheckpointer: keeps a WAL database's log short while the server runs.
//
// Commits never checkpoint on their own (the writer runs with wal_autocheckpoint = 0, so a
// commit does not copy pages and fsync inside the writer's critical section); this thread
// does it on a connection of its own, every `interval`, in PASSIVE mode: it copies what it can
// without waiting for the writer or any reader.
//
// A log is only reused from its start by a commit that finds every frame copied. Under
// sustained writes a background checkpoint never gets there (commits append while it
// copies), so the WAL would grow for as long as writes go on. When the log holds more than
// `restart_bytes`, the checkpointer therefore asks the writer (wants_writer()) to run one
// PASSIVE checkpoint itself right after its next commit (checkpoint_on_writer): while it holds
// the writer nothing can be appended, so that checkpoint copies the rest (the background ones
// have copied most of it), and the commit after it starts the log over. The WAL file stays
// near restart_bytes plus one commit's writes (the writer's commits report the log's length
// too, watch_commits()); journal_size_limit cuts a longer file back when it is reset. (A RESTART
// checkpoint from this thread would have to win the writer lock from a writer that commits back to
// back, and polls for it; the hand-off does not.)
// - A connection that has read nothing has not opened the WAL, and sqlite3_wal_checkpoint_v2
//   on it returns OK with log = -1 and does nothing at all (which is how checkpoints once
//   silently never ran). The connection therefore reads the schema before checkpointing, and
//   again whenever a checkpoint answers -1.
// - When frames wait in the log and no checkpoint has copied any for `stall_warn`, it logs a
//   warning (again every stall_warn while that lasts) naming the frames and the WAL's size.
//
// Thread-safe: status(), run_once() (tests) and wants_writer() from any thread;
// checkpoint_on_writer() only by the holder of the writer connection.
// The destructor stops the thread; it does not checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace imd {

class SqliteConnection;

// What the checkpointer last saw, for operators (metrics, logs) and tests.
struct WalStatus {
  bool running = false;                  // false: no background checkpointer (e.g. :memory:)
  std::int64_t log_frames = 0;           // frames in the WAL after the last checkpoint
  std::int64_t copied_frames = 0;        // of those, copied into the database file
  std::uint64_t checkpoints = 0;         // background checkpoints
  std::uint64_t writer_checkpoints = 0;  // checkpoints the writer ran (the log was long)
  std::uint64_t busy = 0;                // checkpoints that found another one running
  std::uint64_t failures = 0;            // checkpoints that failed otherwise
  std::uint64_t written_bytes = 0;       // WAL frames the writer's commits wrote, in bytes
  std::int64_t stalled_ms = 0;           // frames waiting and none copied for this long (0: moving)
  std::uint64_t db_bytes = 0, wal_bytes = 0, shm_bytes = 0;  // file sizes now
};

struct SqliteCheckpointerOptions {
  std::string path;  // the database file; the WAL is path + "-wal"
  std::chrono::milliseconds interval{100};
  std::uint64_t restart_bytes = 32ull << 20;
  std::chrono::milliseconds stall_warn{30000};
};

class MetricsText;

// The status as imd_sqlite_* metrics (see docs/operations.md).
void write_wal_metrics(const WalStatus& status, MetricsText& out);

class SqliteCheckpointer {
 public:
  // Opens its own read-write connection; throws std::runtime_error (start-up only).
  explicit SqliteCheckpointer(SqliteCheckpointerOptions options);
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;
  ~SqliteCheckpointer();

  WalStatus status() const;
  // One background round now, on the caller's thread.
  WalStatus run_once();
  // True when the log is long enough for the writer to help (see above).
  bool wants_writer() const { return wants_writer_.load(std::memory_order_relaxed); }
  // A PASSIVE checkpoint on the writer connection, between its transactions.
  void checkpoint_on_writer(SqliteConnection& writer);
  // Lets the writer's own commits raise wants_writer() (sqlite3_wal_hook: the log's length
  // after each commit), so the bound holds even when this thread is not scheduled for a
  // while (a busy machine): the background rounds are no longer the only ones who look.
  void watch_commits(SqliteConnection& writer);

 private:
  void loop();
  void round();  // with round_mu_ held
  bool open_wal();
  // Records a checkpoint's outcome; with status_mu_ held.
  void note(sqlite3* db, int rc, int log, int copied, bool on_writer);

  SqliteCheckpointerOptions options_;
  std::unique_ptr<SqliteConnection> conn_;
  std::int64_t restart_frames_ = 0;
  std::int64_t frame_bytes_ = 4096 + 24;
  std::atomic<bool> wants_writer_{false};
  // Counted by the writer's commits (watch_commits): the log's length after the last commit,
  // and the frames written in all.
  std::int64_t last_commit_frames_ = 0;
  std::atomic<std::uint64_t> written_frames_{0};

  std::mutex round_mu_;  // one round at a time (the thread, or run_once)
  mutable std::mutex status_mu_;
  WalStatus status_;
  std::chrono::steady_clock::time_point last_progress_;
  std::chrono::steady_clock::time_point last_warning_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace imd
