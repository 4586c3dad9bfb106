#include "blob/disk_blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <system_error>

#include "blob/write_all.hpp"

namespace imd {

namespace fs = std::filesystem;

namespace {

Error io_error(std::string_view what, int err) {
  return make_error(Errc::unavailable, "blob: " + std::string(what) + ": " + std::strerror(err));
}

Result<void> fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("open directory", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("fsync directory", err);
  return {};
}

void make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
}

class DiskWriter final : public BlobWriter {
 public:
  DiskWriter(int fd, fs::path tmp, fs::path final_path)
      : fd_(fd), tmp_(std::move(tmp)), final_(std::move(final_path)) {}
  ~DiskWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }

  Result<void> write(std::span<const char> bytes) override {
    if (fd_ < 0) return make_error(Errc::internal, "blob: write after commit or failure");
    if (const int err = write_all(fd_, bytes); err != 0) return fail("write", err);
    return {};
  }

  Result<void> commit() override {
    if (fd_ < 0) return make_error(Errc::internal, "blob: commit twice or after a failure");
    if (::fsync(fd_) != 0) return fail("fsync", errno);
    ::close(fd_);
    fd_ = -1;
    std::error_code ec;
    fs::create_directories(final_.parent_path(), ec);
    fs::permissions(final_.parent_path(), fs::perms::owner_all, fs::perm_options::replace, ec);
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) return io_error("rename", errno);
    committed_ = true;
    return fsync_dir(final_.parent_path());
  }

 private:
  Error fail(std::string_view what, int err) {
    ::close(fd_);
    fd_ = -1;
    return io_error(what, err);
  }

  int fd_;
  fs::path tmp_;
  fs::path final_;
  bool committed_ = false;
};

class DiskReader final : public BlobReader {
 public:
  DiskReader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  ~DiskReader() override { ::close(fd_); }
  std::uint64_t size() const override { return size_; }
  Result<std::size_t> read(std::uint64_t offset, std::span<char> out) override {
    std::size_t got = 0;
    while (got < out.size() && offset + got < size_) {
      ssize_t n =
          ::pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("read", errno);
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    return got;
  }

 private:
  int fd_;
  std::uint64_t size_;
};

Error bad_key() {
  return make_error(Errc::invalid_argument, "blob: malformed key");
}

}  // namespace

DiskBlobStore::DiskBlobStore(fs::path root) : root_(std::move(root)) {
  make_private_dir(root_);
  make_private_dir(root_ / "tmp");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) fs::remove(e.path(), ec);
}

fs::path DiskBlobStore::path_of(std::string_view key) const {
  return root_ / std::string(key.substr(0, 2)) / std::string(key);
}

Result<std::unique_ptr<BlobWriter>> DiskBlobStore::create(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = root_ / "tmp" / (std::string(key) + "." + std::to_string(rng()) + ".part");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("create", errno);
  return std::unique_ptr<BlobWriter>(std::make_unique<DiskWriter>(fd, tmp, path_of(key)));
}

Result<std::unique_ptr<BlobReader>> DiskBlobStore::open(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  fs::path p = path_of(key);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return make_error(Errc::not_found, "blob not found");
    return io_error("open", errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return io_error("stat", err);
  }
  return std::unique_ptr<BlobReader>(
      std::make_unique<DiskReader>(fd, static_cast<std::uint64_t>(st.st_size)));
}

Result<void> DiskBlobStore::remove(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  fs::path p = path_of(key);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) return io_error("unlink", errno);
  std::error_code ec;
  if (!fs::exists(p.parent_path(), ec)) return {};
  return fsync_dir(p.parent_path());
}

}  // namespace imd
