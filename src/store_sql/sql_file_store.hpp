// SqlFileStore<D>: the FileStore port (domain/ports/file_store.hpp) written once for both SQL
// engines, over the same dialects and database as SqlStore<D> (sql_store.hpp): tables `upload`
// (one row per file, kept after its bytes are removed, with deleted_at set) and `upload_share`
// (file, message, conversation), docs/schema.md. SqliteFileStore (src/store) and
// MysqlFileStore (src/store_mysql) instantiate it.
//
// Thread-safe and blocking; every write one transaction. Errors as the port says.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "domain/ports/file_store.hpp"
#include "store_sql/sql_store.hpp"

namespace imd {

template <SqlDialect D>
class SqlFileStore final : public FileStore {
 public:
  using Database = typename D::Database;
  using Connection = typename D::Connection;

  explicit SqlFileStore(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  Result<void> create_file(const FileMeta& f) override {
    return db_->write([&](Connection& c) -> Result<void> {
      auto n = D::change(c,
                         "INSERT INTO upload (id, uploader, name, size, type, sha256, width,"
                         " height, created_at, thumb_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         f.id, f.uploader, f.name, Id{f.size}, f.type, f.sha256, f.width, f.height,
                         f.created_at, f.thumb_type);
      if (!n.ok()) return n.error();
      return {};
    });
  }

  Result<FileMeta> file_by_id(std::string_view id) override {
    return db_->read([&](Connection& c) {
      return sql::one<FileMeta>(
          D::query(c,
                   "SELECT id, uploader, name, size, type, sha256, width, height, created_at,"
                   " deleted_at, thumb_type FROM upload WHERE id = ?",
                   id),
          [](const auto& r) {
            return FileMeta{.id = r.column_text(0),
                            .uploader = r.column_id(1),
                            .name = r.column_text(2),
                            .size = static_cast<std::uint64_t>(r.column_int64(3)),
                            .type = r.column_text(4),
                            .sha256 = r.column_text(5),
                            .width = static_cast<std::uint32_t>(r.column_int64(6)),
                            .height = static_cast<std::uint32_t>(r.column_int64(7)),
                            .created_at = r.column_int64(8),
                            .deleted_at = r.column_int64(9),
                            .thumb_type = r.column_text(10)};
          },
          "file");
    });
  }

  Result<std::uint64_t> bytes_of_uploader(Id user) override {
    return db_->read([&](Connection& c) {
      return sql::one<std::uint64_t>(
          D::query(c,
                   "SELECT CAST(COALESCE(SUM(size), 0) AS SIGNED) FROM upload"
                   " WHERE uploader = ? AND deleted_at = 0",
                   user),
          [](const auto& r) { return static_cast<std::uint64_t>(r.column_int64(0)); }, "sum");
    });
  }

  Result<void> add_share(std::string_view file_id, const FileShare& s) override {
    return db_->write([&](Connection& c) -> Result<void> {
      auto there =
          sql::exists(D::query(c, "SELECT 1 FROM upload_share WHERE file_id = ? AND message_id = ?",
                               file_id, s.message_id));
      if (!there.ok()) return there.error();
      if (*there) return {};
      auto n = D::change(c,
                         "INSERT INTO upload_share (file_id, message_id, kind, conv_a, conv_b)"
                         " VALUES (?, ?, ?, ?, ?)",
                         file_id, s.message_id, static_cast<std::uint32_t>(s.conv.kind), s.conv.a,
                         s.conv.b);
      // Raced by the same share (a redelivered send): one row is what was asked for.
      if (!n.ok() && n.error().code != Errc::conflict) return n.error();
      return {};
    });
  }

  Result<std::vector<FileShare>> shares_of(std::string_view file_id) override {
    return db_->read([&](Connection& c) {
      return sql::all<FileShare>(
          D::query(c,
                   "SELECT message_id, kind, conv_a, conv_b FROM upload_share WHERE file_id = ?"
                   " ORDER BY message_id",
                   file_id),
          [](const auto& r) {
            return FileShare{.message_id = r.column_id(0),
                             .conv = ConvKey{static_cast<ConvKind>(r.column_int64(1)),
                                             r.column_id(2), r.column_id(3)}};
          });
    });
  }

  Result<void> remove_share(std::string_view file_id, Id message_id) override {
    return db_->write([&](Connection& c) -> Result<void> {
      auto n = D::change(c, "DELETE FROM upload_share WHERE file_id = ? AND message_id = ?",
                         file_id, message_id);
      if (!n.ok()) return n.error();
      return {};
    });
  }

  Result<bool> mark_deleted(std::string_view file_id, Millis now) override {
    return db_->write([&](Connection& c) -> Result<bool> {
      auto n = D::change(c, "UPDATE upload SET deleted_at = ? WHERE id = ? AND deleted_at = 0", now,
                         file_id);
      if (!n.ok()) return n.error();
      return *n > 0;
    });
  }

  Result<std::vector<std::string>> orphans(Millis before, std::uint32_t limit) override {
    return db_->read([&](Connection& c) {
      return sql::all<std::string>(
          D::query(c,
                   "SELECT u.id FROM upload u WHERE u.deleted_at = 0 AND u.created_at < ?"
                   " AND NOT EXISTS (SELECT 1 FROM upload_share s WHERE s.file_id = u.id)"
                   " ORDER BY u.created_at LIMIT ?",
                   before, limit),
          [](const auto& r) { return r.column_text(0); });
    });
  }

  Result<std::string> avatar_key(AvatarOf kind, Id owner) override {
    return db_->read([&](Connection& c) { return read_avatar(c, kind, owner); });
  }

  Result<std::string> set_avatar(AvatarOf kind, Id owner, std::string_view key,
                                 Millis now) override {
    return db_->write([&](Connection& c) -> Result<std::string> {
      auto old = read_avatar(c, kind, owner);
      if (!old) return old;
      auto n = old->empty() ? D::change(c,
                                        "INSERT INTO avatar (kind, owner_id, blob_key, updated_at)"
                                        " VALUES (?, ?, ?, ?)",
                                        static_cast<std::uint32_t>(kind), owner, key, now)
                            : D::change(c,
                                        "UPDATE avatar SET blob_key = ?, updated_at = ?"
                                        " WHERE kind = ? AND owner_id = ?",
                                        key, now, static_cast<std::uint32_t>(kind), owner);
      if (!n.ok()) return n.error();
      return old;
    });
  }

 private:
  static Result<std::string> read_avatar(Connection& c, AvatarOf kind, Id owner) {
    auto key = sql::one<std::string>(
        D::query(c, "SELECT blob_key FROM avatar WHERE kind = ? AND owner_id = ?",
                 static_cast<std::uint32_t>(kind), owner),
        [](const auto& r) { return r.column_text(0); }, "avatar");
    if (!key && key.error().code == Errc::not_found) return std::string();
    return key;
  }

  const std::shared_ptr<Database> db_;
};

}  // namespace imd
