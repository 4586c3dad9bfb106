// StepThread: runs a resumable background job (a search back-fill, the search indexer) one step
// at a time on its own named thread: step() returns true while more remains, false when done;
// an error is logged and the step retried after a second. Between steps it pauses `pause`, so
// the job yields to the work it shares a resource with. When done, it ends, or with a nonzero
// `idle` it waits that long and steps again (a job that new work keeps feeding). The destructor
// stops it (waiting for the step in hand) and joins. Thread-safe to construct and destroy from
// any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/error.hpp"
#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace imd {

class StepThread {
 public:
  using Step = std::function<Result<bool>()>;

  StepThread(std::string name, Step step, std::chrono::milliseconds pause,
             std::chrono::milliseconds idle = std::chrono::milliseconds(0))
      : name_(std::move(name)), step_(std::move(step)), pause_(pause), idle_(idle) {
    thread_ = std::thread([this] { run(); });
  }
  ~StepThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StepThread(const StepThread&) = delete;
  StepThread& operator=(const StepThread&) = delete;

 private:
  void run() {
    set_thread_name(name_.substr(0, 15).c_str());
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t steps = 0;
    for (;;) {
      auto more = step_();
      auto pause = pause_;
      if (!more.ok()) {
        LOG_WARN(name_ << ": " << more.error().message << " (retrying in 1 s)");
        pause = std::chrono::seconds(1);
      } else if (!*more && idle_.count() > 0) {
        pause = idle_;
      } else if (!*more) {
        if (steps > 0) {
          LOG_INFO(name_ << ": done, " << steps + 1 << " steps in "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count()
                         << " ms");
        }
        return;
      } else {
        ++steps;
      }
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, pause, [this] { return stop_; })) return;
    }
  }

  std::string name_;
  Step step_;
  std::chrono::milliseconds pause_;
  std::chrono::milliseconds idle_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace imd
