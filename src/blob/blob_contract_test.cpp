// The BlobStore port's contract (domain/ports/blob_store.hpp), run on every adapter through a
// factory: write-then-commit makes a blob whole and visible, an uncommitted writer leaves
// nothing, ranges read back exactly, removal is idempotent, keys are checked.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "blob/disk_blob_store.hpp"
#include "blob/s3_blob_store.hpp"

namespace imd {
namespace {

namespace fs = std::filesystem;

struct Adapter {
  std::string name;
  // nullptr: the adapter cannot run here (no server).
  std::function<std::unique_ptr<BlobStore>(const fs::path& dir)> make;
};

void PrintTo(const Adapter& a, std::ostream* os) {
  *os << a.name;
}

// The s3rver of the CTest fixture `s3` (IMD_TEST_S3_ENDPOINT), one bucket per test.
std::unique_ptr<BlobStore> make_s3(const fs::path& dir) {
  const char* endpoint = std::getenv("IMD_TEST_S3_ENDPOINT");
  if (endpoint == nullptr || *endpoint == '\0') return nullptr;
  static std::atomic<int> buckets{0};
  S3Config c;
  c.endpoint = endpoint;
  c.bucket = "imd-test-" + std::to_string(::getpid()) + "-" + std::to_string(buckets++);
  c.prefix = "files/";
  c.access_key = "S3RVER";
  c.secret_key = "S3RVER";
  c.spool_dir = dir / "spool";
  auto s3 = std::make_unique<S3BlobStore>(c);
  auto made = s3->create_bucket();
  EXPECT_TRUE(made) << made.error().message;
  return s3;
}

std::string key(char c) {
  return std::string(32, c);
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(rng());
  return s;
}

std::string read_all(BlobStore& blobs, std::string_view k) {
  auto r = blobs.open(k);
  if (!r) return "<" + r.error().message + ">";
  std::string out((*r)->size(), '\0');
  auto n = (*r)->read(0, out);
  if (!n) return "<" + n.error().message + ">";
  out.resize(*n);
  return out;
}

class BlobContract : public ::testing::TestWithParam<Adapter> {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("imd-blob-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir_);
    blobs_ = GetParam().make(dir_);
    if (!blobs_) GTEST_SKIP() << "IMD_TEST_S3_ENDPOINT is not set: run through ctest (fixture s3)";
  }
  void TearDown() override {
    blobs_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_P(BlobContract, CommittedBlobReadsBackWholeFromSeveralWrites) {
  const std::string bytes = random_bytes(300 * 1024 + 7, 1);
  auto w = blobs_->create(key('a'));
  ASSERT_TRUE(w) << w.error().message;
  for (std::size_t at = 0; at < bytes.size(); at += 64 * 1024) {
    ASSERT_TRUE((*w)->write(std::string_view(bytes).substr(at, 64 * 1024)));
  }
  // Not visible before the commit.
  EXPECT_EQ(blobs_->open(key('a')).error().code, Errc::not_found);
  ASSERT_TRUE((*w)->commit());
  EXPECT_EQ(read_all(*blobs_, key('a')), bytes);
}

TEST_P(BlobContract, RangesReadExactlyAndStopAtTheEnd) {
  const std::string bytes = random_bytes(10000, 2);
  auto w = blobs_->create(key('b'));
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->write(bytes));
  ASSERT_TRUE((*w)->commit());
  auto r = blobs_->open(key('b'));
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->size(), bytes.size());
  std::string part(100, '\0');
  auto n = (*r)->read(5000, part);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 100u);
  EXPECT_EQ(part, bytes.substr(5000, 100));
  n = (*r)->read(9950, part);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 50u);
  EXPECT_EQ(part.substr(0, 50), bytes.substr(9950));
  n = (*r)->read(10000, part);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
}

TEST_P(BlobContract, AnAbandonedWriterLeavesNothing) {
  {
    auto w = blobs_->create(key('c'));
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write(std::string(1000, 'x')));
  }
  EXPECT_EQ(blobs_->open(key('c')).error().code, Errc::not_found);
}

TEST_P(BlobContract, RemoveIsIdempotentAndHidesTheBlob) {
  auto w = blobs_->create(key('d'));
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->write(std::string("hello")));
  ASSERT_TRUE((*w)->commit());
  ASSERT_TRUE(blobs_->remove(key('d')));
  EXPECT_EQ(blobs_->open(key('d')).error().code, Errc::not_found);
  EXPECT_TRUE(blobs_->remove(key('d')));
  EXPECT_TRUE(blobs_->remove(key('e')));
}

TEST_P(BlobContract, MalformedKeysAreRefused) {
  for (std::string bad : {std::string("../../etc/passwd"), std::string(32, 'A'),
                          std::string(31, 'a'), std::string(30, 'a') + "/.", std::string()}) {
    auto w = blobs_->create(bad);
    ASSERT_FALSE(w) << bad;
    EXPECT_EQ(w.error().code, Errc::invalid_argument);
    EXPECT_EQ(blobs_->open(bad).error().code, Errc::invalid_argument);
    EXPECT_EQ(blobs_->remove(bad).error().code, Errc::invalid_argument);
  }
}

TEST_P(BlobContract, RewritingAKeyReplacesItWhole) {
  for (int round = 0; round < 2; ++round) {
    auto w = blobs_->create(key('f'));
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write(std::string(round == 0 ? 5000 : 10, static_cast<char>('0' + round))));
    ASSERT_TRUE((*w)->commit());
  }
  EXPECT_EQ(read_all(*blobs_, key('f')), std::string(10, '1'));
}

INSTANTIATE_TEST_SUITE_P(Disk, BlobContract,
                         ::testing::Values(Adapter{
                             "disk",
                             [](const fs::path& dir) -> std::unique_ptr<BlobStore> {
                               return std::make_unique<DiskBlobStore>(dir);
                             }}),
                         [](const auto& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(S3, BlobContract, ::testing::Values(Adapter{"s3", make_s3}),
                         [](const auto& info) { return info.param.name; });

// The signature of AWS's published example (Signature Version 4, "GET Object": examplebucket,
// test.txt, the first 10 bytes, 24 May 2013).
TEST(SigV4, MatchesTheAwsExample) {
  SigV4Request r;
  r.method = "GET";
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/test.txt";
  r.payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  r.amz_date = "20130524T000000Z";
  r.headers = {{"range", "bytes=0-9"},
               {"x-amz-content-sha256", r.payload_sha256},
               {"x-amz-date", r.amz_date}};
  EXPECT_EQ(sigv4_authorization(r, "us-east-1", "AKIAIOSFODNN7EXAMPLE",
                                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// An unknown access key is refused by the server: unavailable, never ok. (s3rver does not
// verify V4 signatures themselves; SigV4.MatchesTheAwsExample covers the signing.)
TEST(S3BlobStoreAgainstTheServer, AnUnknownAccessKeyIsRefused) {
  const char* endpoint = std::getenv("IMD_TEST_S3_ENDPOINT");
  if (endpoint == nullptr || *endpoint == '\0') GTEST_SKIP() << "no IMD_TEST_S3_ENDPOINT";
  const fs::path dir = fs::temp_directory_path() / ("imd-s3-bad-" + std::to_string(::getpid()));
  S3Config c;
  c.endpoint = endpoint;
  c.bucket = "imd-test-bad-" + std::to_string(::getpid());
  c.access_key = "S3RVER";
  c.secret_key = "S3RVER";
  c.spool_dir = dir;
  ASSERT_TRUE(S3BlobStore(c).create_bucket());
  c.access_key = "NOT-A-KEY";
  S3BlobStore wrong(c);
  auto w = wrong.create(key('a'));
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->write(std::string("x")));
  auto committed = (*w)->commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, Errc::unavailable);
  fs::remove_all(dir);
}

// What only the disk adapter promises: private modes, no temp files left, crash leftovers
// cleaned at start.
TEST(DiskBlobStore, FilesArePrivateAndNoTempFileRemains) {
  const fs::path dir = fs::temp_directory_path() / ("imd-blob-modes-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    DiskBlobStore blobs(dir);
    auto w = blobs.create(key('a'));
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write(std::string("x")));
    ASSERT_TRUE((*w)->commit());
    struct stat st {};
    ASSERT_EQ(::stat(blobs.path_of(key('a')).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(blobs.path_of(key('a')).parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(fs::is_empty(dir / "tmp"));
    // A writer in flight when the process died leaves a .part file behind ...
    auto left = blobs.create(key('b'));
    ASSERT_TRUE(left);
    ASSERT_FALSE(fs::is_empty(dir / "tmp"));
    // ... which the next start removes (here: a second store on the same directory).
    DiskBlobStore again(dir);
    EXPECT_TRUE(fs::is_empty(dir / "tmp"));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace imd
