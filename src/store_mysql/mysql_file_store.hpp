// MysqlFileStore: the FileStore port on MariaDB/MySQL (the tables of migration 4),
// SqlFileStore<MysqlDialect> (store_sql/sql_file_store.hpp).
#pragma once

#include "store_mysql/mysql_store.hpp"
#include "store_sql/sql_file_store.hpp"

namespace imd {

extern template class SqlFileStore<MysqlDialect>;
using MysqlFileStore = SqlFileStore<MysqlDialect>;

}  // namespace imd
