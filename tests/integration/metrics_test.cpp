// GET /metrics on the real binary after real traffic: the text passes `promtool check metrics`
// (Prometheus's own parser and linter), and the contract series are there and moved:
// imd_messages_stored_total, the send->sent histogram imd_send_to_sent_seconds, frames by op,
// connections, store calls by engine and operation, process CPU. On the standalone engines and
// again on MySQL + Redis (tests/CMakeLists.txt: MysqlRedis.Metrics.*). With etcd as the
// registry (Etcd.Metrics.*, the etcd fixture), the registry's calls are timed by operation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/client.hpp"
#include "support/commands.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

// Runs `promtool check metrics` with `text` on its standard input.
CommandResult promtool_check(const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string in = (dir / ("imd-metrics-" + std::to_string(::getpid()) + ".txt")).string();
  std::ofstream(in) << text;
  auto r = run_command(std::string(IMD_PROMTOOL) + " check metrics < " + in);
  std::filesystem::remove(in);
  return r;
}

TEST(Metrics, AScrapeAfterTrafficPassesPromtoolAndTheContractSeriesMoved) {
  ServerProcess server;
  server.start();
  Http http(server.host(), server.port());

  auto before = http.get("/metrics");
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u)
      << before.header("Content-Type");
  const double stored_before = metric_sample(before.body, "imd_messages_stored_total");
  ASSERT_GE(stored_before, 0) << before.body;

  auto alice = make_account(http, "alice"), bob = make_account(http, "bob");
  Ws wa(server.host(), server.port(), alice.access), wb(server.host(), server.port(), bob.access);
  ASSERT_TRUE(wa.recv_op("synced"));
  ASSERT_TRUE(wb.recv_op("synced"));
  constexpr int kMessages = 20;
  for (int i = 0; i < kMessages; ++i) {
    wa.send(send_dm("m" + std::to_string(i), bob.id, "hello " + std::to_string(i)));
    ASSERT_TRUE(wa.recv_op("sent")) << "message " << i;
    auto got = wb.recv_op("msg");
    ASSERT_TRUE(got) << "message " << i;
    wb.send({{"op", "ack"}, {"conversation", "dm:" + alice.id}, {"seq", num(*got, "seq")}});
  }
  // A ping after the last ack: its pong means the server has read every ack of this socket
  // (a socket's frames are read in order), so the scrape below cannot overtake the last one.
  wb.send({{"op", "ping"}});
  ASSERT_TRUE(wb.recv_op("pong"));
  wa.send({{"op", "bogus"}});
  ASSERT_TRUE(wa.recv_op("error"));

  auto after = http.get("/metrics");
  ASSERT_EQ(after.status, 200);
  const std::string& t = after.body;
  auto check = promtool_check(t);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << t;
  EXPECT_EQ(check.output, "") << "promtool's lint: " << check.output;

  EXPECT_EQ(metric_sample(t, "imd_messages_stored_total"), stored_before + kMessages) << t;
  EXPECT_GE(metric_sample(t, "imd_messages_accepted_total"), kMessages) << t;
  EXPECT_GE(metric_sample(t, "imd_messages_delivered_total"), kMessages) << t;
  EXPECT_EQ(metric_sample(t, "imd_send_to_sent_seconds_count"), kMessages) << t;
  EXPECT_EQ(metric_sample(t, "imd_send_to_sent_seconds_bucket{le=\"+Inf\"}"), kMessages) << t;
  EXPECT_GE(metric_sample(t, "imd_send_to_deliver_seconds_count"), kMessages) << t;
  // On an idle loopback server a send is stored and ACKed well within a second.
  EXPECT_EQ(metric_sample(t, "imd_send_to_sent_seconds_bucket{le=\"1\"}"), kMessages) << t;
  EXPECT_EQ(metric_sample(t, "imd_ws_frames_received_total{op=\"send\"}"), kMessages) << t;
  EXPECT_GE(metric_sample(t, "imd_ws_frames_received_total{op=\"ack\"}"), kMessages) << t;
  EXPECT_EQ(metric_sample(t, "imd_ws_frames_received_total{op=\"unknown\"}"), 1) << t;
  EXPECT_GE(metric_sample(t, "imd_ws_frames_sent_total{op=\"sent\"}"), kMessages) << t;
  EXPECT_GE(metric_sample(t, "imd_ws_frames_sent_total{op=\"msg\"}"), kMessages) << t;
  EXPECT_EQ(metric_sample(t, "imd_ws_frames_sent_total{op=\"hello\"}"), 2) << t;
  EXPECT_EQ(metric_sample(t, "imd_ws_connections"), 2) << t;
  EXPECT_EQ(metric_sample(t, "imd_ws_connections_opened_total"), 2) << t;
  EXPECT_GE(metric_sample(t, "imd_backfill_messages_count"), 2) << t;
  // The engines' series carry the engine (IMD_TEST_SERVER_FLAGS runs this on MySQL + Redis).
  const bool sqlite = metric_sample(t, "imd_sqlite_db_bytes") >= 0;
  const std::string store = sqlite ? "sqlite" : "mysql", inbox = sqlite ? "sqlite" : "redis";
  EXPECT_GE(metric_sample(t, "imd_store_call_seconds_count{engine=\"" + store +
                                 "\",operation=\"append_messages\"}"),
            1)
      << t;
  EXPECT_GE(
      metric_sample(t, "imd_inbox_call_seconds_count{engine=\"" + inbox + "\",operation=\"push\"}"),
      1)
      << t;
  EXPECT_EQ(metric_sample(t, "imd_store_errors_total{engine=\"" + store +
                                 "\",operation=\"append_messages\"}"),
            0)
      << t;
  EXPECT_EQ(metric_sample(t, "imd_dependency_up{dependency=\"store\"}"), 1) << t;
  EXPECT_EQ(metric_sample(t, "imd_ready"), 1) << t;
  EXPECT_EQ(metric_sample(t, "imd_queue_depth{engine=\"local\"}"), 0) << t;
  EXPECT_EQ(metric_sample(t, "imd_role{role=\"logic\"}"), 1) << t;
  if (sqlite) {
    EXPECT_GE(metric_sample(t, "imd_sqlite_wal_bytes"), 0) << t;
    // Every write transaction (the 20 sends' batches among them) waited for and held the
    // writer once; the two histograms count the same transactions.
    const double waits = metric_sample(t, "imd_sqlite_writer_wait_seconds_count");
    EXPECT_GE(waits, 1) << t;
    EXPECT_GE(metric_sample(t, "imd_sqlite_writer_hold_seconds_count"), waits - 1) << t;
  } else {
    EXPECT_EQ(metric_sample(t, "imd_dependency_up{dependency=\"redis\"}"), 1) << t;
    // The Redis inbox pushes with a Lua script: timed as EVALSHA.
    EXPECT_GE(
        metric_sample(t, "imd_redis_call_seconds_count{engine=\"redis\",operation=\"EVALSHA\"}"), 1)
        << t;
  }
  EXPECT_GT(metric_sample(t, "process_cpu_seconds_total"), 0) << t;
  EXPECT_GT(metric_sample(t, "process_open_fds"), 0) << t;
}

// A server whose registry is etcd (the fixture's, IMD_TEST_ETCD_ENDPOINTS): its lease grant,
// worker-id claim, node put, watch listings and watch creations and the lease keep-alives are
// real calls, each timed under its operation, none failed; the gRPC Push series of a process
// that pushes through RemotePusher and serves PushServer exist from the start.
TEST(Metrics, OnEtcdTheRegistryCallsAreTimedByOperation) {
  const char* endpoints = std::getenv("IMD_TEST_ETCD_ENDPOINTS");
  if (endpoints == nullptr || *endpoints == '\0') {
    GTEST_SKIP() << "IMD_TEST_ETCD_ENDPOINTS is not set (ctest -R Etcd.Metrics runs it)";
  }
  const std::string prefix = "/imd-metrics-" + std::to_string(::getpid()) + "/";
  ServerProcess server({"--registry", "etcd", "--etcd-endpoints", endpoints, "--etcd-prefix",
                        prefix, "--etcd-lease-ttl-s", "2"});
  server.start();
  Http http(server.host(), server.port());
  auto series = [](const std::string& op) {
    return "imd_registry_call_seconds_count{engine=\"etcd\",operation=\"" + op + "\"}";
  };
  // A 2 s lease is kept alive every 2/3 s: wait (bounded) for two answered keep-alives.
  std::string t;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < until;) {
    t = http.get("/metrics").body;
    if (metric_sample(t, series("keep_alive")) >= 2) break;
    std::this_thread::sleep_for(100ms);  // polling a counter, bounded by `until`
  }
  auto check = promtool_check(t);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << t;
  EXPECT_EQ(check.output, "") << "promtool's lint: " << check.output;
  EXPECT_GE(metric_sample(t, series("keep_alive")), 2) << t;
  EXPECT_EQ(metric_sample(t, series("lease_grant")), 1) << t;
  EXPECT_GE(metric_sample(t, series("txn")), 1) << t;    // the worker id claimed
  EXPECT_GE(metric_sample(t, series("range")), 1) << t;  // a watch's listing
  EXPECT_GE(metric_sample(t, series("watch")), 1) << t;  // a watch created
  EXPECT_GT(
      metric_sample(t, "imd_registry_call_seconds_sum{engine=\"etcd\",operation=\"keep_alive\"}"),
      0)
      << t;
  for (const char* op : {"range", "put", "txn", "lease_grant", "keep_alive", "watch"}) {
    EXPECT_EQ(metric_sample(t, "imd_registry_errors_total{engine=\"etcd\",operation=\"" +
                                   std::string(op) + "\"}"),
              0)
        << op << "\n"
        << t;
  }
  // One process holds every connection: nothing to push over gRPC, the series wait at 0.
  EXPECT_EQ(metric_sample(t, "imd_rpc_client_call_seconds_count{method=\"Push\"}"), 0) << t;
  EXPECT_EQ(metric_sample(t, "imd_rpc_server_call_seconds_count{method=\"Push\"}"), 0) << t;
}

}  // namespace
}  // namespace imd::test
