// Small helpers of black-box tests that read what a process printed: running a command and
// capturing its output, and reading one sample from Prometheus text (GET /metrics).
#pragma once

#include <string>

namespace imd::test {

struct CommandResult {
  int status = -1;     // the exit status; -1 when it did not exit normally
  std::string output;  // standard output and standard error, interleaved
};

// Runs `command` through /bin/sh and waits for it.
CommandResult run_command(const std::string& command);

// The value of the sample whose line starts with `series` (the name, and its labels as the
// server writes them: `imd_x{op="send"}`), or -1 when there is none.
double metric_sample(const std::string& text, const std::string& series);

}  // namespace imd::test
