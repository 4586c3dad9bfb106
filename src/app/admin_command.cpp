#include "app/admin_command.hpp"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/config.hpp"
#include "store/sqlite_backup.hpp"

namespace imd {

std::optional<int> run_admin_command(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "backup" && args[0] != "restore")) return std::nullopt;
  const bool backup = args[0] == "backup";
  const std::string file_flag = backup ? "--to" : "--from";
  std::string file;
  std::vector<std::string> rest;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == file_flag && i + 1 < args.size()) {
      file = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  if (file.empty()) {
    std::cerr << "usage: imd " << args[0] << " " << file_flag
              << " FILE [--data-dir DIR | --config FILE ...]\n";
    return 2;
  }
  auto cl = parse_command_line(rest, [](const char* name) { return std::getenv(name); });
  if (!cl) {
    std::cerr << "imd: " << cl.error().message << "\n";
    return 2;
  }
  if (cl->config.store != "sqlite") {
    std::cerr << "imd " << args[0]
              << ": only the standalone store (store = sqlite); back up MariaDB with "
                 "mariadb-backup (docs/operations.md)\n";
    return 2;
  }
  const std::string db = (std::filesystem::path(cl->config.data_dir) / "imd.db").string();
  if (backup) {
    auto r = backup_sqlite(db, file);
    if (!r) {
      std::cerr << "imd backup: " << r.error().message << "\n";
      return 1;
    }
    std::cout << "imd backup: " << db << " -> " << file << " (" << r->pages << " pages, "
              << r->bytes << " bytes, " << r->millis << " ms)\n";
    return 0;
  }
  auto r = restore_sqlite(file, cl->config.data_dir);
  if (!r) {
    std::cerr << "imd restore: " << r.error().message << "\n";
    return 1;
  }
  std::cout << "imd restore: " << file << " -> " << db << "\n";
  return 0;
}

}  // namespace imd
