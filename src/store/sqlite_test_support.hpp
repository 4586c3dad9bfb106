// Helpers for the store's unit tests: a temporary directory per test, removed afterwards,
// and builders for users, spaces, channels and messages.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "domain/model.hpp"
#include "store/sqlite_db.hpp"

namespace imd::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "imd_store_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::shared_ptr<SqliteDatabase> open_db(const std::string& path, int readers = 4,
                                               int busy_timeout_ms = 5000) {
  return std::make_shared<SqliteDatabase>(SqliteConfig{.path = path,
                                                       .synchronous = "NORMAL",
                                                       .read_connections = readers,
                                                       .busy_timeout_ms = busy_timeout_ms});
}

inline User make_user(Id id, std::string name, std::string phone = {}) {
  return User{.id = id,
              .name = std::move(name),
              .avatar = "a" + std::to_string(id),
              .phone = phone.empty() ? "+1555" + std::to_string(id) : std::move(phone),
              .created_at = 1000 + static_cast<Millis>(id)};
}

inline NewMessage channel_msg(Id id, Id channel_id, Id from, std::string cid,
                              std::string body = "hi") {
  NewMessage n;
  n.msg = Message{.id = id,
                  .conv = ConvKey::channel(channel_id),
                  .from = from,
                  .type = "text",
                  .body = std::move(body),
                  .created_at = 5000 + static_cast<Millis>(id),
                  .cid = std::move(cid)};
  return n;
}

inline NewMessage dm_msg(Id id, Id from, Id to, std::string cid, std::string body = "hi") {
  NewMessage n;
  n.msg = Message{.id = id,
                  .conv = ConvKey::dm(from, to),
                  .from = from,
                  .to = to,
                  .type = "text",
                  .body = std::move(body),
                  .created_at = 5000 + static_cast<Millis>(id),
                  .cid = std::move(cid)};
  return n;
}

}  // namespace imd::testing
