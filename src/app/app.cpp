#include "app/app.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
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
#include "routes/memory_routes.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"

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
    SqliteConfig sc;
    sc.path = (fs::path(config.data_dir) / "imd.db").string();
    sc.synchronous = config.sqlite.synchronous;
    sc.read_connections = static_cast<int>(config.sqlite.read_connections);
    db = std::make_shared<SqliteDatabase>(sc);
    store = std::make_unique<SqliteStore>(db);
    inbox = std::make_unique<SqliteInbox>(db);
    members = std::make_unique<MemoryMemberCache>(
        [s = store.get()](Id channel) { return s->channel_member_ids(channel); });
    queue = std::make_unique<LocalQueue>(static_cast<std::size_t>(config.limits.queue_capacity),
                                         static_cast<std::size_t>(config.limits.batch_max));
    hub = std::make_unique<gateway::Hub>(static_cast<std::uint32_t>(config.worker_id));
    tokens = std::make_unique<TokenIssuer>(clock, jwt_secret(config), config.auth.access_ttl_s);
    auth = std::make_unique<AuthService>(*store, ids, clock, hasher, *tokens,
                                         config.auth.refresh_ttl_s);
    spaces = std::make_unique<SpaceService>(*store, *members, ids, clock);
    MessagingLimits ml;
    ml.max_message_bytes = static_cast<std::size_t>(config.limits.max_message_bytes);
    messaging = std::make_unique<MessagingService>(*store, *inbox, *queue, *members, routes, *hub,
                                                   ids, clock, ml);
    rest = std::make_unique<api::RestApi>(api::Services{*auth, *spaces, *messaging, clock},
                                          config.limits);
    net::ServerDeps deps{config, *rest,  *auth,     *messaging, routes,
                         *hub,   clock,  blocking,  find_web_root(config)};
    if (!deps.web_root.empty()) LOG_INFO("serving the web client from " << deps.web_root);
    server = std::make_unique<net::Server>(io, std::move(deps));
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
  std::shared_ptr<SqliteDatabase> db;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<SqliteInbox> inbox;
  std::unique_ptr<MemoryMemberCache> members;
  std::unique_ptr<LocalQueue> queue;
  MemoryRoutes routes;
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
  p_->queue->start([this](std::vector<NewMessage>& batch) { p_->messaging->consume(batch); });
  p_->messaging->start(std::chrono::milliseconds(p_->config.ws.ack_flush_ms));
  return p_->server->start();
}

void App::run_until_signal() {
  boost::asio::signal_set signals(p_->io, SIGINT, SIGTERM);
  boost::asio::steady_timer drain(p_->io);
  signals.async_wait([this, &drain](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    LOG_INFO("signal " << sig << ": shutting down");
    p_->server->stop();
    // Store what was accepted, then give the connections a moment to write those ACKs
    // (a client that misses one retries with the same cid: it is not stored twice).
    p_->queue->stop();
    p_->messaging->stop();  // writes the delivery ACKs gathered so far
    drain.expires_after(std::chrono::milliseconds(300));
    drain.async_wait([this](const boost::system::error_code&) { p_->io.stop(); });
  });
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < p_->threads(); ++i) threads.emplace_back([this] { p_->io.run(); });
  p_->io.run();
  for (auto& t : threads) t.join();
  p_->blocking.join();
  LOG_INFO("stopped");
}

}  // namespace imd
