#include "common/metrics_text.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <limits>
#include <string>

namespace imd {
namespace {

TEST(MetricsText, WritesHelpTypeAndSampleLines) {
  MetricsText m;
  m.gauge("imd_sqlite_wal_bytes", "Size of the WAL file.", 4096);
  m.counter("imd_sqlite_checkpoints_total", "Checkpoints run.", 17);
  EXPECT_EQ(m.text(),
            "# HELP imd_sqlite_wal_bytes Size of the WAL file.\n"
            "# TYPE imd_sqlite_wal_bytes gauge\n"
            "imd_sqlite_wal_bytes 4096\n"
            "# HELP imd_sqlite_checkpoints_total Checkpoints run.\n"
            "# TYPE imd_sqlite_checkpoints_total counter\n"
            "imd_sqlite_checkpoints_total 17\n");
}

TEST(MetricsText, ValuesAreExactIntegersFloatsOrSpecials) {
  MetricsText m;
  m.gauge("a", "", 1e12);
  m.gauge("b", "", 0.25);
  m.gauge("c", "", std::numeric_limits<double>::quiet_NaN());
  m.gauge("d", "", -std::numeric_limits<double>::infinity());
  const std::string& t = m.text();
  EXPECT_NE(t.find("\na 1000000000000\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nb 0.25\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nc NaN\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nd -Inf\n"), std::string::npos) << t;
}

TEST(MetricsText, HelpEscapesBackslashAndNewline) {
  MetricsText m;
  m.gauge("x", "a\\b\nc", 1);
  EXPECT_EQ(m.text().substr(0, m.text().find('\n') + 1), "# HELP x a\\\\b\\nc\n");
}

TEST(MetricsText, RejectsBadNamesAndCountersWithoutTotal) {
  EXPECT_TRUE(MetricsText::valid_name("imd_x:y_1"));
  EXPECT_FALSE(MetricsText::valid_name("1abc"));
  EXPECT_FALSE(MetricsText::valid_name("a-b"));
  EXPECT_FALSE(MetricsText::valid_name(""));
  MetricsText m;
  EXPECT_THROW(m.gauge("bad name", "", 1), std::logic_error);
  EXPECT_THROW(m.counter("imd_checkpoints", "", 1), std::logic_error);
}

TEST(MetricsText, ProcessMetricsAreThere) {
  MetricsText m;
  write_process_metrics(m);
  EXPECT_NE(m.text().find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(m.text().find("\nprocess_open_fds "), std::string::npos);
  EXPECT_EQ(m.text().find("\nprocess_resident_memory_bytes 0\n"), std::string::npos);
}

TEST(MetricsText, LabelsAreEscapedAndValidated) {
  MetricsText m;
  m.family("imd_x_total", "x", "counter");
  const MetricLabel ls[] = {{"op", "a\"b\\c\nd"}, {"engine", "sqlite"}};
  m.sample("imd_x_total", ls, 3);
  EXPECT_NE(m.text().find("\nimd_x_total{op=\"a\\\"b\\\\c\\nd\",engine=\"sqlite\"} 3\n"),
            std::string::npos)
      << m.text();
  const MetricLabel bad[] = {{"__reserved", "x"}};
  EXPECT_THROW(m.sample("imd_x_total", bad, 1), std::logic_error);
  EXPECT_FALSE(MetricsText::valid_label_name("a:b"));
  EXPECT_THROW(m.family("imd_no_suffix", "", "counter"), std::logic_error);
}

TEST(MetricsText, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsText m;
  m.family("imd_lat_seconds", "h", "histogram");
  const double bounds[] = {0.001, 0.5};
  const std::uint64_t counts[] = {2, 3, 1};
  const MetricLabel ls[] = {{"operation", "append"}};
  m.histogram("imd_lat_seconds", ls, bounds, counts, 1.25);
  EXPECT_EQ(m.text(),
            "# HELP imd_lat_seconds h\n"
            "# TYPE imd_lat_seconds histogram\n"
            "imd_lat_seconds_bucket{operation=\"append\",le=\"0.001\"} 2\n"
            "imd_lat_seconds_bucket{operation=\"append\",le=\"0.5\"} 5\n"
            "imd_lat_seconds_bucket{operation=\"append\",le=\"+Inf\"} 6\n"
            "imd_lat_seconds_sum{operation=\"append\"} 1.25\n"
            "imd_lat_seconds_count{operation=\"append\"} 6\n");
  const std::uint64_t wrong[] = {1};
  EXPECT_THROW(m.histogram("imd_lat_seconds", {}, bounds, wrong, 0), std::logic_error);
}

TEST(MetricsText, ProcessCpuAndStartTimeAreRead) {
  MetricsText m;
  write_process_metrics(m);
  EXPECT_NE(m.text().find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  const auto at = m.text().find("\nprocess_start_time_seconds ");
  ASSERT_NE(at, std::string::npos);
  // After 2020-01-01 and not in the future.
  const double start = std::stod(m.text().substr(at + 28));
  EXPECT_GT(start, 1577836800.0);
  EXPECT_LT(start, static_cast<double>(std::time(nullptr)) + 2);
}

}  // namespace
}  // namespace imd
