// Versioned schema migrations for the SQLite store.
//
// A migration is (version, SQL script). The applied versions are rows of `schema_version`.
// Each pending migration runs in its own BEGIN IMMEDIATE transaction together with the insert
// of its version row, so a crash or a failing script leaves the database at the previous
// version, and two processes opening the same file at once apply each migration once.
// Migrations are append-only: never edit a released one, add the next version instead.
#pragma once

#include <span>
#include <string_view>

#include "common/error.hpp"
#include "store/sqlite_db.hpp"

namespace imd {

// The store's migrations (imd.db), ascending by version.
std::span<const SqliteMigration> sqlite_migrations();
// search.db's (SqliteSearch), ascending by version.
std::span<const SqliteMigration> sqlite_search_migrations();

// Applies the migrations of `migrations` newer than the database's version, in order, on
// `writer` (which must not be in a transaction). Returns how many were applied; on error the
// failing migration is rolled back and the earlier ones stay applied. invalid_argument when the
// list is not strictly ascending.
Result<int> apply_sqlite_migrations(SqliteConnection& writer,
                                    std::span<const SqliteMigration> migrations);

// The highest applied version (0 for a fresh database).
Result<int> sqlite_schema_version(SqliteConnection& conn);

}  // namespace imd
