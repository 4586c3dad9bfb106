#include "common/metrics_text.hpp"

#include <gtest/gtest.h>

#include <limits>

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

}  // namespace
}  // namespace imd
