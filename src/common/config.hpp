// The one typed configuration of imd. Sources, lowest to highest precedence: built-in
// defaults, a TOML file (--config PATH or IMD_CONFIG), IMD_* environment variables, --flags.
// Every key `section.name` has the flag `--section-name` and the variable IMD_SECTION_NAME
// (e.g. limits.max_message_bytes: --limits-max-message-bytes, IMD_LIMITS_MAX_MESSAGE_BYTES).
// An unknown key in any source is an error that names it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace imd {

struct AuthConfig {
  std::string jwt_secret;  // empty: generated once and kept in <data_dir>/jwt.secret
  std::int64_t access_ttl_s = 900;
  std::int64_t refresh_ttl_s = 30 * 24 * 3600;
  // A used refresh token still works this long: a client whose answer was lost (the server
  // died, the network dropped) retries instead of being logged out. 0: strictly single use.
  std::int64_t refresh_reuse_s = 60;
  // Server admins besides the first account registered: phone numbers, comma-separated.
  std::string admins;
  // How often a process reads the account states others stored (ended sessions, deactivated
  // accounts): the longest a revoked token still works on another process of a cluster.
  std::int64_t account_poll_ms = 1000;
  std::string password_hash = "interactive";  // libsodium limits: interactive|moderate|min
  std::int64_t hash_threads = 0;  // threads hashing passwords; 0: half the cores, at least 1
};

struct SqliteConfigSection {
  std::string synchronous = "NORMAL";  // NORMAL survives a process crash; FULL an OS crash
  std::int64_t read_connections = 4;
  // Past this size the log is started over (sqlite_checkpointer.hpp): the WAL stays near it.
  std::int64_t checkpoint_restart_bytes = 32ll << 20;
  // A warning when the WAL has frames that no checkpoint could copy for this long.
  std::int64_t checkpoint_stall_warn_s = 30;
  // Reads of the database file through a memory map of up to this size (0: read() calls).
  std::int64_t mmap_mib = 0;
};

// store = "mysql": MariaDB/MySQL connection settings.
struct MysqlConfigSection {
  std::string host = "127.0.0.1";
  std::int64_t port = 3306;
  std::string user = "imd";
  std::string password;  // secret
  std::string database = "imd";
  std::int64_t pool_size = 8;
};

// cache = "redis": Redis (single node, or the seed nodes of a Redis Cluster).
struct RedisConfigSection {
  std::string addresses = "127.0.0.1:6379";  // comma-separated HOST:PORT list
  std::string mode = "single";               // single | cluster
  std::int64_t pool_size = 8;
  std::int64_t inbox_max = 10000;    // 1:1 inbox entries kept per user
  std::int64_t route_ttl_s = 60;     // a connection's route expires unless refreshed
  std::int64_t members_ttl_s = 300;  // channel member lists (with jitter)
};

struct LimitsConfig {
  std::int64_t max_message_bytes = 16 * 1024;    // body of one chat message
  std::int64_t max_frame_bytes = 64 * 1024;      // one WebSocket frame
  std::int64_t max_http_body_bytes = 64 * 1024;  // one REST request body
  std::int64_t ws_rate_per_s = 100;              // token bucket per connection
  std::int64_t ws_burst = 200;
  std::int64_t ws_abuse_close_after = 50;       // rate-limited frames in a row before closing
  std::int64_t ws_write_queue_messages = 4096;  // per connection; beyond: slow client dropped
  std::int64_t ws_write_queue_bytes = 8 * 1024 * 1024;
  std::int64_t http_rate_per_s = 200;  // token bucket per client IP
  std::int64_t http_burst = 400;
  std::int64_t auth_rate_per_min = 600;        // register/login/refresh per client IP
  std::int64_t queue_capacity = 100000;        // messages waiting to be stored
  std::int64_t batch_max = 1024;               // messages per store transaction
  std::int64_t batch_linger_us = 2000;         // a batch fills this long before it is stored
  std::int64_t max_connections = 19000;        // WebSocket sessions at most
  std::int64_t max_tcp_connections = 19000;    // open TCP connections (lowered to fit the fd limit)
  std::int64_t tcp_connections_per_ip = 1000;  // per client address (loopback, proxies exempt)
  std::int64_t password_hash_queue = 64;       // logins/registrations hashing or waiting; then 503
  std::int64_t spaces_per_user = 100;          // spaces one user owns
  std::int64_t channels_per_space = 500;
  std::int64_t members_per_space = 10000;
  // Who may DM whom: shared_space (users who share a space, or already have a DM) | anyone.
  std::string dm_policy = "shared_space";
  // Who may write @channel / @here (`<!channel>`, `<!here>`) in a channel: admins (the space's
  // owner and admins) | members (anyone in the channel).
  std::string channel_mentions = "admins";
  std::int64_t ws_connections_per_user = 50;  // WebSockets one user may hold on one process
  // WebSockets per client address on one process, the address behind a trusted proxy included
  // (loopback peers exempt): the TCP cap cannot see clients that come through nginx.
  std::int64_t ws_connections_per_ip = 1000;
};

// Uploaded files (docs/operations.md "Files"): the bytes in a BlobStore, the metadata in the
// Store's database.
struct FilesConfig {
  std::string blob = "disk";              // where the bytes live: disk | s3
  std::string dir;                        // disk blobs; empty: <data_dir>/files
  std::int64_t max_bytes = 25ll << 20;    // one file
  std::int64_t quota_bytes = 1ll << 30;   // all live files of one user
  std::int64_t orphan_ttl_s = 24 * 3600;  // uploaded, never sent: removed after this
  std::int64_t sweep_interval_s = 600;    // how often orphans are looked for
  // Images (jpeg, png, gif, webp): re-encoded without metadata, with a thumbnail (libvips).
  std::int64_t max_image_pixels = 50'000'000;  // width x height (all frames); more: refused
  std::int64_t thumb_px = 360;                 // thumbnails fit thumb_px x thumb_px
  std::int64_t avatar_px = 128;                // avatars are avatar_px x avatar_px
  std::int64_t image_workers = 2;              // images processed at once (each up to a core)
  // blob = s3: an S3-compatible object store (path-style URLs <endpoint>/<bucket>/<prefix><id>).
  std::string s3_endpoint;  // scheme://host[:port]
  std::string s3_region = "us-east-1";
  std::string s3_bucket;
  std::string s3_prefix;
  std::string s3_access_key;
  std::string s3_secret_key;  // secret
};

struct WsConfig {
  std::int64_t heartbeat_s = 30;   // clients ping this often; two missed beats close
  std::int64_t sync_page = 500;    // messages per backfill page
  std::int64_t ack_flush_ms = 50;  // delivery ACKs are written together this often
  // A user's last connection closed: they turn offline after this unless one reconnects.
  std::int64_t presence_grace_ms = 5000;
};

// The cluster engines (docs/architecture.md §4); unused in standalone mode.
struct NatsConfigSection {
  std::string url = "nats://127.0.0.1:4222";
  std::string stream = "IMD_MSG";  // JetStream stream of the send pipeline
  std::string subject = "im.msg";  // subjects <subject>.<partition>
  std::int64_t partitions = 16;    // conversations hash onto these; one consumer each
  std::int64_t ack_wait_s = 10;    // an unacknowledged batch is redelivered after this
  std::int64_t max_attempts = 5;   // then a message goes to the dead-letter stream
};

struct EtcdConfigSection {
  std::string endpoints = "127.0.0.1:2379";  // comma-separated HOST:PORT list
  std::string prefix = "/imd/";              // every key imd writes starts with this
  std::int64_t lease_ttl_s = 10;             // a dead process's entries vanish after this
};

struct RpcConfigSection {
  std::string listen = "127.0.0.1:0";  // the gateway's gRPC Push service
  std::string advertise;               // the address others dial; empty: the bound address
};

// Full-text search of messages (GET /api/v1/search; docs/operations.md "Search").
struct SearchConfigSection {
  std::int64_t enabled = 1;             // 0: no index writes on the send path, search answers 503
  std::int64_t timeout_ms = 2000;       // one query's time budget
  std::int64_t backfill_batch = 500;    // messages per back-fill transaction
  std::int64_t index_batch = 1000;      // new messages per indexer transaction (standalone)
  std::int64_t index_batch_busy = 100;  // the same while sends wait to be stored
  std::int64_t rate_per_s = 5;          // searches per second per user
  std::int64_t burst = 20;
};

// Circuit breakers per dependency (docs/operations.md, "Degradation and circuit breaking").
struct BreakerConfigSection {
  std::int64_t failures = 3;             // failed or slow probes/calls in a row that open it
  std::int64_t probe_interval_ms = 500;  // each dependency is pinged this often
  std::int64_t deadline_ms = 1000;       // a ping without an answer by then is a failure
  std::int64_t open_ms = 1000;           // first open period; doubles per failed probe
  std::int64_t max_open_ms = 8000;
};

struct Config {
  // What this process registers and reports as its version (empty: the build's, IMD_VERSION).
  std::string version;
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string web_root;  // static web client; empty: <exe dir>/../web/dist if present
  std::int64_t worker_id = 0;
  std::int64_t threads = 0;             // I/O threads; 0 = number of cores
  std::int64_t blocking_threads = 4;    // store / password hashing pool
  std::int64_t shutdown_timeout_s = 5;  // SIGTERM: the drain's budget (docs/operations.md)
  // SIGTERM: /readyz fails this long before the listener closes (a balancer's probe sees it).
  std::int64_t shutdown_ready_grace_ms = 0;
  std::string log_level = "info";
  std::string store = "sqlite";     // sqlite | mysql
  std::string cache = "memory";     // memory | redis (inbox, routes and caches)
  std::string roles = "all";        // any of gateway,api,logic (comma-separated) or all
  std::string queue = "local";      // local (in-process) | nats (JetStream)
  std::string registry = "static";  // static (one process) | etcd
  // Peers (load balancers) whose X-Forwarded-For is believed: comma-separated IPs.
  std::string trusted_proxies;
  AuthConfig auth;
  BreakerConfigSection breaker;
  SqliteConfigSection sqlite;
  MysqlConfigSection mysql;
  RedisConfigSection redis;
  LimitsConfig limits;
  WsConfig ws;
  FilesConfig files;
  NatsConfigSection nats;
  EtcdConfigSection etcd;
  RpcConfigSection rpc;
  SearchConfigSection search;
};

struct Roles {
  bool gateway = false;  // WebSocket connections and the gRPC Push service
  bool api = false;      // REST
  bool logic = false;    // queue consumer: store, inbox, fan-out
  bool all() const { return gateway && api && logic; }
};
// Parses `roles`; invalid_argument for an unknown or empty list.
Result<Roles> parse_roles(std::string_view roles);

struct CommandLine {
  Config config;
  bool help = false;
  bool print_config = false;
};

using GetEnv = std::function<const char*(const char*)>;

// Parses argv (without argv[0]) and the environment, reading the TOML file if one is named.
// Errors are invalid_argument with a message fit to print.
Result<CommandLine> parse_command_line(const std::vector<std::string>& args, const GetEnv& getenv);

// Parses TOML text into `config` (for tests and for the file source).
Result<void> apply_toml(Config& config, std::string_view toml_text, std::string_view origin);

// Checks cross-field constraints (ranges, enums, listen address).
Result<void> validate(const Config& config);

std::string help_text();
// The effective configuration as TOML; secrets are redacted, and so are the credentials of
// URLs (redact_url_credentials).
std::string to_toml(const Config& config);
// "nats://user:pw@h:4222,nats://h2" -> "nats://<redacted>@h:4222,nats://h2".
std::string redact_url_credentials(const std::string& list);

}  // namespace imd
