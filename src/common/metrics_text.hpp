// MetricsText: writes metrics in the Prometheus text exposition format (version 0.0.4), the
// format `GET /metrics` answers. No client library for it is packaged in Debian; this is the
// small part imd needs: HELP and TYPE lines once per family, samples with or without labels
// (label values escaped), histograms as cumulative `_bucket{le=...}`, `_sum` and `_count`,
// names checked against the format's grammar, counters named `*_total` (Prometheus naming).
//
// Not thread-safe: one writer per scrape. MetricsSource is how a component contributes its
// metrics; sources are called on the scraping thread and must not block for long.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace imd {

struct MetricLabel {
  std::string_view name;
  std::string_view value;
};

class MetricsText {
 public:
  // One family with one unlabelled sample.
  // A value that can go up and down (bytes, frames, connections).
  void gauge(std::string_view name, std::string_view help, double value);
  // A value that only grows while the process lives; `name` must end in "_total".
  void counter(std::string_view name, std::string_view help, double value);

  // A family's HELP and TYPE lines ("counter", "gauge", "histogram"), then its samples.
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, std::span<const MetricLabel> labels, double value);
  // The samples of one histogram series: `bounds` ascending upper bounds, `counts` one per
  // bound plus the +Inf bucket (not cumulative: this writes the running sums).
  void histogram(std::string_view name, std::span<const MetricLabel> labels,
                 std::span<const double> bounds, std::span<const std::uint64_t> counts, double sum);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

  // [a-zA-Z_:][a-zA-Z0-9_:]*
  static bool valid_name(std::string_view name);
  // [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved)
  static bool valid_label_name(std::string_view name);

 private:
  void value(double v);
  void labels(std::span<const MetricLabel> labels, const MetricLabel* extra);
  std::string out_;
};

using MetricsSource = std::function<void(MetricsText&)>;

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds from /proc/self (the
// names every Prometheus client library uses).
void write_process_metrics(MetricsText& out);

}  // namespace imd
