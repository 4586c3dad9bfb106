// Helpers for tests against the MariaDB that scripts/services.sh starts (the CTest fixture
// `mariadb` sets IMD_TEST_MYSQL_HOST/PORT/USER/PASSWORD/DATABASE): connection settings from the
// environment, and a scratch database per test, created empty and dropped afterwards.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "store_mysql/mysql_db.hpp"

namespace imd::testing {

// The test server's settings, or nullopt when IMD_TEST_MYSQL_PORT is unset (the binary was run
// outside ctest): MySQL tests then skip with a message that says how to run them.
inline std::optional<MysqlConfig> mysql_test_config() {
  auto env = [](const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr && *v != '\0' ? v : fallback);
  };
  const char* port = std::getenv("IMD_TEST_MYSQL_PORT");
  if (port == nullptr || *port == '\0') return std::nullopt;
  MysqlConfig c;
  c.host = env("IMD_TEST_MYSQL_HOST", "127.0.0.1");
  c.port = static_cast<unsigned>(std::stoul(port));
  c.user = env("IMD_TEST_MYSQL_USER", "imd");
  c.password = env("IMD_TEST_MYSQL_PASSWORD", "");
  c.database = env("IMD_TEST_MYSQL_DATABASE", "imd");
  return c;
}

inline constexpr const char* kMysqlSkipReason =
    "IMD_TEST_MYSQL_PORT is not set: run through ctest (its fixture starts MariaDB with "
    "scripts/services.sh), or start one yourself and set IMD_TEST_MYSQL_*";

// Runs value-free administrative SQL (CREATE/DROP DATABASE, KILL) on a connection of its own.
// The text is built by the tests from names they generated, never from outside input.
inline void mysql_admin(const MysqlConfig& server, const std::string& sql) {
  MysqlConfig c = server;
  c.database.clear();
  auto conn = MysqlConnection::open(c);
  if (!conn.ok()) throw std::runtime_error(conn.error().message);
  auto done = (*conn)->execute_text(sql);
  if (!done.ok()) throw std::runtime_error(done.error().message);
}

// A fresh, empty database named imd_t_<pid>_<n>_<time> (the imd user may create databases
// named imd*), dropped by the destructor.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(MysqlConfig server) : server_(std::move(server)) {
    static std::atomic<int> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    name_ = "imd_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(static_cast<unsigned long long>(now) % 1000000);
    mysql_admin(server_,
                "CREATE DATABASE `" + name_ + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
  }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  ~ScratchDatabase() {
    try {
      mysql_admin(server_, "DROP DATABASE IF EXISTS `" + name_ + "`");
    } catch (const std::exception&) {
      // The server may be gone already; a leftover scratch database is harmless.
    }
  }

  const std::string& name() const { return name_; }
  // Settings for a store on this database.
  MysqlConfig config() const {
    MysqlConfig c = server_;
    c.database = name_;
    return c;
  }
  const MysqlConfig& server() const { return server_; }

 private:
  MysqlConfig server_;
  std::string name_;
};

}  // namespace imd::testing
