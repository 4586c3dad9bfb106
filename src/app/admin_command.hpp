// The offline/online admin commands of the binary, besides serving:
//
//   imd backup --to FILE [config flags]     online backup of the standalone store (SQLite
//                                           backup API) while the server runs
//   imd restore --from FILE [config flags]  puts a backup in place as <data_dir>/imd.db
//                                           (the server stopped, no imd.db there)
//
// The config flags (--data-dir, --config, IMD_* variables) are the server's: the command reads
// the database where that server keeps it. docs/operations.md, "Backup and restore".
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace imd {

// nullopt when args do not name an admin command (the server runs); else the exit status
// (0 done, 1 failed, 2 usage), after printing what happened.
std::optional<int> run_admin_command(const std::vector<std::string>& args);

}  // namespace imd
