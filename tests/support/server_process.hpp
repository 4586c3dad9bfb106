// Starts the real `imd` binary on 127.0.0.1:0 with a temporary data dir, learns its port
// from the log, and stops (SIGTERM), kills (SIGKILL) or restarts it on the same data dir.
// Or, with IMD_TEST_EXTERNAL_SERVER=HOST:PORT, stands for a server that runs elsewhere.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace imd::test {

class ServerProcess {
 public:
  // `extra` flags are appended to the defaults (fast password hashing, temp data dir).
  explicit ServerProcess(std::vector<std::string> extra = {}, std::string data_dir = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  void start();
  void stop();   // SIGTERM and wait
  void kill9();  // SIGKILL and wait
  // Sends `sig` and returns at once (stop() and kill9() wait for the exit).
  void signal(int sig);
  // Waits for the exit and returns its wait status (-1: not running).
  int wait();
  void restart() {
    stop();
    start();
  }

  const std::string& host() const { return host_; }
  unsigned short port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log() const;
  bool running() const { return pid_ > 0; }
  // True when IMD_TEST_EXTERNAL_SERVER named a server that runs elsewhere: stop(), kill9()
  // and restart() then do nothing, and extra flags are not applied.
  bool external() const { return external_; }

 private:
  void wait_exit();

  std::vector<std::string> extra_;
  std::string data_dir_;
  bool own_dir_ = false;
  pid_t pid_ = -1;
  bool external_ = false;
  int err_fd_ = -1;
  std::string host_ = "127.0.0.1";
  unsigned short port_ = 0;
  std::thread drain_;
  mutable std::mutex mu_;
  std::string log_;
};

}  // namespace imd::test
