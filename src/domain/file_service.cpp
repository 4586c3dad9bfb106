#include "domain/file_service.hpp"

#include <sodium.h>

#include <algorithm>
#include <vector>

#include <boost/json/parse.hpp>

#include "common/hex.hpp"
#include "common/json_writer.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"
#include "domain/file_type.hpp"

namespace imd {

namespace {

// 128 random bits: unguessable, so an id seen nowhere cannot be tried.
std::string new_file_id() {
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  return to_hex(raw, sizeof raw);
}

Error too_large(const std::string& why) {
  return make_error(Errc::payload_too_large, why);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return to_hex(digest, sizeof digest);
}

Result<void> put_blob(BlobStore& blobs, std::string_view key, std::string_view bytes) {
  auto w = blobs.create(key);
  if (!w) return w.error();
  IMD_TRY((*w)->write(std::span<const char>(bytes.data(), bytes.size())));
  return (*w)->commit();
}

Result<std::string> read_blob(BlobStore& blobs, std::string_view key) {
  auto r = blobs.open(key);
  if (!r) return r.error();
  std::string out((*r)->size(), '\0');
  std::size_t at = 0;
  while (at < out.size()) {
    auto n = (*r)->read(at, std::span<char>(out.data() + at, out.size() - at));
    if (!n) return n.error();
    if (*n == 0) return make_error(Errc::unavailable, "a blob ended early");
    at += *n;
  }
  return out;
}

class StreamingUpload final : public FileUpload {
 public:
  StreamingUpload(FileStore& files, BlobStore& blobs, ImageCodec* images, const FilesLimits& limits,
                  std::unique_ptr<BlobWriter> writer, FileMeta meta, std::uint64_t allowed,
                  std::string limit_name, bool quota_binds)
      : files_(files),
        blobs_(blobs),
        images_(images),
        limits_(limits),
        writer_(std::move(writer)),
        meta_(std::move(meta)),
        allowed_(allowed),
        limit_name_(std::move(limit_name)),
        quota_binds_(quota_binds) {
    crypto_hash_sha256_init(&sha_);
  }

  Result<void> write(std::span<const char> bytes) override {
    if (meta_.size + bytes.size() > allowed_) {
      if (quota_binds_) metrics::imd().quota_refused.at("upload_bytes").inc();
      return too_large(limit_name_);
    }
    if (head_.size() < kSniffBytes) {
      const std::size_t take = std::min(kSniffBytes - head_.size(), bytes.size());
      head_.insert(head_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
    }
    crypto_hash_sha256_update(&sha_, reinterpret_cast<const unsigned char*>(bytes.data()),
                              bytes.size());
    meta_.size += bytes.size();
    return writer_->write(bytes);
  }

  Result<FileMeta> finish() override {
    if (meta_.size == 0) return make_error(Errc::invalid_argument, "the file is empty");
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&sha_, digest);
    meta_.sha256 = to_hex(digest, sizeof digest);
    meta_.type = sniff_type(head_);
    const ImageSize dims = image_size(meta_.type, head_);
    meta_.width = dims.width;
    meta_.height = dims.height;
    if (std::uint64_t{dims.width} * dims.height > limits_.max_image_pixels) {
      return too_large("the image has " + std::to_string(std::uint64_t{dims.width} * dims.height) +
                       " pixels, at most " + std::to_string(limits_.max_image_pixels));
    }
    IMD_TRY(writer_->commit());
    // Until create_file, nobody can download the blob: the upload as sent is replaced by its
    // clean copy before anyone may read it.
    auto stored = clean_image();
    if (stored) stored = files_.create_file(meta_);
    if (!stored) {
      (void)blobs_.remove(meta_.id);
      (void)blobs_.remove(FileService::thumb_key(meta_.id));
      return stored.error();
    }
    return meta_;
  }

 private:
  Result<void> clean_image() {
    if (images_ == nullptr || !is_inline_image(meta_.type)) return {};
    auto original = read_blob(blobs_, meta_.id);
    if (!original) return original.error();
    auto img = images_->clean(*original, meta_.type, limits_.thumb_px);
    if (!img) return img.error();
    original->clear();
    original->shrink_to_fit();
    IMD_TRY(put_blob(blobs_, FileService::thumb_key(meta_.id), img->thumb.bytes));
    IMD_TRY(put_blob(blobs_, meta_.id, img->clean.bytes));
    meta_.size = img->clean.bytes.size();
    meta_.sha256 = sha256_hex(img->clean.bytes);
    meta_.width = img->clean.width;
    meta_.height = img->clean.height;
    meta_.thumb_type = img->thumb.type;
    return {};
  }

  FileStore& files_;
  BlobStore& blobs_;
  ImageCodec* images_;
  const FilesLimits& limits_;
  std::unique_ptr<BlobWriter> writer_;
  FileMeta meta_;
  std::uint64_t allowed_;
  std::string limit_name_;
  const bool quota_binds_;  // allowed_ is what the quota leaves (not the per-file limit)
  std::vector<char> head_;
  crypto_hash_sha256_state sha_{};
};

Error no_such_file() {
  return make_error(Errc::not_found, "no such file");
}

class SquareUpload final : public AvatarUpload {
 public:
  SquareUpload(FileStore& files, BlobStore& blobs, ImageCodec& images, Clock& clock,
               const FilesLimits& limits, AvatarOf kind, Id owner)
      : files_(files),
        blobs_(blobs),
        images_(images),
        clock_(clock),
        limits_(limits),
        kind_(kind),
        owner_(owner) {}

  Result<void> write(std::span<const char> bytes) override {
    if (body_.size() + bytes.size() > kMaxAvatarUploadBytes) {
      return too_large("an avatar may have at most " + std::to_string(kMaxAvatarUploadBytes) +
                       " bytes");
    }
    body_.append(bytes.data(), bytes.size());
    return {};
  }

  Result<std::string> finish() override {
    const std::string type = sniff_type(std::span<const char>(body_.data(), body_.size()));
    if (!is_inline_image(type)) {
      return make_error(Errc::invalid_argument, "an avatar must be a JPEG, PNG, GIF or WebP image");
    }
    auto square = images_.square(body_, type, limits_.avatar_px);
    if (!square) return square.error();
    const std::string key = new_file_id();
    IMD_TRY(put_blob(blobs_, key, square->bytes));
    auto old = files_.set_avatar(kind_, owner_, key, clock_.now_ms());
    if (!old) {
      (void)blobs_.remove(key);
      return old.error();
    }
    if (!old->empty() && valid_blob_key(*old)) {
      if (auto r = blobs_.remove(*old); !r) {
        LOG_WARN("avatar " << *old
                           << ": removing the replaced bytes failed: " << r.error().message);
      }
    }
    return FileService::avatar_url(kind_, owner_, key);
  }

 private:
  FileStore& files_;
  BlobStore& blobs_;
  ImageCodec& images_;
  Clock& clock_;
  const FilesLimits& limits_;
  const AvatarOf kind_;
  const Id owner_;
  std::string body_;
};

}  // namespace

FileService::FileService(FileStore& files, BlobStore& blobs, Store& store, Clock& clock,
                         FilesLimits limits, ImageCodec* images)
    : files_(files),
      blobs_(blobs),
      store_(store),
      clock_(clock),
      limits_(limits),
      images_(images) {}

std::string FileService::thumb_key(std::string_view file_id) {
  return std::string(file_id) + "7468756d62";  // "thumb" in hex: a key adapters accept
}

FileService::~FileService() {
  stop();
}

Result<std::unique_ptr<FileUpload>> FileService::begin_upload(
    Id user, std::string_view name, std::optional<std::uint64_t> declared) {
  if (declared && *declared > limits_.max_bytes) {
    return too_large("a file may have at most " + std::to_string(limits_.max_bytes) + " bytes");
  }
  auto used = files_.bytes_of_uploader(user);
  if (!used) return used.error();
  const std::uint64_t left = *used >= limits_.quota_bytes ? 0 : limits_.quota_bytes - *used;
  if (declared ? *declared > left : left == 0) {
    metrics::imd().quota_refused.at("upload_bytes").inc();
    return too_large("upload quota exceeded: " + std::to_string(left) + " bytes left");
  }
  FileMeta meta;
  meta.id = new_file_id();
  meta.uploader = user;
  meta.name = sanitize_file_name(name);
  meta.created_at = clock_.now_ms();
  auto writer = blobs_.create(meta.id);
  if (!writer) return writer.error();
  const bool quota_binds = left < limits_.max_bytes;
  return std::unique_ptr<FileUpload>(std::make_unique<StreamingUpload>(
      files_, blobs_, images_, limits_, std::move(*writer), std::move(meta),
      std::min(left, limits_.max_bytes),
      quota_binds ? "upload quota exceeded"
                  : "a file may have at most " + std::to_string(limits_.max_bytes) + " bytes",
      quota_binds));
}

Result<void> FileService::may_download(Id user, const FileMeta& f) {
  if (f.deleted_at != 0) return no_such_file();
  if (f.uploader == user) return {};
  auto shares = files_.shares_of(f.id);
  if (!shares) return shares.error();
  for (const FileShare& s : *shares) {
    if (s.conv.is_dm()) {
      if (s.conv.has_participant(user)) return {};
      continue;
    }
    auto member = store_.is_channel_member(s.conv.channel_id(), user);
    if (!member) {
      if (member.error().code == Errc::not_found) continue;
      return member.error();
    }
    if (*member) return {};
  }
  return no_such_file();
}

Result<FileMeta> FileService::meta(Id user, std::string_view file_id) {
  if (!valid_blob_key(file_id)) return no_such_file();
  auto f = files_.file_by_id(file_id);
  if (!f) return f.error().code == Errc::not_found ? no_such_file() : f.error();
  IMD_TRY(may_download(user, *f));
  return f;
}

Result<FileDownload> FileService::open(Id user, std::string_view file_id, bool thumb) {
  auto f = meta(user, file_id);
  if (!f) return f.error();
  if (thumb) {
    if (f->thumb_type.empty()) return make_error(Errc::not_found, "the file has no thumbnail");
    f->type = f->thumb_type;
    f->sha256 += "-thumb";  // its own validator
  }
  auto reader = blobs_.open(thumb ? thumb_key(f->id) : f->id);
  if (!reader) {
    if (reader.error().code == Errc::not_found) {
      LOG_WARN("file " << f->id << " has metadata but no bytes");
      return no_such_file();
    }
    return reader.error();
  }
  return FileDownload{std::move(*f), std::move(*reader)};
}

Result<std::unique_ptr<AvatarUpload>> FileService::begin_avatar(
    AvatarOf kind, Id owner, std::optional<std::uint64_t> declared) {
  if (images_ == nullptr) return make_error(Errc::not_found, "avatars are not enabled");
  if (declared && *declared > kMaxAvatarUploadBytes) {
    return too_large("an avatar may have at most " + std::to_string(kMaxAvatarUploadBytes) +
                     " bytes");
  }
  return std::unique_ptr<AvatarUpload>(
      std::make_unique<SquareUpload>(files_, blobs_, *images_, clock_, limits_, kind, owner));
}

Result<FileDownload> FileService::open_avatar(AvatarOf kind, Id owner) {
  auto key = files_.avatar_key(kind, owner);
  if (!key) return key.error();
  if (key->empty()) return make_error(Errc::not_found, "no avatar");
  auto reader = blobs_.open(*key);
  if (!reader) return reader.error();
  FileMeta meta;
  meta.id = *key;
  meta.name = "avatar.webp";
  meta.type = "image/webp";
  meta.sha256 = *key;  // a new avatar is a new key: the key is as good a validator
  return FileDownload{std::move(meta), std::move(*reader)};
}

std::string FileService::avatar_url(AvatarOf kind, Id owner, std::string_view key) {
  const char* what = kind == AvatarOf::user    ? "users"
                     : kind == AvatarOf::space ? "spaces"
                                               : "channels";
  return "/api/v1/" + std::string(what) + "/" + std::to_string(owner) +
         "/avatar?v=" + std::string(key.substr(0, 16));
}

std::string FileService::meta_json(const FileMeta& f) {
  std::string out;
  json::Writer w(out);
  w.begin_object();
  w.key("id").string(f.id);
  w.key("name").string(f.name);
  w.key("size").uint(f.size);
  w.key("type").string(f.type);
  if (f.width != 0 && f.height != 0) {
    w.key("width").uint(f.width);
    w.key("height").uint(f.height);
  }
  w.key("url").string("/api/v1/files/" + f.id);
  if (!f.thumb_type.empty()) w.key("thumb_url").string("/api/v1/files/" + f.id + "?thumb=1");
  w.end_object();
  return out;
}

std::string FileService::file_id_of(const Message& m) {
  if (!is_file_type(m.type)) return {};
  const auto nl = m.body.find('\n');
  if (nl == std::string::npos || m.body.empty() || m.body[0] != '{') return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(std::string_view(m.body).substr(0, nl), ec);
  if (ec || !v.is_object()) return {};
  const auto* id = v.as_object().if_contains("id");
  if (id == nullptr || !id->is_string()) return {};
  std::string out(id->get_string());
  return valid_blob_key(out) ? out : std::string{};
}

Result<std::string> FileService::attach(Id sender, std::string_view file_id, const ConvKey& conv,
                                        Id message_id) {
  if (!valid_blob_key(file_id)) return no_such_file();
  auto f = files_.file_by_id(file_id);
  if (!f) return f.error().code == Errc::not_found ? no_such_file() : f.error();
  // Only the uploader sends a file: anyone else learns nothing, not even that it exists.
  if (f->uploader != sender || f->deleted_at != 0) return no_such_file();
  IMD_TRY(files_.add_share(f->id, FileShare{message_id, conv}));
  return meta_json(*f);
}

void FileService::released(const Message& m) {
  const std::string id = file_id_of(m);
  if (id.empty()) return;
  if (auto r = files_.remove_share(id, m.id); !r) {
    LOG_WARN("file " << id << ": removing the share of message " << m.id
                     << " failed: " << r.error().message);
    return;
  }
  auto shares = files_.shares_of(id);
  if (!shares) {
    LOG_WARN("file " << id << ": reading its shares failed: " << shares.error().message);
    return;
  }
  // A share whose message was never stored (a send that failed or was a duplicate) or is
  // deleted keeps nothing alive.
  for (const FileShare& s : *shares) {
    auto other = store_.message_by_id(s.message_id);
    if (other && !other->deleted) return;
    if (!other && other.error().code != Errc::not_found) return;  // unsure: keep the bytes
    (void)files_.remove_share(id, s.message_id);
  }
  if (auto r = remove_bytes(id); !r) {
    LOG_WARN("file " << id << ": removing its bytes failed: " << r.error().message);
  }
}

Result<void> FileService::remove_bytes(const std::string& file_id) {
  IMD_TRY(blobs_.remove(thumb_key(file_id)));
  IMD_TRY(blobs_.remove(file_id));
  auto marked = files_.mark_deleted(file_id, clock_.now_ms());
  if (!marked) return marked.error();
  return {};
}

Result<std::size_t> FileService::sweep_orphans() {
  std::size_t removed = 0;
  const Millis before = clock_.now_ms() - limits_.orphan_ttl_ms;
  for (;;) {
    auto ids = files_.orphans(before, 100);
    if (!ids) return ids.error();
    for (const std::string& id : *ids) {
      IMD_TRY(remove_bytes(id));
      ++removed;
    }
    if (ids->size() < 100) return removed;
  }
}

void FileService::start() {
  sweeper_ = std::thread([this] {
    set_thread_name("imd-files");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      auto swept = sweep_orphans();
      if (!swept) {
        LOG_WARN("orphaned uploads sweep failed: " << swept.error().message);
      } else if (*swept > 0) {
        LOG_INFO("removed " << *swept << " uploads never sent");
      }
      lock.lock();
      cv_.wait_for(lock, limits_.sweep_interval, [this] { return stopping_; });
    }
  });
}

void FileService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

}  // namespace imd
