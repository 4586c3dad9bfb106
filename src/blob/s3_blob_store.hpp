// S3BlobStore: the BlobStore port (domain/ports/blob_store.hpp) on an S3-compatible object
// store, over libcurl with AWS Signature Version 4 (path-style URLs:
// <endpoint>/<bucket>/<prefix><key>).
//
// A writer spools the bytes to a private temp file in `spool_dir` (never the whole blob in
// memory; leftovers of a crash are removed at construction), hashing them; commit() PUTs the file
// with its length and SHA-256 and returns once the store answered 200 (S3 acknowledges a PUT only
// when it is durable). open() is a HEAD (the size), each read() a ranged GET. remove() is a DELETE
// (S3 answers 204 for a missing key too).
//
// Thread-safe: every call uses its own curl handle. Blocking, with a connect timeout and a
// total timeout per request. Errors: not_found (404), invalid_argument (a malformed key),
// unavailable (the network, a 5xx, a refused signature: the message says which).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/ports/blob_store.hpp"

namespace imd {

struct S3Config {
  std::string endpoint;  // e.g. "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:4569"
  std::string region = "us-east-1";
  std::string bucket;
  std::string prefix;  // prepended to every key, e.g. "imd/files/"
  std::string access_key;
  std::string secret_key;           // secret: never logged
  std::filesystem::path spool_dir;  // where writers spool (private, created)
  long timeout_s = 60;              // one request, whole
};

// One request's SigV4 inputs and output (exposed for the test against AWS's published example).
struct SigV4Request {
  std::string method;
  std::string host;   // as sent in the Host header (with the port when not the default)
  std::string path;   // already URI-encoded
  std::string query;  // canonical query string (sorted, encoded); empty for none
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names, besides host
  std::string payload_sha256;                                // hex
  std::string amz_date;                                      // YYYYMMDD'T'HHMMSS'Z'
};
// The Authorization header value.
std::string sigv4_authorization(const SigV4Request& r, std::string_view region,
                                std::string_view access_key, std::string_view secret_key);

class S3BlobStore final : public BlobStore {
 public:
  // Throws std::runtime_error for a config that cannot work (start-up).
  explicit S3BlobStore(S3Config config);

  Result<std::unique_ptr<BlobWriter>> create(std::string_view key) override;
  Result<std::unique_ptr<BlobReader>> open(std::string_view key) override;
  Result<void> remove(std::string_view key) override;

  // Creates the bucket (PUT <bucket>); ok when it exists already. For tests and first set-up.
  Result<void> create_bucket();

  struct Response {
    long status = 0;
    std::string body;
    std::uint64_t content_length = 0;
  };
  // One signed request. `upload`: a file to send as the body (its size and hex SHA-256), else
  // none; `into`: where a GET's body goes (else into Response::body, bounded).
  Result<Response> request(std::string_view method, std::string_view key,
                           const std::vector<std::pair<std::string, std::string>>& extra_headers,
                           const std::filesystem::path* upload = nullptr,
                           std::uint64_t upload_size = 0, std::string_view upload_sha256 = {},
                           std::span<char> into = {}) const;

 private:
  S3Config c_;
  std::string scheme_host_;  // "http://127.0.0.1:4569"
  std::string host_;         // "127.0.0.1:4569"
  std::string base_path_;    // "/bucket"
};

}  // namespace imd
