#include "common/metrics_text.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace imd {

bool MetricsText::valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool MetricsText::valid_label_name(std::string_view name) {
  if (name.find(':') != std::string_view::npos || name.substr(0, 2) == "__") return false;
  return valid_name(name);
}

void MetricsText::gauge(std::string_view name, std::string_view help, double v) {
  family(name, help, "gauge");
  sample(name, {}, v);
}

void MetricsText::counter(std::string_view name, std::string_view help, double v) {
  family(name, help, "counter");
  sample(name, {}, v);
}

void MetricsText::family(std::string_view name, std::string_view help, std::string_view type) {
  // Names are constants in the code: a bad one is a programming error, not input.
  if (!valid_name(name)) throw std::logic_error("metrics: invalid name " + std::string(name));
  constexpr std::string_view kSuffix = "_total";
  if (type == "counter" &&
      (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix)) {
    throw std::logic_error("metrics: counter " + std::string(name) + " must end in _total");
  }
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes only backslash and newline
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void MetricsText::labels(std::span<const MetricLabel> ls, const MetricLabel* extra) {
  if (ls.empty() && extra == nullptr) return;
  out_ += '{';
  bool first = true;
  auto one = [&](const MetricLabel& l) {
    if (!valid_label_name(l.name)) {
      throw std::logic_error("metrics: invalid label name " + std::string(l.name));
    }
    if (!first) out_ += ',';
    first = false;
    out_ += l.name;
    out_ += "=\"";
    for (char c : l.value) {  // label values escape backslash, double quote and newline
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '"') {
        out_ += "\\\"";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  };
  for (const auto& l : ls) one(l);
  if (extra != nullptr) one(*extra);
  out_ += '}';
}

void MetricsText::value(double v) {
  if (std::isnan(v)) {
    out_ += "NaN";
  } else if (std::isinf(v)) {
    out_ += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 9.007199254740992e15) {
    out_ += std::to_string(static_cast<long long>(v));  // exact integers, no exponent
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
}

void MetricsText::sample(std::string_view name, std::span<const MetricLabel> ls, double v) {
  out_ += name;
  labels(ls, nullptr);
  out_ += ' ';
  value(v);
  out_ += '\n';
}

void MetricsText::histogram(std::string_view name, std::span<const MetricLabel> ls,
                            std::span<const double> bounds, std::span<const std::uint64_t> counts,
                            double sum) {
  if (counts.size() != bounds.size() + 1) {
    throw std::logic_error("metrics: histogram " + std::string(name) + " needs bounds + 1 counts");
  }
  std::uint64_t cumulative = 0;
  char le[32];
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += counts[i];
    std::string_view le_value = "+Inf";
    if (i < bounds.size()) {
      // Fixed notation ("0.0005", not "5e-04"): the le values people read and query.
      auto r = std::to_chars(le, le + sizeof le, bounds[i], std::chars_format::fixed);
      le_value = std::string_view(le, static_cast<std::size_t>(r.ptr - le));
    }
    const MetricLabel bucket{"le", le_value};
    out_ += name;
    out_ += "_bucket";
    labels(ls, &bucket);
    out_ += ' ';
    value(static_cast<double>(cumulative));
    out_ += '\n';
  }
  out_ += name;
  out_ += "_sum";
  labels(ls, nullptr);
  out_ += ' ';
  value(sum);
  out_ += '\n';
  out_ += name;
  out_ += "_count";
  labels(ls, nullptr);
  out_ += ' ';
  value(static_cast<double>(cumulative));
  out_ += '\n';
}

namespace {

// utime, stime (clock ticks) and starttime (ticks since boot) from /proc/self/stat.
struct ProcStat {
  double cpu_seconds = 0;
  double start_since_boot_s = 0;
  double virtual_bytes = 0;
};

ProcStat read_proc_stat() {
  ProcStat s;
  std::FILE* f = std::fopen("/proc/self/stat", "r");
  if (f == nullptr) return s;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  std::string_view text(buf, n);
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return s;
  unsigned long utime = 0, stime = 0, vsize = 0;
  unsigned long long start = 0;
  // Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice threads itrealvalue starttime vsize
  if (std::sscanf(buf + close + 1,
                  " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
                  "%llu %lu",
                  &utime, &stime, &start, &vsize) == 4) {
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    s.cpu_seconds = static_cast<double>(utime + stime) / tick;
    s.start_since_boot_s = static_cast<double>(start) / tick;
    s.virtual_bytes = static_cast<double>(vsize);
  }
  return s;
}

double boot_time_s() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return 0;
  char line[256];
  double btime = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "btime %lf", &btime) == 1) break;
  }
  std::fclose(f);
  return btime;
}

}  // namespace

void write_process_metrics(MetricsText& out) {
  const ProcStat st = read_proc_stat();
  out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
              st.cpu_seconds);
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
            static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
  out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", st.virtual_bytes);
  long fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++fds;
    }
    ::closedir(d);
    --fds;  // the directory stream's own descriptor
  }
  out.gauge("process_open_fds", "Number of open file descriptors.", static_cast<double>(fds));
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    out.gauge("process_max_fds", "Maximum number of open file descriptors.",
              static_cast<double>(rl.rlim_cur));
  }
  out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            boot_time_s() + st.start_since_boot_s);
}

}  // namespace imd
