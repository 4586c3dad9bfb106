// What imd keeps on disk is its owner's alone, and names cannot disguise themselves: the
// real binary, a fresh or an older data directory, and registrations through the REST API.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

namespace fs = std::filesystem;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imd-sec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path root_;
  std::unique_ptr<ServerProcess> server_;
};

// A data directory imd creates: 0700, the database, its WAL and the JWT secret 0600 (they hold
// phone numbers, password hashes and every DM).
TEST_F(Security, ANewDataDirectoryIsTheOwnersAlone) {
  const fs::path dir = root_ / "nested" / "data";
  server_ = std::make_unique<ServerProcess>(std::vector<std::string>{}, dir.string());
  server_->start();
  if (server_->external()) GTEST_SKIP() << "the server's files are not on this machine";
  Http h(server_->host(), server_->port());
  make_account(h, "private");  // something in the database and its WAL
  EXPECT_EQ(mode_of(dir), 0700u);
  for (const char* f : {"imd.db", "imd.db-wal", "jwt.secret"}) {
    ASSERT_TRUE(fs::exists(dir / f)) << f;
    EXPECT_EQ(mode_of(dir / f), 0600u) << f;
  }
}

// One that an older version left readable by everybody is restricted at start.
TEST_F(Security, AnOlderReadableDataDirectoryIsRestrictedAtStart) {
  const fs::path dir = root_ / "old";
  {
    ServerProcess first({}, dir.string());
    first.start();
    if (first.external()) GTEST_SKIP() << "the server's files are not on this machine";
    first.stop();
  }
  fs::permissions(dir, fs::perms(0755), fs::perm_options::replace);
  fs::permissions(dir / "imd.db", fs::perms(0644), fs::perm_options::replace);
  fs::permissions(dir / "jwt.secret", fs::perms(0644), fs::perm_options::replace);
  server_ = std::make_unique<ServerProcess>(std::vector<std::string>{}, dir.string());
  server_->start();
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir / "imd.db"), 0600u);
  EXPECT_EQ(mode_of(dir / "jwt.secret"), 0600u);
  EXPECT_NE(server_->log().find("restricted to its owner"), std::string::npos);
}

// A right-to-left override makes "exe.gpj" display as "jpg.exe"; a C1 control or an isolate
// does the same kind of thing. Names with them are refused; ordinary non-Latin names are not.
TEST_F(Security, NamesWithBidiOverridesOrControlsAreRefused) {
  server_ = std::make_unique<ServerProcess>();
  server_->start();
  Http h(server_->host(), server_->port());
  int n = 0;
  auto try_register = [&](const std::string& name) {
    return h.post("/api/v1/auth/register",
                  bj::object{{"name", name},
                             {"phone", "+1666" + std::to_string(::getpid() % 10000) +
                                           std::to_string(100000 + n++)},
                             {"password", "a long enough password"}});
  };
  for (const std::string bad : {"invoice\u202Egpj.exe", "a\u2066b", "a\u2069", "x\u0085y"}) {
    auto r = try_register(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.error_code(), "invalid_argument") << bad;
  }
  for (const std::string good : {"Zoë", "王小明", "محمد", "a\u200Db"}) {
    EXPECT_EQ(try_register(good).status, 201) << good;
  }
  auto owner = make_account(h, "owner");
  auto space = h.post("/api/v1/spaces", bj::object{{"name", "team\u202E"}}, owner.access);
  EXPECT_EQ(space.status, 400);
}

}  // namespace
}  // namespace imd::test
