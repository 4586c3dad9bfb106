#include "monitor.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "clock.hpp"

namespace imbench {

namespace {

const double kTicksPerSec = static_cast<double>(::sysconf(_SC_CLK_TCK));

bool read_small(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (!f) return false;
  char buf[4096];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  out.assign(buf, n);
  return true;
}

// utime+stime (clock ticks) and comm of a /proc/.../stat file.
bool stat_ticks(const std::string& path, std::uint64_t& ticks, std::string* comm = nullptr) {
  std::string s;
  if (!read_small(path, s)) return false;
  auto lp = s.find('(');
  auto rp = s.rfind(')');
  if (lp == std::string::npos || rp == std::string::npos) return false;
  if (comm) *comm = s.substr(lp + 1, rp - lp - 1);
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  // Fields after comm start at 3 (state); utime is 14, stime 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  ticks = utime + stime;
  return true;
}

std::map<int, std::uint64_t> thread_ticks(int pid) {
  std::map<int, std::uint64_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::uint64_t t = 0;
    if (stat_ticks(dir + "/" + e->d_name + "/stat", t)) out[std::atoi(e->d_name)] = t;
  }
  ::closedir(d);
  return out;
}

// "comm #rank/count tid=N": the rank in creation order (tid order) tells the role when
// threads are unnamed (for imd's defaults see docs/benchmarks.md).
std::string thread_name(int pid, int tid, const std::map<int, std::uint64_t>& all) {
  std::uint64_t t;
  std::string comm;
  stat_ticks("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat", t, &comm);
  std::size_t rank = 1;
  for (auto& [other, ticks] : all) {
    if (other < tid) ++rank;
  }
  return comm + " #" + std::to_string(rank) + "/" + std::to_string(all.size()) +
         " tid=" + std::to_string(tid);
}

}  // namespace

std::uint64_t rss_kib(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

Monitor::Monitor(int server_pid, int imbench_threads)
    : server_pid_(server_pid), imbench_threads_(imbench_threads) {}

Monitor::Sample Monitor::take() const {
  Sample s;
  s.t_ns = now_ns();
  if (server_pid_ > 0) {
    stat_ticks("/proc/" + std::to_string(server_pid_) + "/stat", s.server_ticks);
    s.server_rss_kib = rss_kib(server_pid_);
    s.server_threads = thread_ticks(server_pid_);
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  s.imbench_us = static_cast<std::uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                 static_cast<std::uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  for (int h : helpers_) {
    std::uint64_t t = 0;
    if (stat_ticks("/proc/" + std::to_string(h) + "/stat", t)) {
      s.imbench_us += static_cast<std::uint64_t>(static_cast<double>(t) / kTicksPerSec * 1e6);
    }
    for (auto [tid, ticks] : thread_ticks(h)) s.imbench_threads[tid] = ticks;
  }
  for (auto [tid, ticks] : thread_ticks(::getpid())) s.imbench_threads[tid] = ticks;
  std::string st;
  if (read_small("/proc/stat", st)) {
    std::istringstream in(st);
    std::string cpu;
    in >> cpu;
    std::uint64_t v[10] = {};
    for (auto& x : v) in >> x;
    std::uint64_t total = 0;
    for (int i = 0; i < 8; ++i) total += v[i];  // guest time is already in user
    s.machine_total = total;
    s.machine_busy = total - v[3] - v[4];  // minus idle and iowait
  }
  return s;
}

void Monitor::tick() {
  if (!in_window_) return;
  std::int64_t now = now_ns();
  if (now - last_ns_ < kSec) return;
  last_ns_ = now;
  window_.push_back(take());
}

void Monitor::begin() {
  window_.clear();
  window_.push_back(take());
  last_ns_ = window_.back().t_ns;
  in_window_ = true;
}

void Monitor::end() {
  if (!in_window_) return;
  window_.push_back(take());
  in_window_ = false;
}

Monitor::Summary Monitor::summary() const {
  Summary r;
  r.cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  if (window_.size() < 2) return r;
  const Sample& a = window_.front();
  const Sample& b = window_.back();
  double secs = static_cast<double>(b.t_ns - a.t_ns) / 1e9;
  if (secs <= 0) return r;
  r.seconds = secs;
  auto pct_ticks = [&](std::uint64_t d, double s) {
    return 100.0 * static_cast<double>(d) / kTicksPerSec / s;
  };
  r.server_cpu = pct_ticks(b.server_ticks - a.server_ticks, secs);
  r.imbench_cpu = 100.0 * static_cast<double>(b.imbench_us - a.imbench_us) / 1e6 / secs;
  double total = static_cast<double>(b.machine_total - a.machine_total);
  if (total > 0) {
    r.machine_cpu = 100.0 * r.cores * static_cast<double>(b.machine_busy - a.machine_busy) / total;
  }
  r.other_cpu = std::max(0.0, r.machine_cpu - r.server_cpu - r.imbench_cpu);
  for (std::size_t i = 1; i < window_.size(); ++i) {
    double s = static_cast<double>(window_[i].t_ns - window_[i - 1].t_ns) / 1e9;
    if (s < 0.5) continue;  // the short tail interval is too noisy for a peak
    r.server_cpu_peak = std::max(
        r.server_cpu_peak, pct_ticks(window_[i].server_ticks - window_[i - 1].server_ticks, s));
  }
  r.server_cpu_peak = std::max(r.server_cpu_peak, r.server_cpu);
  for (const auto& s : window_)
    r.server_rss_kib_max = std::max(r.server_rss_kib_max, s.server_rss_kib);
  r.server_rss_kib_end = b.server_rss_kib;
  std::vector<std::pair<double, int>> threads;
  for (auto [tid, ticks] : b.server_threads) {
    auto it = a.server_threads.find(tid);
    std::uint64_t before = it == a.server_threads.end() ? 0 : it->second;
    threads.emplace_back(pct_ticks(ticks - before, secs), tid);
  }
  std::sort(threads.rbegin(), threads.rend());
  for (std::size_t i = 0; i < threads.size() && i < 8; ++i) {
    if (threads[i].first < 1.0) break;
    r.server_threads.emplace_back(thread_name(server_pid_, threads[i].second, b.server_threads),
                                  threads[i].first);
  }
  if (!r.server_threads.empty()) {
    r.server_hot_thread = r.server_threads.front().first;
    r.server_hot_thread_cpu = r.server_threads.front().second;
  }
  for (auto [tid, ticks] : b.imbench_threads) {
    auto it = a.imbench_threads.find(tid);
    std::uint64_t before = it == a.imbench_threads.end() ? 0 : it->second;
    r.imbench_hot_thread_cpu = std::max(r.imbench_hot_thread_cpu, pct_ticks(ticks - before, secs));
  }

  char buf[512];
  double all = 100.0 * r.cores;
  if (server_pid_ > 0 && r.server_cpu >= 0.9 * all) {
    std::snprintf(buf, sizeof buf, "server: CPU-saturated (%.0f%% of %d cores)", r.server_cpu,
                  r.cores);
  } else if (r.imbench_hot_thread_cpu >= 90) {
    std::snprintf(buf, sizeof buf,
                  "imbench: a client thread is saturated (%.0f%%); server %.0f%%, other %.0f%%",
                  r.imbench_hot_thread_cpu, r.server_cpu, r.other_cpu);
  } else if (r.machine_cpu >= 0.9 * all) {
    std::snprintf(buf, sizeof buf,
                  "machine: all %d cores busy (server %.0f%%, imbench %.0f%%, other %.0f%%)",
                  r.cores, r.server_cpu, r.imbench_cpu, r.other_cpu);
  } else if (server_pid_ > 0 && r.server_hot_thread_cpu >= 90) {
    std::snprintf(buf, sizeof buf,
                  "server: one thread saturated (%s at %.0f%%), server %.0f%% total",
                  r.server_hot_thread.c_str(), r.server_hot_thread_cpu, r.server_cpu);
  } else {
    std::snprintf(buf, sizeof buf,
                  "no process saturated (server %.0f%%, imbench %.0f%%, other %.0f%%): "
                  "latency- or lock-bound",
                  r.server_cpu, r.imbench_cpu, r.other_cpu);
  }
  r.verdict = buf;
  return r;
}

boost::json::object Monitor::Summary::to_json() const {
  boost::json::array threads;
  for (const auto& [name, pct] : server_threads) {
    threads.push_back(boost::json::object{{"thread", name}, {"cpu_pct", pct}});
  }
  return {{"window_s", seconds},
          {"cores", cores},
          {"server_cpu_pct", server_cpu},
          {"server_cpu_peak_pct", server_cpu_peak},
          {"server_threads", std::move(threads)},
          {"server_rss_kib_max", server_rss_kib_max},
          {"server_rss_kib_end", server_rss_kib_end},
          {"imbench_cpu_pct", imbench_cpu},
          {"imbench_hot_thread_pct", imbench_hot_thread_cpu},
          {"machine_cpu_pct", machine_cpu},
          {"other_cpu_pct", other_cpu},
          {"bottleneck", verdict}};
}

}  // namespace imbench
