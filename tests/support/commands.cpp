#include "support/commands.hpp"

#include <sys/wait.h>

#include <charconv>
#include <cstdio>

namespace imd::test {

CommandResult run_command(const std::string& command) {
  CommandResult r;
  const std::string cmd = command + " 2>&1";
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  return r;
}

double metric_sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  auto at = text.find(key);
  if (at == std::string::npos) return -1;
  at += key.size();
  double v = -1;
  std::from_chars(text.data() + at, text.data() + text.size(), v);
  return v;
}

}  // namespace imd::test
