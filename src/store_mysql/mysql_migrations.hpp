// Versioned schema migrations for the MySQL (MariaDB) store.
//
// A migration is (version, DDL statements). The applied versions are rows of `schema_version`.
// DDL is not transactional in MySQL (every CREATE/ALTER commits implicitly), so a migration
// cannot be rolled back as a unit the way the SQLite adapter's can. Instead:
// - migrations are serialized across processes by a named server lock (GET_LOCK, one per
//   database), and the version is re-read under it, so each is applied once;
// - each statement is idempotent (CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, ...),
//   so a migration interrupted half-way is completed by the next open;
// - the version row is inserted in its own transaction after every statement succeeded.
// Migrations are append-only: never edit a released one, add the next version instead.
#pragma once

#include <span>
#include <string_view>

#include "common/error.hpp"
#include "store_mysql/mysql_db.hpp"

namespace imd {

struct MysqlMigration {
  int version;
  std::span<const std::string_view> statements;
};

// The store's migrations, ascending by version.
std::span<const MysqlMigration> mysql_migrations();

// Applies the migrations newer than the database's version, in order, waiting at most
// lock_timeout_s for another process that is migrating the same database. Returns how many
// this call applied. invalid_argument when the list is not strictly ascending; unavailable
// when the lock is not had in time.
Result<int> apply_mysql_migrations(MysqlConnection& conn,
                                   std::span<const MysqlMigration> migrations, int lock_timeout_s);

// The highest applied version (0 for a fresh database).
Result<int> mysql_schema_version(MysqlConnection& conn);

}  // namespace imd
