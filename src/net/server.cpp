#include "net/server.hpp"

#include <chrono>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "net/http_session.hpp"
#include "net/ws_connection.hpp"

namespace imd::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, const ServerDeps& d)
      : io(io),
        config(d.config),
        acceptor(io),
        ws{d.config, d.messaging, d.sync, d.routes, d.hub, d.clock, d.blocking},
        connections(
            std::make_shared<WsConnections>(asio::make_strand(io), d.config.ws.heartbeat_s)),
        http(std::make_shared<HttpContext>(HttpContext{
            d.config, d.rest, d.auth, ws, *connections, d.blocking,
            TrustedProxies(d.config.trusted_proxies), d.web_root, d.serve_ws, d.serve_rest})) {}

  asio::awaitable<void> accept_loop();

  asio::io_context& io;
  const Config& config;
  tcp::acceptor acceptor;
  gateway::WsContext ws;
  std::shared_ptr<WsConnections> connections;
  std::shared_ptr<HttpContext> http;
};

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      LOG_WARN("accept failed: " << ec.message());
      asio::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    auto ex = socket.get_executor();
    asio::co_spawn(ex, http_session(std::move(socket), http), asio::detached);
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
