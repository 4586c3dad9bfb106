// Files: uploads streamed to the BlobStore (sniffed, hashed, size-limited, counted against the
// uploader's quota), their metadata in the FileStore, downloads for those allowed, the shares a
// file message records (Attachments), and the sweep that removes uploads never sent.
//
// Who may download a file: its uploader, and the current members of a conversation where a
// message carrying it was sent (a channel's members, a DM's two participants). Anyone else gets
// not_found, exactly as for an id that does not exist.
//
// Images (the inline types of file_type.hpp) go through the ImageCodec when there is one: what
// is stored and served is its clean copy (orientation applied, metadata stripped; size, sha256,
// width and height are the copy's), with a WebP thumbnail beside it under thumb_key(id). An
// image that does not decode is refused (invalid_argument) and nothing is kept.
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
#include "domain/ports/image_codec.hpp"
#include "domain/ports/store.hpp"

namespace imd {

struct FilesLimits {
  std::uint64_t max_bytes = 25ull << 20;
  // An image whose header declares more pixels (width x height, all frames) is refused.
  std::uint64_t max_image_pixels = 50'000'000;
  std::uint32_t thumb_px = 360;  // thumbnails fit thumb_px x thumb_px
  std::uint32_t avatar_px = 128;
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

// An avatar upload: the body is kept in memory (at most kMaxAvatarUploadBytes: it is decoded
// whole anyway), then finish() stores its square and returns the avatar's URL.
class AvatarUpload {
 public:
  virtual ~AvatarUpload() = default;
  // payload_too_large past kMaxAvatarUploadBytes.
  virtual Result<void> write(std::span<const char> bytes) = 0;
  // invalid_argument when the body is not an image (jpeg, png, gif, webp) or does not decode.
  virtual Result<std::string> finish() = 0;
};

inline constexpr std::uint64_t kMaxAvatarUploadBytes = 10ull << 20;

struct FileDownload {
  FileMeta meta;
  std::unique_ptr<BlobReader> reader;
};

class FileService final : public Attachments {
 public:
  // `images` may be null: images are then stored as uploaded, without a thumbnail.
  FileService(FileStore& files, BlobStore& blobs, Store& store, Clock& clock, FilesLimits limits,
              ImageCodec* images = nullptr);
  ~FileService() override;

  const FilesLimits& limits() const { return limits_; }

  // An upload by `user` of a file named `name` (sanitized) of `declared` bytes when the client
  // said so: payload_too_large at once when that is over the file limit or the user's remaining
  // quota, before any byte is read.
  Result<std::unique_ptr<FileUpload>> begin_upload(Id user, std::string_view name,
                                                   std::optional<std::uint64_t> declared);
  // The file's metadata and its bytes (its thumbnail's with `thumb`: then meta's type, size and
  // sha256 are the thumbnail's), for `user`: not_found unless they may download it, or for a
  // thumbnail the file has none.
  Result<FileDownload> open(Id user, std::string_view file_id, bool thumb = false);
  Result<FileMeta> meta(Id user, std::string_view file_id);

  // Avatars of users, spaces and channels: who may set or see one is the caller's to check
  // (RestApi, with AuthService and SpaceService). The bytes are a square of
  // limits().avatar_px, WebP, in the BlobStore; the previous one is removed when a new one is
  // stored. not_found from open_avatar when there is none; begin_avatar as begin_upload, and
  // not_found when there is no ImageCodec.
  Result<std::unique_ptr<AvatarUpload>> begin_avatar(AvatarOf kind, Id owner,
                                                     std::optional<std::uint64_t> declared);
  Result<FileDownload> open_avatar(AvatarOf kind, Id owner);
  // "/api/v1/{users|spaces|channels}/<owner>/avatar?v=<version>": what the `avatar` field of
  // the owner's JSON says once an avatar was uploaded (the version changes with each one).
  static std::string avatar_url(AvatarOf kind, Id owner, std::string_view key);

  Result<std::string> attach(Id sender, std::string_view file_id, const ConvKey& conv,
                             Id message_id) override;
  void released(const Message& m) override;

  // Removes the bytes of uploads older than the TTL that no message shares; how many.
  Result<std::size_t> sweep_orphans();
  void start();
  void stop();

  // The metadata line of a file message's body (attachments.hpp).
  static std::string meta_json(const FileMeta& f);
  // The blob key of a file's thumbnail.
  static std::string thumb_key(std::string_view file_id);
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
  ImageCodec* images_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace imd
