#include "support/server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace imd::test {

ServerProcess::ServerProcess(std::vector<std::string> extra, std::string data_dir)
    : extra_(std::move(extra)), data_dir_(std::move(data_dir)) {
  if (data_dir_.empty()) {
    char tmpl[] = "/tmp/imd-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    data_dir_ = tmpl;
    own_dir_ = true;
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) kill9();
  if (own_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

void ServerProcess::start() {
  // IMD_TEST_EXTERNAL_SERVER=HOST:PORT runs a suite against a server that is already up, e.g.
  // the local cluster behind nginx (scripts/cluster.sh): nothing is started or stopped here.
  if (const char* ext = std::getenv("IMD_TEST_EXTERNAL_SERVER"); ext && *ext) {
    std::string addr = ext;
    auto colon = addr.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("IMD_TEST_EXTERNAL_SERVER: HOST:PORT");
    host_ = addr.substr(0, colon);
    port_ = static_cast<unsigned short>(std::stoi(addr.substr(colon + 1)));
    external_ = true;
    return;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> args = {IMD_BINARY,   "--listen",    "127.0.0.1:0",
                                   "--data-dir", data_dir_,     "--auth-password-hash",
                                   "min",        "--log-level", "info"};
  // The suites DM between fresh accounts that share no space: DMs to anyone. The DM policy's
  // own tests pass "--limits-dm-policy shared_space" (the default of the binary) in `extra`.
  args.push_back("--limits-dm-policy");
  args.push_back("anyone");
  // IMD_TEST_SERVER_FLAGS (space-separated) runs the same suite on other engines, e.g.
  // "--store mysql --cache redis ..." (see tests/CMakeLists.txt).
  if (const char* more = std::getenv("IMD_TEST_SERVER_FLAGS")) {
    std::istringstream words(more);
    for (std::string w; words >> w;) args.push_back(w);
  }
  // Servers of concurrent tests may share one MySQL database: give each its own snowflake
  // worker id (in production a lease makes them unique; see the cluster engines, part 2).
  args.push_back("--worker-id");
  args.push_back(std::to_string(static_cast<unsigned>(::getpid()) % 1024));
  args.insert(args.end(), extra_.begin(), extra_.end());
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // The server must not outlive a test that crashed, nor hold the test's stdout open (CTest
    // waits for it).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  err_fd_ = fds[0];
  {
    std::lock_guard lock(mu_);
    log_.clear();
  }
  // Read the log until the listening line names the port.
  const std::string marker = "imd listening on http://";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string seen;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{err_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(err_fd_, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<std::size_t>(n));
    auto at = seen.find(marker);
    if (at != std::string::npos) {
      auto end = seen.find_first_of(" \n", at + marker.size());
      if (end == std::string::npos) continue;
      std::string addr = seen.substr(at + marker.size(), end - at - marker.size());
      auto colon = addr.rfind(':');
      host_ = addr.substr(0, colon);
      port_ = static_cast<unsigned short>(std::stoi(addr.substr(colon + 1)));
      {
        std::lock_guard lock(mu_);
        log_ = seen;
      }
      drain_ = std::thread([this, fd = err_fd_] {
        char b[4096];
        ssize_t k;
        while ((k = read(fd, b, sizeof b)) > 0) {
          std::lock_guard lock(mu_);
          log_.append(b, static_cast<std::size_t>(k));
        }
      });
      return;
    }
  }
  kill9();
  throw std::runtime_error("imd did not start; its log:\n" + seen);
}

void ServerProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ServerProcess::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (drain_.joinable()) drain_.join();
  if (err_fd_ >= 0) close(err_fd_);
  err_fd_ = -1;
  return status;
}

void ServerProcess::wait_exit() {
  (void)wait();
}

void ServerProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  wait_exit();
}

void ServerProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_exit();
}

std::string ServerProcess::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

}  // namespace imd::test
