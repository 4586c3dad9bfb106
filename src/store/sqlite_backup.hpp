// Online backup and restore of the standalone store (`imd backup`, `imd restore`).
//
// backup_sqlite copies a live database with SQLite's backup API from its own read-only
// connection, in one step: that is one read transaction, so the copy is the database as of one
// commit, while the running server keeps writing (WAL: writers never wait for readers; only
// checkpoints pause past that snapshot until the copy ends). The copy is written next to
// `to` as `<to>.partial`, checked (PRAGMA quick_check), synced and renamed, so `to` is either
// absent or a complete database. Every message ACKed before the backup started is in it
// (ACK means committed).
//
// restore_sqlite puts a backup in place as `<data_dir>/imd.db` for a server that is not
// running: the file must pass PRAGMA integrity_check and hold imd's schema; an existing
// imd.db is refused (move it away first), stale -wal/-shm files are refused too.
// Both block and return Result (unavailable: I/O, busy; invalid_argument: bad input files).
#pragma once

#include <cstdint>
#include <string>

#include "common/error.hpp"

namespace imd {

struct BackupReport {
  std::uint64_t pages = 0;
  std::uint64_t bytes = 0;
  std::int64_t millis = 0;
};

Result<BackupReport> backup_sqlite(const std::string& db_path, const std::string& to);
Result<void> restore_sqlite(const std::string& from, const std::string& data_dir);

}  // namespace imd
