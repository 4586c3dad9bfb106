// Files: uploads streamed to the BlobStore (sniffed, hashed, size-limited, counted against the
// uploader's quota), their metadata in the FileStore, downloads for those allowed, the shares a
// file message records (Attachments), and the sweep that removes uploads never sent.
//
// Who may download a file: its uploader, and the current members of a conversation where a
// message carrying it was sent (a channel's members, a DM's two participants). Anyone else gets
// not_found, exactly as for an id that does not exist.
//
// Bytes are removed when the last message sharing the file is deleted, or when an upload was
// never sent within `orphan_ttl_ms` (the sweep); the metadata row stays, marked deleted, so
// history still shows what was sent. Thread-safe; every call blocks (run on the blocking pool);
// start() runs the sweep on its own thread, stop() joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "common/clock.hpp"
#include "domain/attachments.hpp"
#include "domain/ports/blob_store.hpp"
#include "domain/ports/file_store.hpp"
#include "domain/ports/store.hpp"

namespace imd {

struct FilesLimits {
  std::uint64_t max_bytes = 25ull << 20;
  std::uint64_t quota_bytes = 1ull << 30;
  Millis orphan_ttl_ms = 24 * 3600 * 1000;
  std::chrono::milliseconds sweep_interval{600 * 1000};
};

// One upload in progress: bytes go through write() (straight to the blob; only the first
// kSniffBytes are kept, for sniffing), then finish() commits the blob (durable) and stores
// the metadata. Destroying it unfinished leaves nothing behind. One thread at a time.
class FileUpload {
 public:
  virtual ~FileUpload() = default;
  // payload_too_large past the file limit or the user's remaining quota.
  virtual Result<void> write(std::span<const char> bytes) = 0;
  virtual Result<FileMeta> finish() = 0;
};

struct FileDownload {
  FileMeta meta;
  std::unique_ptr<BlobReader> reader;
};

class FileService final : public Attachments {
 public:
  FileService(FileStore& files, BlobStore& blobs, Store& store, Clock& clock, FilesLimits limits);
  ~FileService() override;

  const FilesLimits& limits() const { return limits_; }

  // An upload by `user` of a file named `name` (sanitized) of `declared` bytes when the client
  // said so: payload_too_large at once when that is over the file limit or the user's remaining
  // quota, before any byte is read.
  Result<std::unique_ptr<FileUpload>> begin_upload(Id user, std::string_view name,
                                                   std::optional<std::uint64_t> declared);
  // The file's metadata and its bytes, for `user`: not_found unless they may download it.
  Result<FileDownload> open(Id user, std::string_view file_id);
  Result<FileMeta> meta(Id user, std::string_view file_id);

  Result<std::string> attach(Id sender, std::string_view file_id, const ConvKey& conv,
                             Id message_id) override;
  void released(const Message& m) override;

  // Removes the bytes of uploads older than the TTL that no message shares; how many.
  Result<std::size_t> sweep_orphans();
  void start();
  void stop();

  // The metadata line of a file message's body (attachments.hpp).
  static std::string meta_json(const FileMeta& f);
  // The file ids a file message's body names (its metadata line), or empty.
  static std::string file_id_of(const Message& m);

 private:
  Result<void> may_download(Id user, const FileMeta& f);
  // Removes the bytes, then marks the row; a failure leaves the row live for the next try.
  Result<void> remove_bytes(const std::string& file_id);

  FileStore& files_;
  BlobStore& blobs_;
  Store& store_;
  Clock& clock_;
  FilesLimits limits_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace imd
