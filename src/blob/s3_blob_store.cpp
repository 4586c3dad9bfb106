#include "blob/s3_blob_store.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <stdexcept>

#include "blob/write_all.hpp"
#include "common/hex.hpp"
namespace imd {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;
// SHA-256 of the empty payload.
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

// RFC 3986 unreserved characters stay; '/' stays in paths (SigV4's rule for S3 object keys).
std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string amz_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[17];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Error unavailable(std::string message) {
  return make_error(Errc::unavailable, "s3: " + std::move(message));
}

struct Sink {
  std::span<char> into;
  std::size_t got = 0;
  std::string body;  // when `into` is empty: bounded
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  const std::size_t len = size * n;
  if (!s->into.empty()) {
    if (s->got + len > s->into.size()) return 0;  // more than asked for: abort
    std::memcpy(s->into.data() + s->got, data, len);
    s->got += len;
    return len;
  }
  if (s->body.size() + len > kMaxErrorBody) return 0;
  s->body.append(data, len);
  return len;
}

std::size_t on_upload(char* buffer, std::size_t size, std::size_t n, void* user) {
  return std::fread(buffer, size, n, static_cast<std::FILE*>(user)) * size;
}

class S3Writer final : public BlobWriter {
 public:
  S3Writer(const S3BlobStore& store, std::string key, int fd, fs::path spool)
      : store_(store), key_(std::move(key)), fd_(fd), spool_(std::move(spool)) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~S3Writer() override {
    if (fd_ >= 0) ::close(fd_);
    EVP_MD_CTX_free(ctx_);
    std::error_code ec;
    fs::remove(spool_, ec);
  }

  Result<void> write(std::span<const char> bytes) override {
    if (fd_ < 0) return make_error(Errc::internal, "s3: write after commit or failure");
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
    if (const int err = write_all(fd_, bytes); err != 0) {
      ::close(fd_);
      fd_ = -1;
      return unavailable(std::string("spool: ") + std::strerror(err));
    }
    size_ += bytes.size();
    return {};
  }

  Result<void> commit() override {
    if (fd_ < 0) return make_error(Errc::internal, "s3: commit twice or after a failure");
    ::close(fd_);
    fd_ = -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    auto r = store_.request("PUT", key_, {}, &spool_, size_, to_hex(md, len));
    if (!r) return r.error();
    if (r->status != 200) {
      return unavailable("PUT answered " + std::to_string(r->status) + ": " +
                         r->body.substr(0, 300));
    }
    return {};
  }

 private:
  const S3BlobStore& store_;
  std::string key_;
  int fd_;
  fs::path spool_;
  EVP_MD_CTX* ctx_ = nullptr;
  std::uint64_t size_ = 0;
};

class S3Reader final : public BlobReader {
 public:
  S3Reader(const S3BlobStore& store, std::string key, std::uint64_t size)
      : store_(store), key_(std::move(key)), size_(size) {}
  std::uint64_t size() const override { return size_; }
  Result<std::size_t> read(std::uint64_t offset, std::span<char> out) override {
    if (offset >= size_ || out.empty()) return std::size_t{0};
    const std::uint64_t last = std::min<std::uint64_t>(size_, offset + out.size()) - 1;
    const std::size_t want = static_cast<std::size_t>(last - offset + 1);
    auto r = store_.request(
        "GET", key_, {{"range", "bytes=" + std::to_string(offset) + "-" + std::to_string(last)}},
        nullptr, 0, {}, out.first(want));
    if (!r) return r.error();
    if (r->status == 404) return make_error(Errc::not_found, "blob not found");
    if (r->status != 206 && r->status != 200) {
      return unavailable("GET answered " + std::to_string(r->status));
    }
    return static_cast<std::size_t>(r->content_length);
  }

 private:
  const S3BlobStore& store_;
  std::string key_;
  std::uint64_t size_;
};

Error bad_key() {
  return make_error(Errc::invalid_argument, "blob: malformed key");
}

}  // namespace

std::string sigv4_authorization(const SigV4Request& r, std::string_view region,
                                std::string_view access_key, std::string_view secret_key) {
  std::vector<std::pair<std::string, std::string>> headers = r.headers;
  headers.emplace_back("host", r.host);
  std::sort(headers.begin(), headers.end());
  std::string canonical_headers;
  std::string signed_headers;
  for (const auto& [k, v] : headers) {
    canonical_headers += k + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + k;
  }
  const std::string canonical = r.method + "\n" + r.path + "\n" + r.query + "\n" +
                                canonical_headers + "\n" + signed_headers + "\n" + r.payload_sha256;
  const std::string date = r.amz_date.substr(0, 8);
  const std::string scope = date + "/" + std::string(region) + "/s3/aws4_request";
  const std::string to_sign =
      "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + scope + "\n" + sha256_hex(canonical);
  std::string key = hmac("AWS4" + std::string(secret_key), date);
  key = hmac(key, region);
  key = hmac(key, "s3");
  key = hmac(key, "aws4_request");
  const std::string sig = hmac(key, to_sign);
  return "AWS4-HMAC-SHA256 Credential=" + std::string(access_key) + "/" + scope +
         ", SignedHeaders=" + signed_headers +
         ", Signature=" + to_hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

S3BlobStore::S3BlobStore(S3Config config) : c_(std::move(config)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const auto scheme = c_.endpoint.find("://");
  if (scheme == std::string::npos || c_.bucket.empty()) {
    throw std::runtime_error("s3: the endpoint must be a URL and the bucket must be named");
  }
  std::string rest = c_.endpoint.substr(scheme + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) {
    throw std::runtime_error("s3: the endpoint is scheme://host[:port], without a path");
  }
  host_ = rest;
  scheme_host_ = c_.endpoint.substr(0, scheme + 3) + rest;
  base_path_ = "/" + uri_encode(c_.bucket, false);
  std::error_code ec;
  fs::create_directories(c_.spool_dir, ec);
  if (ec) throw std::runtime_error("s3: cannot create " + c_.spool_dir.string());
  fs::permissions(c_.spool_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  // Spool files a crash left behind.
  for (const auto& e : fs::directory_iterator(c_.spool_dir, ec)) {
    if (e.path().extension() == ".spool") fs::remove(e.path(), ec);
  }
}

Result<S3BlobStore::Response> S3BlobStore::request(
    std::string_view method, std::string_view key,
    const std::vector<std::pair<std::string, std::string>>& extra_headers, const fs::path* upload,
    std::uint64_t upload_size, std::string_view upload_sha256, std::span<char> into) const {
  SigV4Request sr;
  sr.method = std::string(method);
  sr.host = host_;
  sr.path =
      key.empty() ? base_path_ : base_path_ + "/" + uri_encode(c_.prefix + std::string(key), true);
  sr.payload_sha256 = upload ? std::string(upload_sha256) : std::string(kEmptySha256);
  sr.amz_date = amz_now();
  sr.headers = extra_headers;
  sr.headers.emplace_back("x-amz-content-sha256", sr.payload_sha256);
  sr.headers.emplace_back("x-amz-date", sr.amz_date);
  const std::string auth = sigv4_authorization(sr, c_.region, c_.access_key, c_.secret_key);

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return unavailable("curl_easy_init failed");
  curl_slist* list = nullptr;
  for (const auto& [k, v] : sr.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, ("Authorization: " + auth).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(list, curl_slist_free_all);

  CURL* h = curl.get();
  const std::string url = scheme_host_ + sr.path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, c_.timeout_s);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  Sink sink{into, 0, {}};
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, std::fclose);
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    if (upload) {
      file.reset(std::fopen(upload->c_str(), "rb"));
      if (!file) return unavailable("cannot reopen the spool file");
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
      curl_easy_setopt(h, CURLOPT_READDATA, file.get());
    }
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload_size));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, sr.method.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    return unavailable(std::string(method) + " " + sr.path + ": " + curl_easy_strerror(rc));
  }
  Response out;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  curl_off_t length = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  out.content_length =
      into.empty() ? (length > 0 ? static_cast<std::uint64_t>(length) : 0) : sink.got;
  out.body = std::move(sink.body);
  return out;
}

Result<void> S3BlobStore::create_bucket() {
  auto r = request("PUT", {}, {});
  if (!r) return r.error();
  if (r->status == 200 || r->status == 409) return {};  // 409: it exists (ours)
  return unavailable("creating the bucket answered " + std::to_string(r->status) + ": " +
                     r->body.substr(0, 300));
}

Result<std::unique_ptr<BlobWriter>> S3BlobStore::create(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path spool = c_.spool_dir / (std::string(key) + "." + std::to_string(rng()) + ".spool");
  int fd = ::open(spool.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable(std::string("spool: ") + std::strerror(errno));
  return std::unique_ptr<BlobWriter>(
      std::make_unique<S3Writer>(*this, std::string(key), fd, std::move(spool)));
}

Result<std::unique_ptr<BlobReader>> S3BlobStore::open(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  auto r = request("HEAD", key, {});
  if (!r) return r.error();
  if (r->status == 404) return make_error(Errc::not_found, "blob not found");
  if (r->status != 200) return unavailable("HEAD answered " + std::to_string(r->status));
  return std::unique_ptr<BlobReader>(
      std::make_unique<S3Reader>(*this, std::string(key), r->content_length));
}

Result<void> S3BlobStore::remove(std::string_view key) {
  if (!valid_blob_key(key)) return bad_key();
  auto r = request("DELETE", key, {});
  if (!r) return r.error();
  if (r->status == 204 || r->status == 200 || r->status == 404) return {};
  return unavailable("DELETE answered " + std::to_string(r->status));
}

}  // namespace imd
