#include "store_mysql/mysql_file_store.hpp"

namespace imd {

template class SqlFileStore<MysqlDialect>;

}  // namespace imd
