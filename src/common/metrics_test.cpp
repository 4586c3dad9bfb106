#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace imd::metrics {
namespace {

TEST(Metrics, HistogramPutsEachObservationInItsBucket) {
  Histogram h(latency_buckets());
  h.observe(0);         // <= 0.5 ms
  h.observe(500);       // <= 0.5 ms (bounds are inclusive)
  h.observe(501);       // <= 1 ms
  h.observe(3000000);   // <= 5 s
  h.observe(99000000);  // +Inf
  EXPECT_EQ(h.count(), 5u);
  MetricsText m;
  h.write(m, "imd_t_seconds", {});
  const std::string& t = m.text();
  EXPECT_NE(t.find("imd_t_seconds_bucket{le=\"0.0005\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_bucket{le=\"0.001\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_bucket{le=\"2.5\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_bucket{le=\"5\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_sum 102.001001\n"), std::string::npos) << t;
  EXPECT_NE(t.find("imd_t_seconds_count 5\n"), std::string::npos) << t;
}

TEST(Metrics, LabelValuesAreBoundedWithTheRestUnderOther) {
  LabeledCounter c([] { return std::make_unique<Counter>(); });
  for (std::size_t i = 0; i < 100; ++i) c.at("v" + std::to_string(i)).inc();
  c.at("v0").inc();
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  c.each([&](std::string_view v, const Counter& x) { seen.emplace_back(v, x.value()); });
  ASSERT_EQ(seen.size(), LabeledCounter::kMaxLabelValues);
  EXPECT_EQ(seen.front(), (std::pair<std::string, std::uint64_t>{"v0", 2}));
  EXPECT_EQ(seen.back().first, "other");
  // 100 values: 31 have their own series, the other 69 share "other".
  EXPECT_EQ(seen.back().second, 100u - (LabeledCounter::kMaxLabelValues - 1));
}

TEST(Metrics, CountersAddUpAcrossThreads) {
  LabeledCounter c([] { return std::make_unique<Counter>(); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) c.at(i % 2 ? "a" : "b").inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.at("a").value() + c.at("b").value(), 400000u);
  EXPECT_EQ(c.at("a").value(), 200000u);
}

TEST(Metrics, TheCatalogueWritesEveryContractSeries) {
  imd().messages_stored.inc();
  imd().send_to_sent_seconds.observe(1500);
  MetricsText m;
  write_imd_metrics(m);
  const std::string& t = m.text();
  EXPECT_NE(t.find("# TYPE imd_messages_stored_total counter\n"), std::string::npos);
  EXPECT_EQ(t.find("\nimd_messages_stored_total 0\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE imd_send_to_sent_seconds histogram\n"), std::string::npos);
  EXPECT_NE(t.find("imd_send_to_sent_seconds_bucket{le=\"0.0025\"} "), std::string::npos);
}

}  // namespace
}  // namespace imd::metrics
