// `imd backup` and `imd restore` (src/app/admin_command.hpp) against the real binary: an online
// backup taken while DMs are being stored, restored into a new data directory; the restored
// server's history holds every message ACKed before the backup started, with dense seqs, no
// duplicate and nothing that was never sent, and it keeps storing after them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/client.hpp"
#include "support/commands.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

CommandResult run_imd(const std::vector<std::string>& args) {
  std::string cmd = IMD_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  return run_command(cmd);
}

std::string login(Http& http, const Account& a) {
  auto r =
      http.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  if (r.status != 200) throw std::runtime_error("login failed: " + r.body);
  return std::string(r.json.as_object().at("access_token").as_string());
}

// Every message of the DM as `token`'s user sees it, by seq.
std::vector<bj::object> dm_history(Http& http, const std::string& peer, const std::string& token) {
  std::vector<bj::object> out;
  std::uint64_t after = 0;
  for (;;) {
    auto r = http.get(
        "/api/v1/dms/" + peer + "/messages?limit=100&after_seq=" + std::to_string(after), token);
    if (r.status != 200) throw std::runtime_error("history: " + r.body);
    const auto& msgs = r.json.as_object().at("messages").as_array();
    for (const auto& m : msgs) out.push_back(m.as_object());
    if (msgs.size() < 100) return out;
    after = num(out.back(), "seq");
  }
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/imd-backup-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Backup, AnOnlineBackupUnderLoadRestoresEveryMessageAckedBeforeIt) {
  const std::vector<std::string> flags = {
      "--limits-ws-rate-per-s",   "1000000", "--limits-ws-burst",   "1000000",
      "--limits-http-rate-per-s", "100000",  "--limits-http-burst", "100000"};
  ServerProcess server(flags);
  if (server.external()) GTEST_SKIP() << "needs the server's data directory";
  server.start();
  TempDir tmp;
  const std::string backup = tmp.path() + "/imd-backup.db";
  Http http(server.host(), server.port());
  auto alice = make_account(http, "alice"), bob = make_account(http, "bob");

  // Steady load: DMs from alice, at most 200 unanswered, each `sent` recorded (cid -> seq).
  std::mutex mu;
  std::map<std::string, std::uint64_t> acked;
  std::set<std::string> sent_cids;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::string failure;
  std::thread load([&] {
    try {
      Ws ws(server.host(), server.port(), alice.access);
      if (!ws.recv_op("synced", 10s)) throw std::runtime_error("no synced");
      int next = 0, unanswered = 0;
      while (!stop.load() || unanswered > 0) {
        while (!stop.load() && unanswered < 200) {
          const std::string cid = "b" + std::to_string(next++);
          {
            std::lock_guard lock(mu);
            sent_cids.insert(cid);
          }
          ws.send(send_dm(cid, bob.id, "backup " + cid));
          ++unanswered;
        }
        auto f = ws.recv(10s);
        if (!f) throw std::runtime_error("no answer from the server in 10 s");
        if (str(*f, "op") == "sent") {
          std::lock_guard lock(mu);
          acked[str(*f, "cid")] = num(*f, "seq");
          --unanswered;
        } else if (str(*f, "op") == "error") {
          ++errors;
          --unanswered;
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      failure = e.what();
    }
  });
  auto acked_count = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  };
  auto wait_acked = [&](std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (acked_count() < n && std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mu);
        if (!failure.empty()) return false;
      }
      std::this_thread::sleep_for(10ms);
    }
    return acked_count() >= n;
  };
  ASSERT_TRUE(wait_acked(3000)) << failure;

  std::map<std::string, std::uint64_t> before;
  {
    std::lock_guard lock(mu);
    before = acked;
  }
  auto b = run_imd({"backup", "--data-dir", server.data_dir(), "--to", backup});
  ASSERT_EQ(b.status, 0) << b.output;
  EXPECT_NE(b.output.find("imd backup: "), std::string::npos) << b.output;
  const std::size_t at_backup = acked_count();
  // The load goes on after the backup: the server was never paused.
  EXPECT_TRUE(wait_acked(at_backup + 1000)) << failure;
  stop = true;
  load.join();
  ASSERT_EQ(failure, "");
  EXPECT_EQ(errors.load(), 0);

  // A second backup to the same file is refused; the first is untouched.
  auto again = run_imd({"backup", "--data-dir", server.data_dir(), "--to", backup});
  EXPECT_EQ(again.status, 1) << again.output;
  EXPECT_NE(again.output.find("exists"), std::string::npos) << again.output;
  server.stop();

  // Restore into a fresh data directory; a second restore there is refused.
  const std::string restored = tmp.path() + "/restored";
  // A search index left in the directory indexes another database: the restore removes it
  // (the server rebuilds search.db from the restored messages).
  std::filesystem::create_directories(restored);
  std::ofstream(restored + "/search.db") << "an index of some other database";
  auto r = run_imd({"restore", "--from", backup, "--data-dir", restored});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(std::filesystem::exists(restored + "/search.db"));
  auto twice = run_imd({"restore", "--from", backup, "--data-dir", restored});
  EXPECT_EQ(twice.status, 1) << twice.output;
  // Not an imd database: refused.
  std::ofstream(tmp.path() + "/junk.db") << "not a database";
  auto junk =
      run_imd({"restore", "--from", tmp.path() + "/junk.db", "--data-dir", tmp.path() + "/other"});
  EXPECT_EQ(junk.status, 1) << junk.output;

  ServerProcess second(flags, restored);
  second.start();
  Http h2(second.host(), second.port());
  const std::string token = login(h2, alice);
  auto hist = dm_history(h2, bob.id, token);

  // The history checker: dense seqs from 1, each cid once and one that was sent, every message
  // ACKed before the backup began at the seq it was ACKed with.
  std::set<std::string> cids;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    ASSERT_EQ(num(hist[i], "seq"), i + 1) << "seqs not dense at " << i;
    const std::string cid = str(hist[i], "cid");
    EXPECT_TRUE(cids.insert(cid).second) << "cid " << cid << " stored twice";
    EXPECT_TRUE(sent_cids.count(cid)) << "cid " << cid << " was never sent";
  }
  std::size_t missing = 0;
  for (const auto& [cid, seq] : before) {
    if (seq > hist.size() || str(hist[seq - 1], "cid") != cid) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << before.size() << " messages ACKed before the backup";
  EXPECT_GE(hist.size(), before.size());
  EXPECT_LE(hist.size(), acked.size()) << "the backup holds more than was ever ACKed";

  // The restored server keeps going from there.
  Ws ws(second.host(), second.port(), token);
  ASSERT_TRUE(ws.recv_op("synced", 10s));
  ws.send(send_dm("after-restore", bob.id, "still here"));
  auto s = ws.recv_op("sent", 10s);
  ASSERT_TRUE(s);
  EXPECT_EQ(num(*s, "seq"), hist.size() + 1);
}

}  // namespace
}  // namespace imd::test
