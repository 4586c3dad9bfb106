#include "app/metrics_source.hpp"

#include <cstdio>

#include "app/dependency_guard.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/readiness.hpp"
#include "gateway/hub.hpp"
#include "queue/local_queue.hpp"
#include "queue_nats/nats_queue.hpp"
#include "redis/redis_client.hpp"
#include "rpc/push_server.hpp"
#include "rpc/remote_pusher.hpp"
#include "store/sqlite_checkpointer.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_search.hpp"

namespace imd {
namespace {

double d(std::uint64_t v) {
  return static_cast<double>(v);
}

void write_roles(const Roles& roles, MetricsText& m) {
  m.family("imd_role", "1 for each role this process serves (gateway, api, logic).", "gauge");
  const MetricLabel g[] = {{"role", "gateway"}}, a[] = {{"role", "api"}}, l[] = {{"role", "logic"}};
  m.sample("imd_role", g, roles.gateway ? 1 : 0);
  m.sample("imd_role", a, roles.api ? 1 : 0);
  m.sample("imd_role", l, roles.logic ? 1 : 0);
}

// The standalone search indexer: how far behind it is, and how often sends made it go small.
void write_sqlite_search(const SqliteSearch& s, MetricsText& m) {
  if (auto queued = s.queued(); queued.ok()) {
    m.gauge("imd_search_index_queue", "Stored messages waiting for the search indexer.",
            d(*queued));
  }
  m.counter("imd_search_index_small_total",
            "Indexer transactions kept small (search.index_batch_busy) because sends waited.",
            d(s.yielded()));
  m.counter("imd_search_wal_written_bytes_total",
            "Bytes the search index's commits wrote to search.db's WAL.",
            d(s.index().wal_status().written_bytes));
}

void write_local_queue(const LocalQueue& q, MetricsText& m) {
  const MetricLabel engine[] = {{"engine", "local"}};
  m.family("imd_queue_depth", "Messages accepted and waiting to be stored.", "gauge");
  m.sample("imd_queue_depth", engine, d(q.depth()));
  const Millis oldest = q.oldest_created_at();
  const Millis now = SystemClock{}.now_ms();
  m.family("imd_queue_oldest_age_seconds",
           "Age of the oldest message waiting to be stored (0: none waits).", "gauge");
  m.sample("imd_queue_oldest_age_seconds", engine,
           oldest == 0 || now < oldest ? 0.0 : static_cast<double>(now - oldest) / 1000.0);
}

void write_nats(const NatsQueueStats& s, MetricsText& m) {
  m.counter("imd_nats_published_total", "Messages published to JetStream (accepted).",
            d(s.published));
  m.counter("imd_nats_publish_rejected_total", "Publishes refused at once (full, stopped, error).",
            d(s.publish_rejected));
  m.counter("imd_nats_confirmed_total", "Publishes JetStream confirmed.", d(s.confirmed));
  m.counter("imd_nats_publish_failed_total", "Publishes accepted but never confirmed.",
            d(s.publish_failed));
  m.counter("imd_nats_consumed_total", "Messages handed to the consumer (each attempt).",
            d(s.consumed));
  m.counter("imd_nats_acked_total", "Messages ACKed to JetStream.", d(s.acked));
  m.counter("imd_nats_retried_total", "Messages handed again after a failed batch.", d(s.retried));
  m.counter("imd_nats_dead_lettered_total", "Messages moved to the dead-letter stream.",
            d(s.dead_lettered));
  m.counter("imd_nats_decode_errors_total", "Messages that could not be decoded.",
            d(s.decode_errors));
  // Published but not yet confirmed: the publish pipeline's backlog on this process.
  const std::uint64_t settled = s.confirmed + s.publish_failed;
  const MetricLabel engine[] = {{"engine", "nats"}};
  m.family("imd_queue_depth", "Messages accepted and waiting to be stored.", "gauge");
  m.sample("imd_queue_depth", engine, s.published > settled ? d(s.published - settled) : 0.0);
}

void write_redis(const redis::RedisClient::Stats& s, MetricsText& m) {
  m.counter("imd_redis_moved_total", "Redis Cluster MOVED replies followed.", d(s.moved));
  m.counter("imd_redis_ask_total", "Redis Cluster ASK replies followed.", d(s.ask));
  m.counter("imd_redis_retries_total",
            "Redis commands retried (TRYAGAIN, CLUSTERDOWN, LOADING, connection errors).",
            d(s.retries));
  m.counter("imd_redis_slot_refreshes_total", "Redis Cluster slot map loads.", d(s.refreshes));
  m.counter("imd_redis_connects_total", "Redis connections opened.", d(s.connects));
  m.counter("imd_redis_broken_connections_total", "Redis connections closed after an error.",
            d(s.broken));
}

void write_rpc(const rpc::PushServerStats* server, const rpc::RemotePusherStats* client,
               MetricsText& m) {
  if (server != nullptr) {
    m.counter("imd_rpc_push_server_calls_total", "gRPC Push calls received.", d(server->calls));
    m.counter("imd_rpc_push_server_rejected_total", "gRPC Push calls refused as invalid.",
              d(server->calls_rejected));
    m.counter("imd_rpc_push_server_events_total", "Events received by gRPC Push and delivered.",
              d(server->deliveries_accepted));
  }
  if (client != nullptr) {
    m.counter("imd_rpc_push_calls_total", "gRPC Push calls started (retries included).",
              d(client->calls));
    m.counter("imd_rpc_push_retries_total", "gRPC Push calls retried.", d(client->retries));
    m.counter("imd_rpc_push_events_sent_total", "Events sent to other gateways.",
              d(client->events_sent));
    m.family("imd_rpc_push_events_dropped_total", "Events to other gateways dropped, by reason.",
             "counter");
    const MetricLabel unknown[] = {{"reason", "unknown_node"}}, full[] = {{"reason", "full"}},
                      failed[] = {{"reason", "failed"}},
                      old_gateway[] = {{"reason", "old_gateway"}};
    m.sample("imd_rpc_push_events_dropped_total", unknown, d(client->events_dropped_unknown_node));
    m.sample("imd_rpc_push_events_dropped_total", full, d(client->events_dropped_full));
    m.sample("imd_rpc_push_events_dropped_total", failed, d(client->events_dropped_failed));
    m.sample("imd_rpc_push_events_dropped_total", old_gateway,
             d(client->events_dropped_old_gateway));
    m.counter("imd_routes_fallback_broadcasts_total",
              "Events pushed by user to every gateway because the routes could not be read.",
              d(client->fallback_broadcasts));
  }
}

// The cgroup's memory.max (v2) or memory.limit_in_bytes (v1); else the machine's MemTotal.
double memory_limit_bytes() {
  double limit = 0;
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    if (FILE* f = std::fopen(path, "r")) {
      if (std::fscanf(f, "%lf", &limit) != 1) limit = 0;  // "max": no limit
      std::fclose(f);
      if (limit > 0) break;
    }
  }
  double total_kb = 0;
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    if (std::fscanf(f, "MemTotal: %lf kB", &total_kb) != 1) total_kb = 0;
    std::fclose(f);
  }
  const double total = total_kb * 1024;
  // cgroup v1 reports "no limit" as a huge number.
  return limit > 0 && (total == 0 || limit < total) ? limit : total;
}

void write_readiness(Readiness& r, MetricsText& m) {
  const auto report = r.check();
  m.gauge("imd_ready", "1 when GET /readyz answers 200.", report.ready ? 1 : 0);
  m.gauge("imd_draining", "1 once shutdown began (SIGTERM).", r.draining() ? 1 : 0);
  if (r.draining()) return;  // the checks did not run
  m.family("imd_dependency_up",
           "1 when the readiness check of a dependency passed within its deadline.", "gauge");
  for (const auto& part : r.parts()) {
    bool failing = false;
    for (const auto& f : report.failing) failing = failing || f.part == part;
    const MetricLabel l[] = {{"dependency", part}};
    m.sample("imd_dependency_up", l, failing ? 0 : 1);
  }
}

}  // namespace

MetricsSource make_metrics_source(MetricsParts p) {
  return [p = std::move(p)](MetricsText& m) {
    metrics::write_imd_metrics(m);
    m.gauge("imd_memory_limit_bytes",
            "The memory this process may use: its cgroup's limit, else the machine's memory.",
            memory_limit_bytes());
    write_roles(p.roles, m);
    m.family("imd_build_info", "1, labelled with the version this process runs.", "gauge");
    const MetricLabel version[] = {{"version", p.version}};
    m.sample("imd_build_info", version, 1);
    if (p.hub != nullptr) {
      m.gauge("imd_ws_connections", "Open WebSocket sessions on this process.", d(p.hub->size()));
    }
    if (p.readiness != nullptr) write_readiness(*p.readiness, m);
    if (p.guard != nullptr) p.guard->write_metrics(m);
    if (p.shedding != nullptr) {
      m.family("imd_shed_total", "Non-core events dropped while degraded, by kind.", "counter");
      const MetricLabel typing[] = {{"what", "typing"}};
      m.sample("imd_shed_total", typing, d(p.shedding->shed()));
      if (p.sqlite_search != nullptr) {
        const MetricLabel indexing[] = {{"what", "search_indexing"}};
        m.sample("imd_shed_total", indexing, d(p.sqlite_search->held()));
      }
    }
    if (p.sqlite_search != nullptr) write_sqlite_search(*p.sqlite_search, m);
    if (p.local_queue != nullptr) write_local_queue(*p.local_queue, m);
    if (p.nats_queue != nullptr) write_nats(p.nats_queue->stats(), m);
    if (p.sqlite) p.sqlite->write_metrics(m);
    if (p.redis_client) write_redis(p.redis_client->stats(), m);
    if (p.push_server != nullptr || p.remote_pusher != nullptr) {
      std::optional<rpc::PushServerStats> server;
      std::optional<rpc::RemotePusherStats> client;
      if (p.push_server != nullptr) server = p.push_server->stats();
      if (p.remote_pusher != nullptr) client = p.remote_pusher->stats();
      write_rpc(server ? &*server : nullptr, client ? &*client : nullptr, m);
    }
  };
}

}  // namespace imd
