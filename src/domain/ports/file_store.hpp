// FileStore port: the metadata of uploaded files and where each was shared. The bytes are the
// BlobStore's (blob_store.hpp). Adapters: SqliteFileStore (src/store), MysqlFileStore
// (src/store_mysql), both SqlFileStore<D> (src/store_sql).
//
// Contract: thread-safe, blocking. Errors: not_found (no such file), conflict (a file id used
// twice), unavailable (an engine failure).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

struct FileMeta {
  std::string id;  // 32 lowercase hex digits (128 random bits); also the blob key
  Id uploader = 0;
  std::string name;  // sanitized
  std::uint64_t size = 0;
  std::string type;    // sniffed from the bytes
  std::string sha256;  // hex of the content: the ETag
  std::uint32_t width = 0;
  std::uint32_t height = 0;  // images; 0 otherwise
  Millis created_at = 0;
  Millis deleted_at = 0;   // the bytes were removed (0: they are there)
  std::string thumb_type;  // the thumbnail's type (blob FileService::thumb_key); "" for none
};

// Whose avatar: the `avatar` table's kind.
enum class AvatarOf : std::uint8_t { user = 1, space = 2, channel = 3 };

// A message that carried a file into a conversation.
struct FileShare {
  Id message_id = 0;
  ConvKey conv;
};

class FileStore {
 public:
  virtual ~FileStore() = default;
  virtual Result<void> create_file(const FileMeta& file) = 0;
  virtual Result<FileMeta> file_by_id(std::string_view id) = 0;
  // The bytes of the user's files whose bytes are still there (the quota).
  virtual Result<std::uint64_t> bytes_of_uploader(Id user) = 0;
  // Idempotent: the same (file, message) twice is one share.
  virtual Result<void> add_share(std::string_view file_id, const FileShare& share) = 0;
  virtual Result<std::vector<FileShare>> shares_of(std::string_view file_id) = 0;
  virtual Result<void> remove_share(std::string_view file_id, Id message_id) = 0;
  // Marks the file's bytes removed; false when it was already marked (or does not exist).
  virtual Result<bool> mark_deleted(std::string_view file_id, Millis now) = 0;
  // Files whose bytes are there, created before `before`, never shared: at most `limit` ids.
  virtual Result<std::vector<std::string>> orphans(Millis before, std::uint32_t limit) = 0;
  // The blob key of an uploaded avatar; "" when there is none.
  virtual Result<std::string> avatar_key(AvatarOf kind, Id owner) = 0;
  // Records `key` as the avatar and returns the key it replaces ("" when none).
  virtual Result<std::string> set_avatar(AvatarOf kind, Id owner, std::string_view key,
                                         Millis now) = 0;
};

}  // namespace imd
