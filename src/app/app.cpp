#include "app/app.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/rest_api.hpp"
#include "cache/memory_member_cache.hpp"
#include "common/log.hpp"
#include "common/snowflake.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/password.hpp"
#include "domain/space_service.hpp"
#include "domain/tokens.hpp"
#include "gateway/hub.hpp"
#include "net/server.hpp"
#include "queue/local_queue.hpp"
#include "redis/redis_client.hpp"
#include "redis/redis_inbox.hpp"
#include "redis/redis_member_cache.hpp"
#include "redis/redis_routes.hpp"
#include "routes/memory_routes.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"
#include "store_mysql/mysql_db.hpp"
#include "store_mysql/mysql_store.hpp"

namespace imd {

namespace fs = std::filesystem;

namespace {

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
        ids(clock, static_cast<std::uint32_t>(config.worker_id)),
        hasher(config.auth.password_hash),
        blocking(static_cast<std::size_t>(config.blocking_threads)),
        io(static_cast<int>(threads())) {
    fs::create_directories(config.data_dir);
    build_store();
    build_cache();
    queue = std::make_unique<LocalQueue>(static_cast<std::size_t>(config.limits.queue_capacity),
                                         static_cast<std::size_t>(config.limits.batch_max));
    hub = std::make_unique<gateway::Hub>(static_cast<std::uint32_t>(config.worker_id));
    tokens = std::make_unique<TokenIssuer>(clock, jwt_secret(config), config.auth.access_ttl_s);
    auth = std::make_unique<AuthService>(*store, ids, clock, hasher, *tokens,
                                         config.auth.refresh_ttl_s);
    spaces = std::make_unique<SpaceService>(*store, *members, ids, clock);
    MessagingLimits ml;
    ml.max_message_bytes = static_cast<std::size_t>(config.limits.max_message_bytes);
    messaging = std::make_unique<MessagingService>(*store, *inbox, *queue, *members, *routes, *hub,
                                                   ids, clock, ml);
    rest = std::make_unique<api::RestApi>(api::Services{*auth, *spaces, *messaging, clock},
                                          config.limits);
    net::ServerDeps deps{config, *rest, *auth,    *messaging,           *routes,
                         *hub,   clock, blocking, find_web_root(config)};
    if (!deps.web_root.empty()) LOG_INFO("serving the web client from " << deps.web_root);
    server = std::make_unique<net::Server>(io, std::move(deps));
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
      store = std::make_unique<MysqlStore>(std::make_shared<MysqlDatabase>(mc));
      return;
    }
    SqliteConfig sc;
    sc.path = (fs::path(config.data_dir) / "imd.db").string();
    sc.synchronous = config.sqlite.synchronous;
    sc.read_connections = static_cast<int>(config.sqlite.read_connections);
    auto db = std::make_shared<SqliteDatabase>(sc);
    store = std::make_unique<SqliteStore>(db);
    inbox = std::make_unique<SqliteInbox>(db);
  }

  // cache = memory: in-process routes and member cache (one process holds every connection).
  // cache = redis: inbox, routes and member lists in Redis (single node or cluster).
  void build_cache() {
    Store* s = store.get();
    auto loader = [s](Id channel) { return s->channel_member_ids(channel); };
    if (config.cache != "redis") {
      routes = std::make_unique<MemoryRoutes>();
      members = std::make_unique<MemoryMemberCache>(loader);
      return;
    }
    auto seeds = redis::parse_endpoints(config.redis.addresses);
    if (!seeds) throw std::runtime_error("redis.addresses: " + seeds.error().message);
    redis::RedisOptions ro;
    ro.seeds = *seeds;
    ro.cluster = config.redis.mode == "cluster";
    ro.pool_size = static_cast<int>(config.redis.pool_size);
    auto client = std::make_shared<redis::RedisClient>(ro);
    RedisInboxOptions io_opts;
    io_opts.max_entries = static_cast<std::uint32_t>(config.redis.inbox_max);
    inbox = std::make_unique<RedisInbox>(client, io_opts);
    RedisRoutesOptions rr;
    rr.ttl = std::chrono::seconds(config.redis.route_ttl_s);
    auto r = std::make_unique<RedisRoutes>(client, rr);
    redis_routes = r.get();
    routes = std::move(r);
    RedisMemberCacheOptions mo;
    mo.ttl = std::chrono::seconds(config.redis.members_ttl_s);
    members = std::make_unique<RedisMemberCache>(client, loader, mo);
  }

  std::size_t threads() const {
    if (config.threads > 0) return static_cast<std::size_t>(config.threads);
    return std::max(1u, std::thread::hardware_concurrency());
  }

  Config config;
  SystemClock clock;
  Snowflake ids;
  PasswordHasher hasher;
  boost::asio::thread_pool blocking;
  boost::asio::io_context io;
  std::unique_ptr<Store> store;
  std::unique_ptr<Inbox> inbox;
  std::unique_ptr<MemberCache> members;
  std::unique_ptr<LocalQueue> queue;
  std::unique_ptr<Routes> routes;
  RedisRoutes* redis_routes = nullptr;  // set when routes live in Redis: they need refreshing
  std::unique_ptr<gateway::Hub> hub;
  std::unique_ptr<TokenIssuer> tokens;
  std::unique_ptr<AuthService> auth;
  std::unique_ptr<SpaceService> spaces;
  std::unique_ptr<MessagingService> messaging;
  std::unique_ptr<api::RestApi> rest;
  std::unique_ptr<net::Server> server;
};

App::App(Config config) : p_(std::make_unique<Parts>(std::move(config))) {}

App::~App() = default;

std::string App::start() {
  p_->queue->start(
      [this](std::vector<NewMessage>& batch) { return p_->messaging->consume(batch); });
  p_->messaging->start(std::chrono::milliseconds(p_->config.ws.ack_flush_ms));
  return p_->server->start();
}

void App::run_until_signal() {
  boost::asio::signal_set signals(p_->io, SIGINT, SIGTERM);
  boost::asio::steady_timer drain(p_->io);
  boost::asio::steady_timer refresh(p_->io);
  signals.async_wait([this, &drain, &refresh](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    LOG_INFO("signal " << sig << ": shutting down");
    p_->server->stop();
    // Store what was accepted, then give the connections a moment to write those ACKs
    // (a client that misses one retries with the same cid: it is not stored twice).
    p_->queue->stop();
    p_->messaging->stop();  // writes the delivery ACKs gathered so far
    refresh.cancel();
    drain.expires_after(std::chrono::milliseconds(300));
    drain.async_wait([this](const boost::system::error_code&) { p_->io.stop(); });
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
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < p_->threads(); ++i) threads.emplace_back([this] { p_->io.run(); });
  p_->io.run();
  for (auto& t : threads) t.join();
  p_->blocking.join();
  LOG_INFO("stopped");
}

}  // namespace imd
