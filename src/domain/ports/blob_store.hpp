// BlobStore port: the bytes of uploaded files, by key (a file id: 32 lowercase hex digits).
// Adapters: DiskBlobStore (src/blob, the standalone default, under the data dir).
//
// Contract: thread-safe, blocking (run on the blocking pool). A blob is written through a
// BlobWriter and becomes visible under its key only when commit() returned ok: then it is
// durable (an adapter on a local disk has fsync'd the bytes and the directory entry). A writer
// destroyed without commit() leaves nothing behind. Readers see a committed blob whole; remove()
// of a key that does not exist is ok (removal is idempotent). Errors: not_found (open of a
// missing key), invalid_argument (a malformed key), unavailable (the disk or the server failed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imd {

class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // Appends bytes. After an error the writer is unusable (destroy it).
  virtual Result<void> write(std::span<const char> bytes) = 0;
  // Makes the blob durable and visible under its key; at most once.
  virtual Result<void> commit() = 0;
};

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual std::uint64_t size() const = 0;
  // Up to out.size() bytes from `offset`; fewer only at the end of the blob.
  virtual Result<std::size_t> read(std::uint64_t offset, std::span<char> out) = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual Result<std::unique_ptr<BlobWriter>> create(std::string_view key) = 0;
  virtual Result<std::unique_ptr<BlobReader>> open(std::string_view key) = 0;
  virtual Result<void> remove(std::string_view key) = 0;
};

// A key adapters accept: 32..64 lowercase hex digits (what FileService hands out).
inline bool valid_blob_key(std::string_view key) {
  if (key.size() < 32 || key.size() > 64) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace imd
