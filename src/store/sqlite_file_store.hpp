// SqliteFileStore: the FileStore port on the standalone SQLite database (the tables of
// migration 5), SqlFileStore<SqliteDialect> (store_sql/sql_file_store.hpp).
#pragma once

#include "store/sqlite_store.hpp"
#include "store_sql/sql_file_store.hpp"

namespace imd {

extern template class SqlFileStore<SqliteDialect>;
using SqliteFileStore = SqlFileStore<SqliteDialect>;

}  // namespace imd
