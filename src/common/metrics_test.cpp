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

// The registry's and gRPC's families appear once a call was observed (processes that use
// neither export neither), each call counted with its time and, when it failed, as an error.
TEST(Metrics, RegistryAndRpcCallsAreCountedWithTheirTimeAndErrors) {
  auto& m = imd();
  {
    MetricsText before;
    write_imd_metrics(before);
    EXPECT_EQ(before.text().find("imd_rpc_server_call_seconds"), std::string::npos);
  }
  observe_call(m.registry_call_seconds, m.registry_errors, "keep_alive", steady_ns() - 3'000'000,
               true);
  observe_call(m.registry_call_seconds, m.registry_errors, "keep_alive", steady_ns(), false);
  observe_call(m.rpc_server_call_seconds, m.rpc_server_errors, "Push", steady_ns(), true);
  MetricsText out;
  write_imd_metrics(out);
  const std::string& t = out.text();
  auto sample = [&](const std::string& series) {
    const auto at = t.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(t.substr(at + series.size() + 2));
  };
  EXPECT_NE(t.find("# TYPE imd_registry_call_seconds histogram\n"), std::string::npos) << t;
  EXPECT_EQ(sample("imd_registry_call_seconds_count{engine=\"etcd\",operation=\"keep_alive\"}"), 2)
      << t;
  EXPECT_GE(sample("imd_registry_call_seconds_sum{engine=\"etcd\",operation=\"keep_alive\"}"),
            0.003)
      << t;
  EXPECT_EQ(sample("imd_registry_errors_total{engine=\"etcd\",operation=\"keep_alive\"}"), 1) << t;
  EXPECT_EQ(sample("imd_rpc_server_call_seconds_count{method=\"Push\"}"), 1) << t;
  EXPECT_EQ(sample("imd_rpc_server_errors_total{method=\"Push\"}"), 0) << t;
  EXPECT_EQ(t.find("imd_rpc_client_call_seconds"), std::string::npos) << "never used: " << t;
}

}  // namespace
}  // namespace imd::metrics
