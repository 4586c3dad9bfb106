#include "common/config.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "common/forwarded.hpp"

namespace imd {
namespace {

enum class Kind { string, integer };

struct Field {
  std::string key;  // "section.name" or "name"
  std::string help;
  Kind kind;
  bool secret = false;
  std::function<std::string&(Config&)> str;
  std::function<std::int64_t&(Config&)> num;

  std::string flag() const {
    std::string f = "--" + key;
    for (auto& c : f)
      if (c == '.' || c == '_') c = '-';
    f[0] = f[1] = '-';
    return f;
  }
  std::string env() const {
    std::string e = "IMD_";
    for (char c : key) e.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(c)));
    return e;
  }
};

#define STR(k, expr, h)                                                           \
  Field {                                                                         \
    k, h, Kind::string, false, [](Config& c) -> std::string& { return expr; }, {} \
  }
#define SECRET(k, expr, h)                                                       \
  Field {                                                                        \
    k, h, Kind::string, true, [](Config& c) -> std::string& { return expr; }, {} \
  }
#define NUM(k, expr, h)                                                             \
  Field {                                                                           \
    k, h, Kind::integer, false, {}, [](Config& c) -> std::int64_t& { return expr; } \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      STR("listen", c.listen, "HOST:PORT to serve HTTP and WebSocket on (port 0: any free port)"),
      STR("data_dir", c.data_dir, "directory for the database and the generated JWT secret"),
      STR("web_root", c.web_root, "directory of the built web client (empty: auto-detect)"),
      NUM("worker_id", c.worker_id, "snowflake worker id, 0..1023, unique per process"),
      NUM("threads", c.threads, "I/O threads (0: one per core)"),
      NUM("blocking_threads", c.blocking_threads,
          "threads for store calls (passwords hash on auth.hash_threads)"),
      NUM("shutdown_timeout_s", c.shutdown_timeout_s,
          "SIGTERM: seconds to store accepted sends and close WebSockets (a second signal: at "
          "once)"),
      NUM("shutdown_ready_grace_ms", c.shutdown_ready_grace_ms,
          "SIGTERM: /readyz fails this long before the listener closes (0: at once)"),
      STR("log_level", c.log_level, "debug|info|warn|error"),
      STR("version", c.version,
          "version this process registers and shows on /readyz (empty: the build's)"),
      STR("store", c.store, "store engine: sqlite (standalone) | mysql"),
      STR("cache", c.cache, "inbox/routes/cache engine: memory (standalone) | redis"),
      STR("roles", c.roles, "what this process does: all, or any of gateway,api,logic"),
      STR("queue", c.queue, "send pipeline: local (standalone) | nats (JetStream)"),
      STR("registry", c.registry, "process registry: static (standalone) | etcd"),
      STR("trusted_proxies", c.trusted_proxies,
          "IPs of proxies whose X-Forwarded-For names the client (per-IP rate limits)"),
      SECRET("auth.jwt_secret", c.auth.jwt_secret,
             "HS256 key (empty: generated, kept in data_dir)"),
      NUM("auth.access_ttl_s", c.auth.access_ttl_s, "access token lifetime, seconds"),
      NUM("auth.refresh_ttl_s", c.auth.refresh_ttl_s, "refresh token lifetime, seconds"),
      NUM("auth.refresh_reuse_s", c.auth.refresh_reuse_s,
          "seconds a used refresh token still works, for a retry whose answer was lost"),
      STR("auth.admins", c.auth.admins,
          "server admins besides the first account: phone numbers, comma-separated"),
      NUM("auth.account_poll_ms", c.auth.account_poll_ms,
          "how often ended sessions and deactivations stored by other processes are read"),
      STR("auth.password_hash", c.auth.password_hash, "Argon2id cost: interactive|moderate|min"),
      NUM("auth.hash_threads", c.auth.hash_threads,
          "threads hashing passwords (0: half the cores, at least one)"),
      NUM("breaker.failures", c.breaker.failures,
          "failed or slow calls to a dependency in a row that open its circuit breaker"),
      NUM("breaker.probe_interval_ms", c.breaker.probe_interval_ms,
          "how often each dependency (store, redis, nats, etcd) is pinged, ms"),
      NUM("breaker.deadline_ms", c.breaker.deadline_ms,
          "a ping or call without an answer by then counts as failed, ms"),
      NUM("breaker.open_ms", c.breaker.open_ms,
          "how long an open breaker refuses calls before a probe, ms (doubles per failed probe)"),
      NUM("breaker.max_open_ms", c.breaker.max_open_ms, "the longest open period, ms"),
      STR("sqlite.synchronous", c.sqlite.synchronous, "NORMAL|FULL"),
      NUM("sqlite.read_connections", c.sqlite.read_connections, "read-only SQLite connections"),
      NUM("sqlite.checkpoint_restart_bytes", c.sqlite.checkpoint_restart_bytes,
          "WAL size past which the log is started over (the WAL file stays near it)"),
      NUM("sqlite.checkpoint_stall_warn_s", c.sqlite.checkpoint_stall_warn_s,
          "warn when WAL checkpoints copy nothing for this long, seconds"),
      NUM("sqlite.mmap_mib", c.sqlite.mmap_mib,
          "read the database file through a memory map of up to this many MiB (0: off)"),
      NUM("search.enabled", c.search.enabled,
          "1: index messages and answer /api/v1/search; 0: neither (re-enabling rebuilds)"),
      NUM("search.timeout_ms", c.search.timeout_ms, "time budget of one search query, ms"),
      NUM("search.backfill_batch", c.search.backfill_batch,
          "messages indexed per back-fill transaction (older history, in the background)"),
      NUM("search.index_batch", c.search.index_batch,
          "new messages indexed per indexer transaction (standalone)"),
      NUM("search.index_batch_busy", c.search.index_batch_busy,
          "the same while sends wait to be stored (each transaction holds the writer)"),
      NUM("search.rate_per_s", c.search.rate_per_s, "searches per second per user"),
      NUM("search.burst", c.search.burst, "search burst per user"),
      STR("mysql.host", c.mysql.host, "MySQL/MariaDB host"),
      NUM("mysql.port", c.mysql.port, "MySQL/MariaDB port"),
      STR("mysql.user", c.mysql.user, "MySQL/MariaDB user"),
      SECRET("mysql.password", c.mysql.password, "MySQL/MariaDB password"),
      STR("mysql.database", c.mysql.database, "MySQL/MariaDB database"),
      NUM("mysql.pool_size", c.mysql.pool_size, "MySQL connections at most"),
      STR("redis.addresses", c.redis.addresses, "Redis HOST:PORT list (cluster: seed nodes)"),
      STR("redis.mode", c.redis.mode, "single|cluster"),
      NUM("redis.pool_size", c.redis.pool_size, "Redis connections per node at most"),
      NUM("redis.inbox_max", c.redis.inbox_max, "1:1 inbox entries kept per user"),
      NUM("redis.route_ttl_s", c.redis.route_ttl_s, "route TTL, refreshed while connected"),
      NUM("redis.members_ttl_s", c.redis.members_ttl_s, "channel member list TTL"),
      NUM("limits.max_message_bytes", c.limits.max_message_bytes, "largest message body"),
      NUM("limits.max_frame_bytes", c.limits.max_frame_bytes, "largest WebSocket frame"),
      NUM("limits.max_http_body_bytes", c.limits.max_http_body_bytes, "largest REST body"),
      NUM("limits.ws_rate_per_s", c.limits.ws_rate_per_s, "frames per second per connection"),
      NUM("limits.ws_burst", c.limits.ws_burst, "frame burst per connection"),
      NUM("limits.ws_abuse_close_after", c.limits.ws_abuse_close_after,
          "rate-limited frames in a row before the connection is closed"),
      NUM("limits.ws_write_queue_messages", c.limits.ws_write_queue_messages,
          "frames queued to one connection before it is dropped as too slow"),
      NUM("limits.ws_write_queue_bytes", c.limits.ws_write_queue_bytes,
          "bytes queued to one connection before it is dropped as too slow"),
      NUM("limits.http_rate_per_s", c.limits.http_rate_per_s, "REST requests per second per IP"),
      NUM("limits.http_burst", c.limits.http_burst, "REST request burst per IP"),
      NUM("limits.auth_rate_per_min", c.limits.auth_rate_per_min,
          "register/login/refresh requests per minute per IP"),
      NUM("limits.queue_capacity", c.limits.queue_capacity, "sends waiting to be stored"),
      NUM("limits.batch_max", c.limits.batch_max, "messages stored per transaction at most"),
      NUM("limits.batch_linger_us", c.limits.batch_linger_us,
          "standalone: a send batch fills this long (microseconds) before it is stored"),
      NUM("limits.max_connections", c.limits.max_connections, "WebSocket sessions at most"),
      NUM("limits.max_tcp_connections", c.limits.max_tcp_connections,
          "open TCP connections at most (lowered to leave 1024 descriptors of the fd limit)"),
      NUM("limits.tcp_connections_per_ip", c.limits.tcp_connections_per_ip,
          "open TCP connections per client address (loopback and trusted proxies exempt)"),
      NUM("limits.spaces_per_user", c.limits.spaces_per_user, "spaces one user may own"),
      NUM("limits.channels_per_space", c.limits.channels_per_space, "channels in one space"),
      NUM("limits.members_per_space", c.limits.members_per_space, "members of one space"),
      STR("limits.channel_mentions", c.limits.channel_mentions,
          "who may mention @channel / @here in a channel: admins (the space's owner and admins) | "
          "members"),
      STR("limits.dm_policy", c.limits.dm_policy,
          "who may DM whom: shared_space (users sharing a space, or an existing DM) | anyone"),
      NUM("limits.password_hash_queue", c.limits.password_hash_queue,
          "logins and registrations hashing or waiting to; beyond, 503 at once"),
      NUM("limits.ws_connections_per_user", c.limits.ws_connections_per_user,
          "WebSockets one user may hold on one process"),
      NUM("limits.ws_connections_per_ip", c.limits.ws_connections_per_ip,
          "WebSockets per client address (the one X-Forwarded-For names behind a trusted proxy;"
          " loopback exempt) on one process"),
      NUM("ws.heartbeat_s", c.ws.heartbeat_s, "client heartbeat interval, seconds"),
      NUM("ws.sync_page", c.ws.sync_page, "messages per backfill page"),
      NUM("ws.ack_flush_ms", c.ws.ack_flush_ms, "delivery ACKs are written together this often"),
      NUM("ws.presence_grace_ms", c.ws.presence_grace_ms,
          "a user whose last connection closed turns offline after this, unless one reconnects"),
      STR("files.blob", c.files.blob, "where uploaded files' bytes live: disk | s3"),
      STR("files.dir", c.files.dir, "directory of uploaded files (empty: <data_dir>/files)"),
      STR("files.s3_endpoint", c.files.s3_endpoint, "blob = s3: scheme://host[:port]"),
      STR("files.s3_region", c.files.s3_region, "blob = s3: the region signed for"),
      STR("files.s3_bucket", c.files.s3_bucket, "blob = s3: the bucket (it must exist)"),
      STR("files.s3_prefix", c.files.s3_prefix, "blob = s3: prepended to every object key"),
      STR("files.s3_access_key", c.files.s3_access_key, "blob = s3: access key id"),
      SECRET("files.s3_secret_key", c.files.s3_secret_key, "blob = s3: secret access key"),
      NUM("files.max_bytes", c.files.max_bytes, "largest upload, bytes"),
      NUM("files.quota_bytes", c.files.quota_bytes, "bytes of live uploads per user"),
      NUM("files.max_image_pixels", c.files.max_image_pixels,
          "largest image accepted, width x height (all frames), checked before decoding"),
      NUM("files.thumb_px", c.files.thumb_px, "thumbnails fit this many pixels square"),
      NUM("files.avatar_px", c.files.avatar_px, "avatars are this many pixels square"),
      NUM("files.image_workers", c.files.image_workers, "images processed at once"),
      NUM("files.orphan_ttl_s", c.files.orphan_ttl_s,
          "uploads never sent in a message are removed after this many seconds"),
      NUM("files.sweep_interval_s", c.files.sweep_interval_s,
          "how often orphaned uploads are looked for, seconds"),
      STR("nats.url", c.nats.url, "NATS server URL(s), comma-separated"),
      STR("nats.stream", c.nats.stream, "JetStream stream of the send pipeline"),
      STR("nats.subject", c.nats.subject, "subject prefix: <subject>.<partition>"),
      NUM("nats.partitions", c.nats.partitions, "partitions of the send pipeline (1..1024)"),
      NUM("nats.ack_wait_s", c.nats.ack_wait_s, "redelivery after this many seconds unacked"),
      NUM("nats.max_attempts", c.nats.max_attempts, "deliveries before a dead letter"),
      STR("etcd.endpoints", c.etcd.endpoints, "etcd HOST:PORT list"),
      STR("etcd.prefix", c.etcd.prefix, "key prefix of everything imd keeps in etcd"),
      NUM("etcd.lease_ttl_s", c.etcd.lease_ttl_s, "lease TTL: a dead process vanishes after it"),
      STR("rpc.listen", c.rpc.listen, "HOST:PORT of the gateway's gRPC Push service"),
      STR("rpc.advertise", c.rpc.advertise, "address other processes dial (empty: bound one)"),
  };
  return kFields;
}

#undef STR
#undef SECRET
#undef NUM

const Field* find_field(std::string_view key) {
  for (const auto& f : fields())
    if (f.key == key) return &f;
  return nullptr;
}

Result<void> set_field(Config& c, const Field& f, std::string_view value, std::string_view origin) {
  if (f.kind == Kind::string) {
    f.str(c) = std::string(value);
    return {};
  }
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size()) {
    return make_error(Errc::invalid_argument, std::string(origin) + ": " + f.key +
                                                  " must be an integer, got '" +
                                                  std::string(value) + "'");
  }
  f.num(c) = v;
  return {};
}

Result<void> apply_table(Config& c, const toml::table& table, const std::string& prefix,
                         std::string_view origin) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      IMD_TRY(apply_table(c, *sub, key, origin));
      continue;
    }
    const Field* f = find_field(key);
    if (!f) {
      return make_error(Errc::invalid_argument,
                        std::string(origin) + ": unknown config key '" + key + "'");
    }
    std::string text;
    if (auto s = node.value<std::string>(); s && node.is_string()) {
      text = *s;
    } else if (node.is_integer()) {
      text = std::to_string(*node.value<std::int64_t>());
    } else {
      return make_error(Errc::invalid_argument,
                        std::string(origin) + ": " + key + " must be a string or an integer");
    }
    if ((f->kind == Kind::integer) != node.is_integer()) {
      return make_error(Errc::invalid_argument,
                        std::string(origin) + ": " + key + " has the wrong type");
    }
    IMD_TRY(set_field(c, *f, text, origin));
  }
  return {};
}

bool parse_port(std::string_view s, int& port) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  return ec == std::errc() && p == s.data() + s.size() && port >= 0 && port <= 65535;
}

}  // namespace

Result<void> apply_toml(Config& config, std::string_view toml_text, std::string_view origin) {
  toml::table table;
  try {
    table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << origin << ": " << e.description() << " at line " << e.source().begin.line;
    return make_error(Errc::invalid_argument, os.str());
  }
  return apply_table(config, table, "", origin);
}

Result<void> validate(const Config& c) {
  auto bad = [](std::string m) { return make_error(Errc::invalid_argument, std::move(m)); };
  auto colon = c.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !parse_port(std::string_view(c.listen).substr(colon + 1), port)) {
    return bad("listen must be HOST:PORT, got '" + c.listen + "'");
  }
  if (c.data_dir.empty()) return bad("data_dir must not be empty");
  if (c.worker_id < 0 || c.worker_id > 1023) return bad("worker_id must be in 0..1023");
  if (c.threads < 0 || c.threads > 256) return bad("threads must be in 0..256");
  if (c.blocking_threads < 1 || c.blocking_threads > 256) {
    return bad("blocking_threads must be in 1..256");
  }
  if (c.shutdown_ready_grace_ms < 0 || c.shutdown_ready_grace_ms > 300000) {
    return bad("shutdown_ready_grace_ms must be in 0..300000");
  }
  if (c.shutdown_timeout_s < 0 || c.shutdown_timeout_s > 300) {
    return bad("shutdown_timeout_s must be in 0..300");
  }
  if (c.version.size() > 64) return bad("version must be at most 64 characters");
  for (char ch : c.version) {
    if (ch <= ' ' || ch > '~') return bad("version must be printable ASCII without spaces");
  }
  if (c.breaker.failures < 1 || c.breaker.failures > 1000) {
    return bad("breaker.failures must be in 1..1000");
  }
  if (c.breaker.probe_interval_ms < 10 || c.breaker.deadline_ms < 10 || c.breaker.open_ms < 10 ||
      c.breaker.max_open_ms < c.breaker.open_ms || c.breaker.max_open_ms > 600000 ||
      c.breaker.probe_interval_ms > 600000 || c.breaker.deadline_ms > 600000) {
    return bad(
        "breaker: probe_interval_ms, deadline_ms and open_ms must be at least 10, "
        "max_open_ms between open_ms and 600000");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    return bad("log_level must be debug|info|warn|error");
  }
  if (c.store != "sqlite" && c.store != "mysql") return bad("store must be sqlite or mysql");
  if (c.cache != "memory" && c.cache != "redis") return bad("cache must be memory or redis");
  // The standalone inbox lives in the SQLite database; with MySQL the inbox is in Redis.
  if (c.store == "mysql" && c.cache != "redis") return bad("store = mysql needs cache = redis");
  if (c.mysql.port < 1 || c.mysql.port > 65535) return bad("mysql.port must be in 1..65535");
  if (c.mysql.pool_size < 1 || c.mysql.pool_size > 256)
    return bad("mysql.pool_size must be in 1..256");
  if (c.redis.mode != "single" && c.redis.mode != "cluster") {
    return bad("redis.mode must be single or cluster");
  }
  for (auto [name, v] : {std::pair{"redis.pool_size", c.redis.pool_size},
                         {"redis.inbox_max", c.redis.inbox_max},
                         {"redis.route_ttl_s", c.redis.route_ttl_s},
                         {"redis.members_ttl_s", c.redis.members_ttl_s}}) {
    if (v < 1) return bad(std::string(name) + " must be positive");
  }
  if (c.auth.password_hash != "interactive" && c.auth.password_hash != "moderate" &&
      c.auth.password_hash != "min") {
    return bad("auth.password_hash must be interactive|moderate|min");
  }
  if (c.auth.hash_threads < 0 || c.auth.hash_threads > 64) {
    return bad("auth.hash_threads must be in 0..64");
  }
  if (!c.auth.jwt_secret.empty() && c.auth.jwt_secret.size() < 32) {
    return bad("auth.jwt_secret must be at least 32 characters");
  }
  if (c.auth.access_ttl_s < 10 || c.auth.refresh_ttl_s < c.auth.access_ttl_s) {
    return bad("auth.access_ttl_s must be >= 10 and auth.refresh_ttl_s >= auth.access_ttl_s");
  }
  if (c.auth.refresh_reuse_s < 0 || c.auth.refresh_reuse_s > 600) {
    return bad("auth.refresh_reuse_s must be between 0 and 600");
  }
  if (c.auth.account_poll_ms < 50 || c.auth.account_poll_ms > 60'000) {
    return bad("auth.account_poll_ms must be between 50 and 60000");
  }
  if (c.sqlite.synchronous != "NORMAL" && c.sqlite.synchronous != "FULL") {
    return bad("sqlite.synchronous must be NORMAL or FULL");
  }
  if (c.sqlite.read_connections < 1 || c.sqlite.read_connections > 64) {
    return bad("sqlite.read_connections must be in 1..64");
  }
  if (c.sqlite.mmap_mib < 0 || c.sqlite.mmap_mib > (1 << 20)) {
    return bad("sqlite.mmap_mib must be in 0..1048576");
  }
  if (c.sqlite.checkpoint_restart_bytes < (1 << 20)) {
    return bad("sqlite.checkpoint_restart_bytes must be at least 1048576 (1 MiB)");
  }
  if (c.search.enabled != 0 && c.search.enabled != 1) return bad("search.enabled must be 0 or 1");
  if (c.search.timeout_ms < 10 || c.search.timeout_ms > 60000) {
    return bad("search.timeout_ms must be in 10..60000");
  }
  if (c.search.backfill_batch < 1 || c.search.backfill_batch > 100000) {
    return bad("search.backfill_batch must be in 1..100000");
  }
  if (c.search.index_batch < 1 || c.search.index_batch > 100000 || c.search.index_batch_busy < 1 ||
      c.search.index_batch_busy > c.search.index_batch) {
    return bad(
        "search.index_batch must be in 1..100000, search.index_batch_busy in 1..index_batch");
  }
  if (c.search.rate_per_s < 1 || c.search.burst < 1) {
    return bad("search.rate_per_s and search.burst must be >= 1");
  }
  if (c.sqlite.checkpoint_stall_warn_s < 1)
    return bad("sqlite.checkpoint_stall_warn_s must be >= 1");
  const auto& l = c.limits;
  for (auto [name, v] : {std::pair{"limits.max_message_bytes", l.max_message_bytes},
                         {"limits.max_frame_bytes", l.max_frame_bytes},
                         {"limits.max_http_body_bytes", l.max_http_body_bytes},
                         {"limits.ws_rate_per_s", l.ws_rate_per_s},
                         {"limits.ws_burst", l.ws_burst},
                         {"limits.ws_abuse_close_after", l.ws_abuse_close_after},
                         {"limits.ws_write_queue_messages", l.ws_write_queue_messages},
                         {"limits.ws_write_queue_bytes", l.ws_write_queue_bytes},
                         {"limits.http_rate_per_s", l.http_rate_per_s},
                         {"limits.http_burst", l.http_burst},
                         {"limits.auth_rate_per_min", l.auth_rate_per_min},
                         {"limits.queue_capacity", l.queue_capacity},
                         {"limits.batch_max", l.batch_max},
                         {"limits.max_connections", l.max_connections},
                         {"limits.max_tcp_connections", l.max_tcp_connections},
                         {"limits.tcp_connections_per_ip", l.tcp_connections_per_ip},
                         {"limits.password_hash_queue", l.password_hash_queue},
                         {"limits.spaces_per_user", l.spaces_per_user},
                         {"limits.channels_per_space", l.channels_per_space},
                         {"limits.members_per_space", l.members_per_space},
                         {"limits.ws_connections_per_user", l.ws_connections_per_user},
                         {"limits.ws_connections_per_ip", l.ws_connections_per_ip},
                         {"ws.heartbeat_s", c.ws.heartbeat_s},
                         {"ws.sync_page", c.ws.sync_page},
                         {"ws.ack_flush_ms", c.ws.ack_flush_ms},
                         {"ws.presence_grace_ms", c.ws.presence_grace_ms},
                         {"files.max_bytes", c.files.max_bytes},
                         {"files.quota_bytes", c.files.quota_bytes},
                         {"files.orphan_ttl_s", c.files.orphan_ttl_s},
                         {"files.sweep_interval_s", c.files.sweep_interval_s},
                         {"files.max_image_pixels", c.files.max_image_pixels},
                         {"files.thumb_px", c.files.thumb_px},
                         {"files.avatar_px", c.files.avatar_px},
                         {"files.image_workers", c.files.image_workers}}) {
    if (v < 1) return bad(std::string(name) + " must be positive");
  }
  if (l.batch_linger_us < 0 || l.batch_linger_us > 100000) {
    return bad("limits.batch_linger_us must be in 0..100000");
  }
  if (l.max_message_bytes + 1024 > l.max_frame_bytes) {
    return bad("limits.max_frame_bytes must exceed limits.max_message_bytes by 1024 at least");
  }
  try {
    TrustedProxies proxies(c.trusted_proxies);
  } catch (const std::invalid_argument& e) {
    return bad(e.what());
  }
  auto roles = parse_roles(c.roles);
  if (!roles) return roles.error();
  if (c.files.blob != "disk" && c.files.blob != "s3") return bad("files.blob must be disk or s3");
  if (c.files.thumb_px > 4096 || c.files.avatar_px > 1024 || c.files.image_workers > 64) {
    return bad(
        "files.thumb_px must be at most 4096, files.avatar_px at most 1024, "
        "files.image_workers at most 64");
  }
  if (c.files.blob == "s3" &&
      (c.files.s3_endpoint.find("://") == std::string::npos || c.files.s3_bucket.empty() ||
       c.files.s3_access_key.empty() || c.files.s3_secret_key.empty())) {
    return bad(
        "files.blob = s3 needs files.s3_endpoint (a URL), files.s3_bucket, files.s3_access_key "
        "and files.s3_secret_key");
  }
  if (c.queue != "local" && c.queue != "nats") return bad("queue must be local or nats");
  if (l.dm_policy != "shared_space" && l.dm_policy != "anyone") {
    return bad("limits.dm_policy must be shared_space or anyone");
  }
  if (l.channel_mentions != "admins" && l.channel_mentions != "members") {
    return bad("limits.channel_mentions must be admins or members");
  }
  if (c.registry != "static" && c.registry != "etcd") return bad("registry must be static or etcd");
  // Roles split over processes share state only through the cluster engines.
  if (!roles->all() &&
      (c.store != "mysql" || c.cache != "redis" || c.queue != "nats" || c.registry != "etcd")) {
    return bad(
        "roles other than all need store = mysql, cache = redis, queue = nats and "
        "registry = etcd");
  }
  if (c.queue == "nats" && c.store != "mysql") return bad("queue = nats needs store = mysql");
  if (c.nats.partitions < 1 || c.nats.partitions > 1024) {
    return bad("nats.partitions must be in 1..1024");
  }
  if (c.nats.ack_wait_s < 1 || c.nats.max_attempts < 1 || c.etcd.lease_ttl_s < 2) {
    return bad("nats.ack_wait_s and nats.max_attempts must be positive, etcd.lease_ttl_s >= 2");
  }
  auto rpc_colon = c.rpc.listen.rfind(':');
  if (rpc_colon == std::string::npos || rpc_colon == 0 ||
      !parse_port(std::string_view(c.rpc.listen).substr(rpc_colon + 1), port)) {
    return bad("rpc.listen must be HOST:PORT, got '" + c.rpc.listen + "'");
  }
  return {};
}

Result<Roles> parse_roles(std::string_view text) {
  Roles r;
  std::size_t start = 0;
  bool any = false;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    auto name = text.substr(start, end - start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name == "all") {
      r.gateway = r.api = r.logic = true;
    } else if (name == "gateway") {
      r.gateway = true;
    } else if (name == "api") {
      r.api = true;
    } else if (name == "logic") {
      r.logic = true;
    } else {
      return make_error(Errc::invalid_argument, "roles: unknown role '" + std::string(name) +
                                                    "' (known: all, gateway, api, logic)");
    }
    any = true;
    start = end + 1;
  }
  if (!any) return make_error(Errc::invalid_argument, "roles must not be empty");
  return r;
}

Result<CommandLine> parse_command_line(const std::vector<std::string>& args, const GetEnv& getenv) {
  CommandLine cl;
  // Pass 1: flags into (flag, value) pairs; the config file is read before the rest applies.
  std::vector<std::pair<const Field*, std::string>> flag_values;
  std::string config_path;
  if (const char* p = getenv("IMD_CONFIG")) config_path = p;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      cl.help = true;
      continue;
    }
    if (a == "--print-config") {
      cl.print_config = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      return make_error(Errc::invalid_argument, "unexpected argument '" + a + "'");
    }
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> Result<void> {
      if (has_value) return {};
      if (i + 1 >= args.size()) return make_error(Errc::invalid_argument, a + " needs a value");
      value = args[++i];
      return {};
    };
    if (a == "--config") {
      IMD_TRY(take_value());
      config_path = value;
      continue;
    }
    const Field* f = nullptr;
    for (const auto& field : fields())
      if (field.flag() == a) f = &field;
    if (!f) return make_error(Errc::invalid_argument, "unknown flag '" + a + "' (see --help)");
    IMD_TRY(take_value());
    flag_values.emplace_back(f, value);
  }
  if (cl.help) return cl;

  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) return make_error(Errc::invalid_argument, "cannot read config file " + config_path);
    std::stringstream ss;
    ss << in.rdbuf();
    IMD_TRY(apply_toml(cl.config, ss.str(), config_path));
  }
  for (const auto& f : fields()) {
    if (const char* v = getenv(f.env().c_str())) IMD_TRY(set_field(cl.config, f, v, f.env()));
  }
  for (const auto& [f, v] : flag_values) IMD_TRY(set_field(cl.config, *f, v, f->flag()));
  IMD_TRY(validate(cl.config));
  return cl;
}

std::string help_text() {
  std::ostringstream os;
  os << "imd: instant-messaging server\n\n"
        "usage: imd [--config FILE] [--FLAG VALUE ...] [--print-config] [--help]\n\n"
        "Every setting can come from the TOML file (key), the environment (variable) or a flag;\n"
        "flags win over the environment, which wins over the file.\n\n";
  Config defaults;
  for (const auto& f : fields()) {
    os << "  " << f.flag() << "  (" << f.env() << ", key " << f.key << ")\n      " << f.help;
    if (f.kind == Kind::integer) {
      os << " [default " << f.num(defaults) << "]";
    } else if (!f.secret && !f.str(defaults).empty()) {
      os << " [default " << f.str(defaults) << "]";
    }
    os << "\n";
  }
  os << "  --config FILE  (IMD_CONFIG)\n      TOML file to read first\n";
  return os.str();
}

// scheme://user:password@host,...: the user and password of every URL in a list, redacted
// (a NATS URL may carry credentials; --print-config output ends up in tickets and chats).
std::string redact_url_credentials(const std::string& list) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string url = list.substr(start, comma - start);
    const auto scheme = url.find("://");
    if (scheme != std::string::npos) {
      const auto host = scheme + 3;
      const auto at = url.find('@', host);
      const auto slash = url.find('/', host);
      if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        url.replace(host, at - host, "<redacted>");
      }
    }
    out += url;
    if (comma == list.size()) return out;
    out += ',';
    start = comma + 1;
  }
}

std::string to_toml(const Config& config) {
  Config c = config;
  std::ostringstream os;
  std::string section;
  for (const auto& f : fields()) {
    auto dot = f.key.find('.');
    std::string sec = dot == std::string::npos ? "" : f.key.substr(0, dot);
    std::string name = dot == std::string::npos ? f.key : f.key.substr(dot + 1);
    if (sec != section) {
      os << "\n[" << sec << "]\n";
      section = sec;
    }
    os << name << " = ";
    if (f.kind == Kind::integer) {
      os << f.num(c);
    } else if (f.secret) {
      os << (f.str(c).empty() ? "\"\"" : "\"<redacted>\"");
    } else {
      os << toml::value<std::string>(redact_url_credentials(f.str(c)));
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace imd
