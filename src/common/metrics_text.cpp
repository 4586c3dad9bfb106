#include "common/metrics_text.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
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

void MetricsText::gauge(std::string_view name, std::string_view help, double value) {
  family(name, help, "gauge", value);
}

void MetricsText::counter(std::string_view name, std::string_view help, double value) {
  constexpr std::string_view kSuffix = "_total";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
    throw std::logic_error("metrics: counter " + std::string(name) + " must end in _total");
  }
  family(name, help, "counter", value);
}

void MetricsText::family(std::string_view name, std::string_view help, std::string_view type,
                         double value) {
  // Names are constants in the code: a bad one is a programming error, not input.
  if (!valid_name(name)) throw std::logic_error("metrics: invalid name " + std::string(name));
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
  out_ += name;
  out_ += ' ';
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::trunc(value) && std::fabs(value) < 9.007199254740992e15) {
    out_ += std::to_string(static_cast<long long>(value));  // exact integers, no exponent
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    out_.append(buf, r.ptr);
  }
  out_ += '\n';
}

void write_process_metrics(MetricsText& out) {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
            static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
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
}

}  // namespace imd
