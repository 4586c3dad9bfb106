// Helpers for tests against the nats-server that scripts/services.sh starts (the CTest fixture
// `nats` sets IMD_TEST_NATS_URL): queue options with stream names and subjects unique per test
// (so tests run in parallel never see each other's messages), a raw client to inspect streams
// and publish arbitrary bytes, a private nats-server for tests that stop it, and waiting.
#pragma once

#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "queue_nats/nats_queue.hpp"

extern char** environ;

namespace imd::testing {

inline constexpr const char* kNatsSkipReason =
    "IMD_TEST_NATS_URL is not set: run through ctest (its fixture `nats` starts nats-server "
    "with scripts/services.sh), or start `nats-server -js` yourself and set it";

inline std::optional<std::string> nats_test_url() {
  const char* v = std::getenv("IMD_TEST_NATS_URL");
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// "t<pid>_<n>_<time>": unique per test and run.
inline std::string nats_unique_name() {
  static std::atomic<int> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(static_cast<unsigned long long>(now) % 100000000);
}

// Small bounds and short waits, memory storage, names of this test only.
inline NatsQueueOptions nats_test_options(const std::string& url) {
  std::string n = nats_unique_name();
  NatsQueueOptions o;
  o.url = url;
  o.stream = "S_" + n;
  o.subject_prefix = n + ".msg";
  o.dlq_stream = "D_" + n;
  o.dlq_subject_prefix = n + ".dlq";
  o.partitions = 4;
  o.file_storage = false;
  o.max_bytes = 32 << 20;
  o.ack_wait = std::chrono::seconds(1);
  o.fetch_wait = std::chrono::milliseconds(50);
  o.retry_backoff_min = std::chrono::milliseconds(20);
  o.retry_backoff_max = std::chrono::milliseconds(200);
  o.publish_confirm_timeout = std::chrono::seconds(2);
  o.stop_timeout = std::chrono::seconds(3);
  return o;
}

inline bool wait_until(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A plain client beside the queue: publishes raw bytes, reads and deletes streams.
class RawNats {
 public:
  explicit RawNats(const std::string& url) {
    if (natsConnection_ConnectTo(&nc_, url.c_str()) != NATS_OK) nc_ = nullptr;
    if (nc_ != nullptr && natsConnection_JetStream(&js_, nc_, nullptr) != NATS_OK) js_ = nullptr;
  }
  ~RawNats() {
    for (auto& s : cleanup_) js_DeleteStream(js_, s.c_str(), nullptr, nullptr);
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  bool ok() const { return js_ != nullptr; }
  // Streams deleted when this goes away.
  void delete_later(const std::string& stream) { cleanup_.push_back(stream); }

  bool publish(const std::string& subject, const std::string& bytes) {
    jsPubAck* pa = nullptr;
    natsStatus s = js_Publish(&pa, js_, subject.c_str(), bytes.data(),
                              static_cast<int>(bytes.size()), nullptr, nullptr);
    jsPubAck_Destroy(pa);
    return s == NATS_OK;
  }
  std::uint64_t stream_msgs(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return 0;
    std::uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }
  // The message at `seq` of `stream`: data and the given headers ("" when absent).
  struct Stored {
    std::string data;
    std::vector<std::string> headers;
  };
  std::optional<Stored> get(const std::string& stream, std::uint64_t seq,
                            const std::vector<std::string>& header_names) {
    natsMsg* m = nullptr;
    if (js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, nullptr) != NATS_OK) return std::nullopt;
    Stored out;
    out.data.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    for (const auto& h : header_names) {
      const char* v = nullptr;
      out.headers.push_back(natsMsgHeader_Get(m, h.c_str(), &v) == NATS_OK && v ? v : "");
    }
    natsMsg_Destroy(m);
    return out;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::vector<std::string> cleanup_;
};

// A nats-server of the test's own (for tests that stop or pause the server), on a free port,
// its store in a fresh directory; killed and removed by the destructor.
class PrivateNatsServer {
 public:
  PrivateNatsServer() {
    std::string bin = find_binary();
    if (bin.empty()) return;
    port_ = free_port();
    char tmpl[] = "/tmp/imd-nats-test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    std::string store = dir_ + "/js", log = dir_ + "/nats.log", port = std::to_string(port_);
    std::vector<std::string> args = {bin,         "-js", "-sd", store, "-a",
                                     "127.0.0.1", "-p",  port,  "-l",  log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) pid_ = 0;
  }
  ~PrivateNatsServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGCONT);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  bool started() const { return pid_ > 0; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  bool wait_ready() {
    return wait_until(
        [&] {
          natsConnection* nc = nullptr;
          if (natsConnection_ConnectTo(&nc, url().c_str()) != NATS_OK) return false;
          jsCtx* js = nullptr;
          jsAccountInfo* ai = nullptr;
          bool ok = natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
                    js_GetAccountInfo(&ai, js, nullptr, nullptr) == NATS_OK;
          jsAccountInfo_Destroy(ai);
          jsCtx_Destroy(js);
          natsConnection_Destroy(nc);
          return ok;
        },
        std::chrono::seconds(20));
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  void kill() {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  static std::string find_binary() {
    std::vector<std::string> dirs = {"/usr/sbin", "/usr/bin", "/usr/local/bin"};
    if (const char* path = std::getenv("PATH")) {
      std::string p = path;
      std::size_t start = 0;
      while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        dirs.push_back(p.substr(start, end - start));
        start = end + 1;
      }
    }
    for (const auto& d : dirs) {
      std::string f = d + "/nats-server";
      if (::access(f.c_str(), X_OK) == 0) return f;
    }
    return {};
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  pid_t pid_ = 0;
  int port_ = 0;
  std::string dir_;
};

}  // namespace imd::testing
