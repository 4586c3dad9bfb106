#include "net/server.hpp"

#include <sys/resource.h>

#include <chrono>
#include <limits>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "net/conn_limits.hpp"
#include "net/http_session.hpp"
#include "net/ws_connection.hpp"

namespace imd::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Descriptors kept for everything that is not a client connection: the store's files, Redis,
// MySQL, NATS and etcd connections, gRPC channels, the log.
constexpr std::size_t kReservedFds = 1024;

std::shared_ptr<ConnectionLimits> make_limits(const LimitsConfig& l) {
  const auto wanted = static_cast<std::size_t>(l.max_tcp_connections);
  std::size_t total = wanted;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    total =
        ConnectionLimits::affordable(wanted, static_cast<std::size_t>(rl.rlim_cur), kReservedFds);
    if (total < wanted) {
      LOG_INFO("limits.max_tcp_connections lowered from "
               << wanted << " to " << total << ": the fd limit is " << rl.rlim_cur << " and "
               << kReservedFds << " descriptors are kept for the store and the engines");
    }
  }
  return std::make_shared<ConnectionLimits>(total,
                                            static_cast<std::size_t>(l.tcp_connections_per_ip));
}

// A warning that may repeat many times a second (a flood) is written at most every 10 s, with
// the number of times it happened since.
class ThrottledWarning {
 public:
  template <class Write>
  void operator()(Write&& write) {
    ++count_;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(10)) return;
    write(count_);
    count_ = 0;
    last_ = now;
  }

 private:
  std::uint64_t count_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, const ServerDeps& d)
      : io(io),
        config(d.config),
        acceptor(io),
        ws{d.config, d.auth, d.messaging, d.sync, d.routes, d.hub, d.clock, d.blocking, d.presence},
        limits(make_limits(d.config.limits)),
        connections(
            std::make_shared<WsConnections>(asio::make_strand(io), d.config.ws.heartbeat_s)),
        http(std::make_shared<HttpContext>(HttpContext{
            d.config, d.rest, d.auth, ws, *connections, d.blocking, d.hashing,
            TrustedProxies(d.config.trusted_proxies), d.web_root, d.serve_ws, d.serve_rest,
            std::make_shared<ConnectionLimits>(
                std::numeric_limits<std::size_t>::max(),
                static_cast<std::size_t>(d.config.limits.ws_connections_per_ip))})) {}

  asio::awaitable<void> accept_loop();

  asio::io_context& io;
  const Config& config;
  tcp::acceptor acceptor;
  gateway::WsContext ws;
  std::shared_ptr<ConnectionLimits> limits;
  std::shared_ptr<WsConnections> connections;
  std::shared_ptr<HttpContext> http;
  ThrottledWarning accept_failed;
  ThrottledWarning refused;
};

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      accept_failed([&](std::uint64_t n) {
        LOG_WARN("accept failed: " << ec.message() << " (" << n << " times in 10 s)");
      });
      asio::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    boost::system::error_code pec;
    const auto peer = socket.remote_endpoint(pec).address();
    if (pec) continue;  // already gone
    ConnectionLimits::Refusal why{};
    auto ticket = limits->admit(peer, http->proxies.contains(peer.to_string()), why);
    if (!ticket) {
      refused([&](std::uint64_t n) {
        LOG_WARN("connection from "
                 << peer.to_string() << " refused: "
                 << (why == ConnectionLimits::Refusal::total ? "limits.max_tcp_connections"
                                                             : "limits.tcp_connections_per_ip")
                 << " reached (" << n << " refusals in 10 s)");
      });
      socket.close(pec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), pec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, http_session(std::move(socket), std::move(ticket), http), asio::detached);
  }
}

Server::Server(asio::io_context& io, ServerDeps deps) : impl_(std::make_shared<Impl>(io, deps)) {}

Server::~Server() = default;

std::string Server::start() {
  const std::string& listen = impl_->config.listen;
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)));
  tcp::resolver resolver(impl_->io);
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive);
  tcp::endpoint ep = results.begin()->endpoint();
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol());
  acc.set_option(asio::socket_base::reuse_address(true));
  acc.bind(ep);
  acc.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->connections->start();
  auto bound = acc.local_endpoint();
  std::ostringstream os;
  if (bound.address().is_v6()) {
    os << "[" << bound.address().to_string() << "]:" << bound.port();
  } else {
    os << bound.address().to_string() << ":" << bound.port();
  }
  return os.str();
}

void Server::stop_accepting() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

void Server::close_connections() {
  impl_->connections->close_all();
}

std::size_t Server::open_connections() const {
  return impl_->connections->open();
}

}  // namespace imd::net
