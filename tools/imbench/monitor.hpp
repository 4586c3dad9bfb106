// Resource sampling from /proc, once a second: the server's CPU (utime+stime of
// /proc/<pid>/stat, per thread from /proc/<pid>/task) and RSS (VmRSS), imbench's own CPU
// (and that of forked helpers), and the whole machine's CPU from /proc/stat. A window
// (begin()..end()) gives averages, per-second peaks and the bottleneck verdict.
//
// Threading: one thread (the one that calls tick()).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace imbench {

// Reads VmRSS of a process in KiB (0 if unknown).
std::uint64_t rss_kib(int pid);

class Monitor {
 public:
  // server_pid 0: no server sampling (verdicts then only speak of imbench and the machine).
  Monitor(int server_pid, int imbench_threads);

  void add_helper(int pid) { helpers_.push_back(pid); }
  int server_pid() const { return server_pid_; }
  // Samples if a second has passed since the last sample. Cheap otherwise.
  void tick();
  void begin();  // starts a measurement window (takes a sample)
  void end();    // ends it (takes a sample)

  struct Summary {
    double seconds = 0;
    int cores = 0;
    double server_cpu = 0;       // percent of one core, averaged over the window
    double server_cpu_peak = 0;  // highest one-second value
    std::string server_hot_thread;
    double server_hot_thread_cpu = 0;
    std::vector<std::pair<std::string, double>> server_threads;  // busiest first
    double imbench_cpu = 0;
    double imbench_hot_thread_cpu = 0;
    double machine_cpu = 0;  // all processes, percent of one core (max cores*100)
    double other_cpu = 0;    // machine - server - imbench: other work on the machine
    std::uint64_t server_rss_kib_max = 0;
    std::uint64_t server_rss_kib_end = 0;
    std::string verdict;
    boost::json::object to_json() const;
  };
  Summary summary() const;

 private:
  struct Sample {
    std::int64_t t_ns = 0;
    std::uint64_t server_ticks = 0;
    std::uint64_t server_rss_kib = 0;
    std::uint64_t imbench_us = 0;
    std::uint64_t machine_busy = 0;
    std::uint64_t machine_total = 0;
    std::map<int, std::uint64_t> server_threads;  // tid -> ticks
    std::map<int, std::uint64_t> imbench_threads;
  };
  Sample take() const;

  int server_pid_;
  int imbench_threads_;
  std::vector<int> helpers_;
  std::vector<Sample> window_;
  bool in_window_ = false;
  std::int64_t last_ns_ = 0;
};

}  // namespace imbench
