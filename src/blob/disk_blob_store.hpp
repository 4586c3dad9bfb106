// DiskBlobStore: the BlobStore port (domain/ports/blob_store.hpp) on a local directory, the
// standalone default (`<data_dir>/files`).
//
// Layout: `<root>/<first two hex digits of the key>/<key>`; a blob being written is
// `<root>/tmp/<key>.<random>.part`, fsync'd, renamed into place, and the directory fsync'd, so
// commit() returning ok means the bytes survive a crash and a reader never sees half a blob.
// Directories are created 0700 and files 0600. Temp files left by a crash are removed when the
// store is constructed. Thread-safe (no shared mutable state beyond the file system).
#pragma once

#include <filesystem>
#include <string>

#include "domain/ports/blob_store.hpp"

namespace imd {

class DiskBlobStore final : public BlobStore {
 public:
  // Creates `root` (and tmp/) when missing; throws std::runtime_error when it cannot (start-up).
  explicit DiskBlobStore(std::filesystem::path root);

  Result<std::unique_ptr<BlobWriter>> create(std::string_view key) override;
  Result<std::unique_ptr<BlobReader>> open(std::string_view key) override;
  Result<void> remove(std::string_view key) override;

  // Where a committed blob lives (for tests and operators).
  std::filesystem::path path_of(std::string_view key) const;

 private:
  std::filesystem::path root_;
};

}  // namespace imd
