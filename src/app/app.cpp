#include "app/app.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/rest_api.hpp"
#include "app/dependency_guard.hpp"
#include "app/metrics_source.hpp"
#include "blob/disk_blob_store.hpp"
#include "blob/s3_blob_store.hpp"
#include "cache/memory_cursor_cache.hpp"
#include "cache/memory_member_cache.hpp"
#include "cache/memory_user_cache.hpp"
#include "common/bounded_pool.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/readiness.hpp"
#include "common/snowflake.hpp"
#include "common/thread_name.hpp"
#include "common/version.hpp"
#include "domain/auth_service.hpp"
#include "domain/file_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/password.hpp"
#include "domain/search_service.hpp"
#include "domain/space_service.hpp"
#include "domain/sync_service.hpp"
#include "domain/tokens.hpp"
#include "gateway/hub.hpp"
#include "image/vips_image_codec.hpp"
#include "net/server.hpp"
#include "queue/local_queue.hpp"
#include "queue_nats/nats_queue.hpp"
#include "redis/redis_client.hpp"
#include "redis/redis_cursor_cache.hpp"
#include "redis/redis_inbox.hpp"
#include "redis/redis_login_counters.hpp"
#include "redis/redis_member_cache.hpp"
#include "redis/redis_presence.hpp"
#include "redis/redis_routes.hpp"
#include "redis/redis_user_cache.hpp"
#include "registry/etcd_registry.hpp"
#include "registry/static_registry.hpp"
#include "routes/memory_presence.hpp"
#include "routes/memory_routes.hpp"
#include "rpc/push_server.hpp"
#include "rpc/remote_pusher.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_file_store.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_search.hpp"
#include "store/sqlite_store.hpp"
#include "store_mysql/mysql_db.hpp"
#include "store_mysql/mysql_file_store.hpp"
#include "store_mysql/mysql_search.hpp"
#include "store_mysql/mysql_store.hpp"

namespace imd {

namespace fs = std::filesystem;

namespace {

// Names every thread of `pool` (it has `threads`): each naming task waits until all have
// started, so each runs on a thread of its own.
void name_threads(boost::asio::thread_pool& pool, std::size_t threads, const char* name) {
  auto started = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(threads));
  for (std::size_t i = 0; i < threads; ++i) {
    boost::asio::post(pool, [started, name] {
      set_thread_name(name);
      started->arrive_and_wait();
    });
  }
  started->wait();
}

// The data directory and what imd keeps in it are the service user's alone (main() sets the
// umask for what is created now); files an older version or an operator left readable by
// others are tightened, with a warning.
void secure_data_dir(const fs::path& dir) {
  auto tighten = [](const fs::path& p, fs::perms keep) {
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) return;
    const auto others = fs::perms::group_all | fs::perms::others_all;
    if ((st.permissions() & others) == fs::perms::none) return;
    fs::permissions(p, keep, fs::perm_options::replace, ec);
    if (ec) {
      LOG_WARN("cannot restrict " << p.string() << " to its owner: " << ec.message());
    } else {
      LOG_WARN(p.string() << " was readable by other users; restricted to its owner");
    }
  };
  tighten(dir, fs::perms::owner_all);
  for (const char* f : {"imd.db", "imd.db-wal", "imd.db-shm", "search.db", "search.db-wal",
                        "search.db-shm", "jwt.secret"}) {
    tighten(dir / f, fs::perms::owner_read | fs::perms::owner_write);
  }
}

// The configured secret, or one generated at first start and kept (mode 0600) in data_dir.
std::string jwt_secret(const Config& c) {
  if (!c.auth.jwt_secret.empty()) return c.auth.jwt_secret;
  fs::path path = fs::path(c.data_dir) / "jwt.secret";
  std::string secret;
  if (std::ifstream in(path); in) std::getline(in, secret);
  if (secret.size() >= 32) return secret;
  secret = random_token(48);
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    out << secret << "\n";
  }
  ::chmod(tmp.c_str(), 0600);
  fs::rename(tmp, path);
  LOG_INFO("generated a JWT secret in " << path.string());
  return secret;
}

// "a, b,c" -> {"a", "b", "c"}: blanks around each item dropped, empty items skipped.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    auto first = text.find_first_not_of(" \t", start);
    auto last = text.find_last_not_of(" \t", end - 1);
    if (first < end && last != std::string::npos && last >= first) {
      out.push_back(text.substr(first, last - first + 1));
    }
    start = end + 1;
  }
  return out;
}

std::string find_web_root(const Config& c) {
  if (!c.web_root.empty()) return c.web_root;
  for (const char* candidate : {"web/dist", "../web/dist", "../../web/dist"}) {
    if (fs::exists(fs::path(candidate) / "index.html")) return fs::absolute(candidate).string();
  }
  return {};
}

}  // namespace

struct App::Parts {
  explicit Parts(Config c)
      : config(std::move(c)),
        roles(*parse_roles(config.roles)),  // validated with the config
        hasher(config.auth.password_hash),
        blocking(static_cast<std::size_t>(config.blocking_threads)),
        hashing(hash_threads(), static_cast<std::size_t>(config.limits.password_hash_queue)),
        io(static_cast<int>(threads())) {
    name_threads(blocking, static_cast<std::size_t>(config.blocking_threads), "imd-pool");
    name_threads(hashing.pool(), hash_threads(), "imd-hash");
    fs::create_directories(config.data_dir);
    secure_data_dir(config.data_dir);
    // The registry comes first: it hands out this process's worker id (snowflake ids, and the
    // node of every connection this gateway holds).
    build_registry();
    ids = std::make_unique<Snowflake>(clock, node);
    build_store();
    build_cache();
    build_queue();
    build_guard();
    hub = std::make_unique<gateway::Hub>(node);
    build_pusher();
    tokens = std::make_unique<TokenIssuer>(clock, jwt_secret(config), config.auth.access_ttl_s);
    auth = std::make_unique<AuthService>(*store, *ids, clock, hasher, *tokens, *users,
                                         config.auth.refresh_ttl_s, config.auth.refresh_reuse_s,
                                         login_counters.get());
    // A user's sessions ended (password change, logout everywhere, deactivation; here or on
    // another process), or one of them: their WebSockets on this process close with 4003.
    auth->on_sessions_ended([hub = hub.get()](Id user) { hub->end_sessions_of(user); });
    auth->on_session_ended(
        [hub = hub.get()](Id user, Id session) { hub->end_session(user, session); });
    spaces = std::make_unique<SpaceService>(
        *store, *members, *users, *ids, clock,
        SpaceQuotas{static_cast<std::uint64_t>(config.limits.spaces_per_user),
                    static_cast<std::uint64_t>(config.limits.channels_per_space),
                    static_cast<std::uint64_t>(config.limits.members_per_space)},
        SpaceEvents{routes.get(), pusher});
    MessagingLimits ml;
    ml.max_message_bytes = static_cast<std::size_t>(config.limits.max_message_bytes);
    ml.dm_shared_space_only = config.limits.dm_policy == "shared_space";
    ml.channel_mentions_by_members = config.limits.channel_mentions == "members";
    // Non-core work is shed first while degraded (a breaker not closed, or the local send
    // queue over half full): typing indicators are dropped, the search indexer waits.
    degraded = [g = guard.get(), q = local_queue,
                half = static_cast<std::size_t>(config.limits.queue_capacity) / 2] {
      return g->degraded() || (q != nullptr && q->depth() > half);
    };
    shedding = std::make_unique<SheddingPusher>(*pusher, degraded);
    messaging = std::make_unique<MessagingService>(*store, *inbox, *guarded_queue,
                                                   MessagingCaches{*members, *users, *cursors},
                                                   *routes, *shedding, *ids, clock, ml);
    admin = std::make_unique<AdminService>(*store, *auth, *spaces, *messaging,
                                           split_list(config.auth.admins));
    presence = std::make_unique<PresenceService>(*presence_store, *store, *pusher);
    messaging->set_presence(presence_store.get());
    build_files();
    messaging->set_attachments(files.get());
    spaces->set_attachments(files.get());
    SearchSettings ss;
    ss.rate_per_s = static_cast<double>(config.search.rate_per_s);
    ss.burst = static_cast<double>(config.search.burst);
    search_service = std::make_unique<SearchService>(search.get(), *messaging, clock, ss);
    build_readiness();
    ::imd::metrics::imd().set_engines(
        config.store, config.cache == "redis" ? "redis" : config.store, config.cache);
    metrics = make_metrics_source(MetricsParts{roles, hub.get(), local_queue, nats_queue, sqlite,
                                               redis_client, push_server.get(), remote_pusher.get(),
                                               readiness.get(), guard.get(), shedding.get(),
                                               sqlite_search, version()});
    rest = std::make_unique<api::RestApi>(
        api::Services{*auth, *spaces, *messaging, clock, &metrics, admin.get(), readiness.get(),
                      files.get(), search_service.get(), presence.get(), version()},
        config.limits);
    sync = std::make_unique<SyncService>(*store, *inbox, *messaging);
    net::ServerDeps deps{config, *rest, *auth,    *messaging, *sync,     *routes,
                         *hub,   clock, blocking, hashing,    *presence, find_web_root(config)};
    deps.serve_ws = roles.gateway;
    deps.serve_rest = roles.api;
    if (!roles.api) deps.web_root.clear();
    if (!deps.web_root.empty()) LOG_INFO("serving the web client from " << deps.web_root);
    server = std::make_unique<net::Server>(io, std::move(deps));
  }

  // registry = static: one process, the configured worker id, every partition.
  // registry = etcd: a leased worker id, this node announced, the other nodes watched.
  void build_registry() {
    if (config.registry == "etcd") {
      EtcdRegistryOptions eo;
      eo.endpoints = split_list(config.etcd.endpoints);
      eo.prefix = config.etcd.prefix;
      eo.lease_ttl = std::chrono::seconds(config.etcd.lease_ttl_s);
      auto r = std::make_unique<EtcdRegistry>(eo);
      etcd_registry = r.get();
      registry = std::move(r);
    } else {
      registry = std::make_unique<StaticRegistry>(static_cast<std::uint32_t>(config.worker_id));
    }
    auto id = registry->start(self_info(""), kMaxWorkerId, [] {
      // Another process may take this id and these partitions: stop serving at once.
      LOG_ERROR("the registry lease is lost: shutting down");
      std::raise(SIGTERM);
    });
    if (!id) throw std::runtime_error("registry: " + id.error().message);
    node = *id;
    LOG_INFO("node id " << node << " (roles " << config.roles << ", version " << version() << ")");
  }

  NodeInfo self_info(std::string push_address) const {
    NodeInfo n;
    n.id = node;
    if (roles.gateway) {
      n.roles.push_back("gateway");
      n.roles.push_back(rpc::kUserPushRole);
    }
    if (roles.api) n.roles.push_back("api");
    if (roles.logic) n.roles.push_back("logic");
    n.push_address = std::move(push_address);
    n.version = version();
    return n;
  }

  // queue = local: in-process, one consumer thread (standalone).
  // queue = nats: JetStream; this process consumes the partitions the registry gives it.
  void build_queue() {
    if (config.queue == "nats") {
      NatsQueueOptions no;
      no.url = config.nats.url;
      no.stream = config.nats.stream;
      no.subject_prefix = config.nats.subject;
      no.partitions = static_cast<std::uint32_t>(config.nats.partitions);
      no.ack_wait = std::chrono::seconds(config.nats.ack_wait_s);
      no.max_attempts = static_cast<std::uint32_t>(config.nats.max_attempts);
      no.fetch_batch_max = static_cast<std::uint32_t>(config.limits.batch_max);
      auto q = std::make_unique<NatsQueue>(no);
      nats_queue = q.get();
      queue = std::move(q);
      return;
    }
    auto q = std::make_unique<LocalQueue>(static_cast<std::size_t>(config.limits.queue_capacity),
                                          static_cast<std::size_t>(config.limits.batch_max),
                                          std::chrono::microseconds(config.limits.batch_linger_us));
    local_queue = q.get();
    queue = std::move(q);
  }

  // A breaker per dependency, probed with its ping (docs/operations.md, "Degradation and circuit
  // breaking"). Sends are refused at once while MariaDB's or NATS's breaker is not closed: they
  // could not be stored, and queuing them would only grow a backlog. Redis and etcd are not
  // gates: their failures degrade (store reads, broadcast, the last view of the registry).
  void build_guard() {
    DependencyGuardOptions go;
    go.breaker.failure_threshold = static_cast<std::uint32_t>(config.breaker.failures);
    go.breaker.slow_call_ms = config.breaker.deadline_ms;
    go.breaker.open_ms = config.breaker.open_ms;
    go.breaker.max_open_ms = config.breaker.max_open_ms;
    go.probe_interval_ms = config.breaker.probe_interval_ms;
    go.probe_deadline_ms = config.breaker.deadline_ms;
    guard = std::make_unique<DependencyGuard>(steady, go);
    std::vector<Breaker*> gates;
    Breaker& store_breaker = guard->add("store", [s = store.get()] { return s->ping(); });
    // MariaDB: sends and its calls fail at once while its breaker is open. SQLite is in-process
    // and answers a failed batch itself (disk full: `unavailable` per send); a ping that waits
    // for a busy read connection says nothing about writes: its breaker only reports.
    if (mysql) {
      gates.push_back(&store_breaker);
      mysql->guard_with(&store_breaker);
    }
    // Real calls feed the breakers too (Breaker::track): MariaDB's queries above, Redis's
    // commands, NATS's publishes.
    if (redis_client) {
      redis_client->report_to(&guard->add("redis", [c = redis_client] { return c->ping(); }));
    }
    Breaker* nats_breaker = nullptr;
    if (nats_queue) {
      nats_breaker = &guard->add("nats", [q = nats_queue, d = config.breaker.deadline_ms] {
        return q->ping(std::chrono::milliseconds(d));
      });
      gates.push_back(nats_breaker);
    }
    if (etcd_registry) guard->add("etcd", [r = etcd_registry] { return r->ping(); });
    guarded_queue = std::make_unique<GuardedQueue>(*queue, std::move(gates), nats_breaker);
  }

  // What GET /readyz checks: the store answers; Redis answers (when caches, routes and the
  // inbox live there); NATS and etcd answer (cluster); the local send queue is below 90% of its
  // capacity (beyond, sends are about to be refused). Draining is set by the signal handler.
  void build_readiness() {
    readiness = std::make_unique<Readiness>(steady);
    readiness->add("store", [s = store.get()] { return s->ping(); });
    if (redis_client) readiness->add("redis", [c = redis_client] { return c->ping(); });
    // Cluster roles: NATS (sends are published there, logic workers consume) and etcd (leases,
    // the node registry). Each bounded by the 1 s deadline of Readiness.
    if (nats_queue) {
      readiness->add("nats", [q = nats_queue] { return q->ping(std::chrono::milliseconds(1000)); });
    }
    if (etcd_registry) readiness->add("etcd", [r = etcd_registry] { return r->ping(); });
    if (local_queue) {
      const auto limit = static_cast<std::size_t>(config.limits.queue_capacity) * 9 / 10;
      readiness->add("queue", [q = local_queue, limit]() -> Result<void> {
        if (q->depth() <= limit) return {};
        return make_error(Errc::unavailable, std::to_string(q->depth()) +
                                                 " messages wait to be stored (limit " +
                                                 std::to_string(limit) + ")");
      });
    }
  }

  // One process holding every connection pushes straight into its Hub. Otherwise events go
  // to the gateway holding each connection: this node's own through the Hub, the others' by
  // gRPC, one batched call per gateway.
  void build_pusher() {
    if (config.registry != "etcd") {
      pusher = hub.get();
      return;
    }
    Registry* reg = registry.get();
    auto resolve = [reg](std::uint32_t id) -> std::optional<rpc::PushPeer> {
      auto n = reg->node(id);
      if (!n || n->push_address.empty()) return std::nullopt;
      return rpc::PushPeer{n->push_address, n->version};
    };
    // The fallback's audience: every live gateway that declared it resolves users.
    auto user_push_nodes = [reg] {
      std::vector<std::uint32_t> out;
      for (const NodeInfo& n : reg->nodes()) {
        if (!n.push_address.empty() &&
            std::find(n.roles.begin(), n.roles.end(), rpc::kUserPushRole) != n.roles.end()) {
          out.push_back(n.id);
        }
      }
      return out;
    };
    remote_pusher =
        std::make_unique<rpc::RemotePusher>(node, roles.gateway ? hub.get() : nullptr, resolve,
                                            rpc::RemotePusherOptions{}, user_push_nodes);
    pusher = remote_pusher.get();
    if (roles.gateway) {
      rpc::PushServerOptions po;
      po.address = config.rpc.listen;
      po.max_body_bytes = static_cast<std::size_t>(config.limits.max_message_bytes) + 1024;
      push_server = std::make_unique<rpc::PushServer>(node, *hub, po);
    }
  }

  // store = sqlite: the database in data_dir, which also holds the 1:1 inbox.
  // store = mysql: MySQL/MariaDB; the inbox then lives in Redis (validated in config).
  void build_store() {
    if (config.store == "mysql") {
      MysqlConfig mc;
      mc.host = config.mysql.host;
      mc.port = static_cast<unsigned>(config.mysql.port);
      mc.user = config.mysql.user;
      mc.password = config.mysql.password;
      mc.database = config.mysql.database;
      mc.pool_size = static_cast<int>(config.mysql.pool_size);
      mysql = std::make_shared<MysqlDatabase>(mc);
      store = std::make_unique<MysqlStore>(mysql);
      // The index is kept in step by the schema's triggers whatever this says; 0 only turns
      // the endpoint off (docs/operations.md "Search").
      if (config.search.enabled != 0) {
        MysqlSearchOptions so;
        so.timeout_ms = static_cast<int>(config.search.timeout_ms);
        so.backfill_batch = static_cast<std::uint32_t>(config.search.backfill_batch);
        auto s = std::make_unique<MysqlSearch>(mysql, so);
        mysql_search = s.get();
        search = std::move(s);
      }
      return;
    }
    SqliteConfig sc;
    sc.path = (fs::path(config.data_dir) / "imd.db").string();
    sc.synchronous = config.sqlite.synchronous;
    sc.read_connections = static_cast<int>(config.sqlite.read_connections);
    sc.checkpoint_restart_bytes =
        static_cast<std::uint64_t>(config.sqlite.checkpoint_restart_bytes);
    sc.checkpoint_stall_warn_ms = static_cast<int>(config.sqlite.checkpoint_stall_warn_s * 1000);
    sc.mmap_bytes = config.sqlite.mmap_mib << 20;
    sqlite = std::make_shared<SqliteDatabase>(sc);
    store = std::make_unique<SqliteStore>(sqlite);
    inbox = std::make_unique<SqliteInbox>(sqlite);
    if (config.search.enabled == 0) {
      disable_sqlite_search(*sqlite);
      return;
    }
    SqliteSearchOptions so;
    so.timeout_ms = static_cast<int>(config.search.timeout_ms);
    so.backfill_batch = static_cast<std::uint32_t>(config.search.backfill_batch);
    so.index_batch = static_cast<std::uint32_t>(config.search.index_batch);
    so.index_batch_busy = static_cast<std::uint32_t>(config.search.index_batch_busy);
    auto s = std::make_unique<SqliteSearch>(sqlite, so);
    sqlite_search = s.get();
    search = std::move(s);
  }

  // Uploaded files: the bytes on disk under files.dir (docs/operations.md "Files"; in a
  // cluster, a directory every api process shares), the metadata in the store's database.
  void build_files() {
    const fs::path dir =
        config.files.dir.empty() ? fs::path(config.data_dir) / "files" : fs::path(config.files.dir);
    if (config.files.blob == "s3") {
      S3Config s3;
      s3.endpoint = config.files.s3_endpoint;
      s3.region = config.files.s3_region;
      s3.bucket = config.files.s3_bucket;
      s3.prefix = config.files.s3_prefix;
      s3.access_key = config.files.s3_access_key;
      s3.secret_key = config.files.s3_secret_key;
      s3.spool_dir = fs::path(config.data_dir) / "files-spool";
      blobs = std::make_unique<S3BlobStore>(std::move(s3));
    } else {
      blobs = std::make_unique<DiskBlobStore>(dir);
    }
    if (mysql) {
      file_store = std::make_unique<MysqlFileStore>(mysql);
    } else {
      file_store = std::make_unique<SqliteFileStore>(sqlite);
    }
    FilesLimits fl;
    fl.max_bytes = static_cast<std::uint64_t>(config.files.max_bytes);
    fl.quota_bytes = static_cast<std::uint64_t>(config.files.quota_bytes);
    fl.orphan_ttl_ms = config.files.orphan_ttl_s * 1000;
    fl.sweep_interval = std::chrono::seconds(config.files.sweep_interval_s);
    fl.max_image_pixels = static_cast<std::uint64_t>(config.files.max_image_pixels);
    fl.thumb_px = static_cast<std::uint32_t>(config.files.thumb_px);
    fl.avatar_px = static_cast<std::uint32_t>(config.files.avatar_px);
    images = std::make_unique<VipsImageCodec>(
        ImageCodecLimits{.max_pixels = fl.max_image_pixels,
                         .workers = static_cast<int>(config.files.image_workers)});
    files = std::make_unique<FileService>(*file_store, *blobs, *store, clock, fl, images.get());
  }

  // cache = memory: in-process routes and caches (one process holds every connection).
  // cache = redis: inbox, routes, member lists, users' memberships and delivery cursors in
  // Redis (single node or cluster).
  void build_cache() {
    Store* s = store.get();
    auto loader = [s](Id channel) { return s->channel_member_ids(channel); };
    auto user_loader = [s](Id user) { return s->memberships_of_user(user); };
    if (config.cache != "redis") {
      routes = std::make_unique<MemoryRoutes>();
      presence_store = std::make_unique<MemoryPresence>(*routes);
      members = std::make_unique<MemoryMemberCache>(loader);
      users = std::make_unique<MemoryUserCache>(user_loader);
      cursors = std::make_unique<MemoryCursorCache>();
      return;
    }
    auto seeds = redis::parse_endpoints(config.redis.addresses);
    if (!seeds) throw std::runtime_error("redis.addresses: " + seeds.error().message);
    redis::RedisOptions ro;
    ro.seeds = *seeds;
    ro.cluster = config.redis.mode == "cluster";
    ro.pool_size = static_cast<int>(config.redis.pool_size);
    auto client = std::make_shared<redis::RedisClient>(ro);
    redis_client = client;
    RedisInboxOptions io_opts;
    io_opts.max_entries = static_cast<std::uint32_t>(config.redis.inbox_max);
    inbox = std::make_unique<RedisInbox>(client, io_opts);
    RedisRoutesOptions rr;
    rr.ttl = std::chrono::seconds(config.redis.route_ttl_s);
    auto r = std::make_unique<RedisRoutes>(client, rr);
    redis_routes = r.get();
    routes = std::move(r);
    presence_store = std::make_unique<RedisPresence>(client);
    RedisMemberCacheOptions mo;
    mo.ttl = std::chrono::seconds(config.redis.members_ttl_s);
    members = std::make_unique<RedisMemberCache>(client, loader, mo);
    users = std::make_unique<RedisUserCache>(client, user_loader, mo);
    cursors = std::make_unique<RedisCursorCache>(client);
    login_counters = std::make_unique<RedisLoginCounters>(
        client, RedisLoginCountersOptions{"im", LoginThrottlePolicy{}.counter_limits()});
  }

  // The configured version, else the build's.
  std::string version() const {
    return config.version.empty() ? std::string(build_version()) : config.version;
  }

  std::size_t threads() const {
    if (config.threads > 0) return static_cast<std::size_t>(config.threads);
    return std::max(1u, std::thread::hardware_concurrency());
  }
  std::size_t hash_threads() const {
    if (config.auth.hash_threads > 0) return static_cast<std::size_t>(config.auth.hash_threads);
    return std::max(1u, std::thread::hardware_concurrency() / 2);
  }

  static constexpr std::uint32_t kMaxWorkerId = 1023;  // 10 bits of the snowflake

  Config config;
  Roles roles;
  SystemClock clock;
  std::unique_ptr<Registry> registry;
  EtcdRegistry* etcd_registry = nullptr;  // set when registry = etcd: readiness pings it
  std::uint32_t node = 0;
  std::unique_ptr<Snowflake> ids;
  PasswordHasher hasher;
  boost::asio::thread_pool blocking;
  BoundedPool hashing;
  boost::asio::io_context io;
  std::shared_ptr<SqliteDatabase> sqlite;  // store = sqlite: its WAL status feeds /metrics
  std::shared_ptr<MysqlDatabase> mysql;    // store = mysql
  std::unique_ptr<Store> store;
  std::unique_ptr<Inbox> inbox;
  std::unique_ptr<Search> search;         // null: search disabled, or not on this store yet
  SqliteSearch* sqlite_search = nullptr;  // store = sqlite: its back-fill starts with the app
  MysqlSearch* mysql_search = nullptr;    // store = mysql: logic nodes run its back-fill
  std::unique_ptr<MemberCache> members;
  std::unique_ptr<UserCache> users;
  std::unique_ptr<CursorCache> cursors;
  std::unique_ptr<Queue> queue;
  NatsQueue* nats_queue = nullptr;    // set when queue = nats: partitions come from the registry
  LocalQueue* local_queue = nullptr;  // set when queue = local: its depth feeds readiness
  std::shared_ptr<redis::RedisClient> redis_client;  // set when the caches live in Redis
  // Set when the caches live in Redis: the login brakes count there, for every process.
  std::unique_ptr<LoginCounters> login_counters;
  SteadyClock steady;
  std::unique_ptr<Readiness> readiness;
  // After the engines it pings: destroyed (its probe threads joined) before them.
  std::unique_ptr<DependencyGuard> guard;
  std::unique_ptr<GuardedQueue> guarded_queue;  // the queue as the services see it
  std::unique_ptr<Routes> routes;
  RedisRoutes* redis_routes = nullptr;  // set when routes live in Redis: they need refreshing
  std::unique_ptr<PresenceStore> presence_store;  // beside the routes it folds
  std::unique_ptr<gateway::Hub> hub;
  std::unique_ptr<rpc::RemotePusher> remote_pusher;
  std::unique_ptr<rpc::PushServer> push_server;
  Pusher* pusher = nullptr;                  // the Hub, or the remote pusher
  std::function<bool()> degraded;            // what sheds non-core work (typing, search indexing)
  std::unique_ptr<SheddingPusher> shedding;  // `pusher` as MessagingService sees it
  std::unique_ptr<TokenIssuer> tokens;
  std::unique_ptr<AuthService> auth;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<SpaceService> spaces;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<ImageCodec> images;
  std::unique_ptr<FileStore> file_store;
  std::unique_ptr<FileService> files;  // before messaging, which holds it (Attachments)
  std::unique_ptr<MessagingService> messaging;
  std::unique_ptr<SyncService> sync;
  std::unique_ptr<PresenceService> presence;
  std::unique_ptr<SearchService> search_service;
  MetricsSource metrics;
  std::unique_ptr<api::RestApi> rest;
  std::unique_ptr<net::Server> server;
};

App::App(Config config) : p_(std::make_unique<Parts>(std::move(config))) {}

App::~App() = default;

std::string App::start() {
  auto& p = *p_;
  if (p.push_server) {
    std::string bound = p.push_server->start();
    std::string advertised = p.config.rpc.advertise.empty() ? bound : p.config.rpc.advertise;
    if (auto r = p.registry->announce(p.self_info(advertised)); !r) {
      throw std::runtime_error("registry: " + r.error().message);
    }
    LOG_INFO("Push service on " << bound << " (announced as " << advertised << ")");
  }
  if (p.roles.logic) {
    p.queue->start(
        [this](std::vector<NewMessage>& batch) { return p_->messaging->consume(batch); });
    if (p.nats_queue) {
      NatsQueue* q = p.nats_queue;
      p.registry->own_partitions(static_cast<std::uint32_t>(p.config.nats.partitions),
                                 [q](std::vector<std::uint32_t> owned) {
                                   LOG_INFO("consuming " << owned.size() << " partitions");
                                   q->assign(std::move(owned));
                                 });
    }
  }
  p.messaging->start(std::chrono::milliseconds(p.config.ws.ack_flush_ms));
  p.guard->start();
  // Sessions ended and accounts deactivated before this start are refused from the first
  // request on.
  if (auto r = p.auth->sync_accounts(); !r) {
    throw std::runtime_error("loading account states: " + r.error().message);
  }
  // Uploads never sent are swept by the processes that take uploads.
  if (p.roles.api) p.files->start();
  if (p.sqlite_search) {
    // Sends waiting to be stored: the indexer's transactions shrink so that they wait little.
    p.sqlite_search->start(p.degraded,
                           [q = p.local_queue] { return q != nullptr && q->depth() > 0; });
  }
  if (p.mysql_search && p.roles.logic) p.mysql_search->start_backfill();
  return p.server->start();
}

void App::run_until_signal() {
  boost::asio::signal_set signals(p_->io, SIGINT, SIGTERM);
  boost::asio::steady_timer drain(p_->io);
  boost::asio::steady_timer refresh(p_->io);
  boost::asio::steady_timer accounts(p_->io);
  boost::asio::steady_timer grace(p_->io);
  // Stops the I/O once every WebSocket finished its closing handshake, or at the deadline.
  std::function<void(std::chrono::steady_clock::time_point)> wait_closed =
      [&](std::chrono::steady_clock::time_point deadline) {
        if (p_->server->open_connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
          if (auto left = p_->server->open_connections()) {
            LOG_INFO(left << " WebSocket connections did not finish closing in time");
          }
          p_->io.stop();
          return;
        }
        drain.expires_after(std::chrono::milliseconds(20));
        drain.async_wait(
            [&, deadline](const boost::system::error_code&) { wait_closed(deadline); });
      };
  // After readiness fails: the listener closes, accepted sends are stored, sockets close.
  std::function<void()> drain_all = [this, &refresh, &accounts, &wait_closed] {
    p_->server->stop_accepting();
    // The whole drain has shutdown_timeout_s: storing what was accepted may take all of it (a
    // slow store), the closing handshakes get at least a second after that.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(p_->config.shutdown_timeout_s);
    // Store what was accepted and push those ACKs, then close every WebSocket with 1001 behind
    // them (a client that misses one retries with the same cid: it is not stored twice).
    if (p_->local_queue) p_->local_queue->drain_until(deadline);
    p_->queue->stop();
    p_->messaging->stop();  // writes the delivery ACKs gathered so far
    p_->files->stop();
    if (p_->push_server) p_->push_server->stop();
    if (p_->remote_pusher) p_->remote_pusher->stop();
    p_->registry->stop();  // releases partitions and the worker id at once
    refresh.cancel();
    accounts.cancel();
    p_->server->close_connections();
    wait_closed(std::max(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(1)));
  };
  signals.async_wait(
      [this, &signals, &grace, &drain_all](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        LOG_INFO("signal " << sig << ": shutting down");
        // A second signal while this one drains: the operator wants out now.
        signals.async_wait([](const boost::system::error_code& again, int sig2) {
          if (again) return;
          LOG_WARN("signal " << sig2 << " during shutdown: exiting at once");
          std::_Exit(1);
        });
        p_->readiness->set_draining();
        // /readyz fails first; the process still serves during the grace, so that a load balancer
        // or a readiness probe takes it out of rotation before its listener closes.
        const auto wait = std::chrono::milliseconds(p_->config.shutdown_ready_grace_ms);
        if (wait.count() <= 0) return drain_all();
        LOG_INFO("draining: /readyz fails, the listener closes in " << wait.count() << " ms");
        grace.expires_after(wait);
        grace.async_wait([&drain_all](const boost::system::error_code& e) {
          if (!e) drain_all();
        });
      });
  // Routes in Redis expire unless refreshed: refresh this process's live connections every
  // third of their TTL, on the blocking pool (one pipelined call).
  std::function<void()> schedule_refresh = [&] {
    if (!p_->redis_routes) return;
    refresh.expires_after(p_->redis_routes->ttl() / 3);
    refresh.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      boost::asio::post(p_->blocking, [this] {
        auto live = p_->hub->snapshot();
        if (auto r = p_->redis_routes->refresh_many(live); !r) {
          LOG_WARN("refreshing " << live.size() << " routes failed: " << r.error().message);
        }
      });
      schedule_refresh();
    });
  };
  schedule_refresh();
  // Account states other processes stored (ended sessions, deactivations): applied here within
  // one period. One poll at a time; a slow store delays the next instead of piling them up.
  std::atomic<bool> polling{false};
  std::function<void()> schedule_accounts = [&] {
    accounts.expires_after(std::chrono::milliseconds(p_->config.auth.account_poll_ms));
    accounts.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (!polling.exchange(true)) {
        boost::asio::post(p_->blocking, [this, &polling] {
          if (auto r = p_->auth->sync_accounts(); !r) {
            LOG_WARN("reading account states failed: " << r.error().message);
          }
          polling = false;
        });
      }
      schedule_accounts();
    });
  };
  schedule_accounts();
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < p_->threads(); ++i)
    threads.emplace_back([this] {
      set_thread_name("imd-io");
      p_->io.run();
    });
  p_->io.run();
  for (auto& t : threads) t.join();
  p_->blocking.join();
  p_->hashing.join();
  LOG_INFO("stopped");
}

}  // namespace imd
