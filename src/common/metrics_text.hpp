// MetricsText: writes metrics in the Prometheus text exposition format (version 0.0.4), the
// format `GET /metrics` answers. No client library for it is packaged in Debian; this is the
// small part imd needs: one sample per metric family (no labels yet), HELP and TYPE lines,
// names checked against the format's grammar, counters named `*_total` (Prometheus naming).
//
// Not thread-safe: one writer per scrape. MetricsSource is how a component contributes its
// metrics; sources are called on the scraping thread and must not block for long.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace imd {

class MetricsText {
 public:
  // A value that can go up and down (bytes, frames, connections).
  void gauge(std::string_view name, std::string_view help, double value);
  // A value that only grows while the process lives; `name` must end in "_total".
  void counter(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

  // [a-zA-Z_:][a-zA-Z0-9_:]*
  static bool valid_name(std::string_view name);

 private:
  void family(std::string_view name, std::string_view help, std::string_view type, double value);
  std::string out_;
};

using MetricsSource = std::function<void(MetricsText&)>;

// process_resident_memory_bytes, process_open_fds and process_max_fds from /proc/self.
void write_process_metrics(MetricsText& out);

}  // namespace imd
