// What GET /metrics writes besides the process_* series: the catalogue of common/metrics.hpp
// and, read at scrape time, the components' own state and counters (queue depth and age,
// WebSocket connections, the SQLite WAL, the Redis client, JetStream, the gRPC Push client and
// server). Null parts are left out. docs/operations.md describes every series.
#pragma once

#include <memory>

#include "common/config.hpp"
#include "common/metrics_text.hpp"

namespace imd {

class DependencyGuard;
class SheddingPusher;
class LocalQueue;
class Readiness;
class NatsQueue;
class SqliteDatabase;
class SqliteSearch;
namespace gateway {
class Hub;
}
namespace redis {
class RedisClient;
}
namespace rpc {
class PushServer;
class RemotePusher;
}  // namespace rpc

struct MetricsParts {
  Roles roles;
  const gateway::Hub* hub = nullptr;
  const LocalQueue* local_queue = nullptr;
  const NatsQueue* nats_queue = nullptr;
  std::shared_ptr<SqliteDatabase> sqlite;
  std::shared_ptr<redis::RedisClient> redis_client;
  const rpc::PushServer* push_server = nullptr;
  const rpc::RemotePusher* remote_pusher = nullptr;
  // Each scrape runs the readiness checks (cached for a second): imd_ready, imd_draining and
  // imd_dependency_up{dependency} (store, redis, nats, etcd, queue).
  Readiness* readiness = nullptr;
  // imd_breaker_state{dependency} and the breakers' transitions and refusals.
  DependencyGuard* guard = nullptr;
  // imd_shed_total{what="typing"}: typing indicators dropped while degraded.
  const SheddingPusher* shedding = nullptr;
  // imd_shed_total{what="search_indexing"}: indexer passes postponed while degraded.
  const SqliteSearch* sqlite_search = nullptr;
  // imd_build_info{version} 1.
  std::string version;
};

// The parts must outlive the source (App::Parts owns both).
MetricsSource make_metrics_source(MetricsParts parts);

}  // namespace imd
