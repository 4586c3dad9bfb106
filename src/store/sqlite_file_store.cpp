#include "store/sqlite_file_store.hpp"

namespace imd {

template class SqlFileStore<SqliteDialect>;

}  // namespace imd
