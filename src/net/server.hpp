// The network edge: one TCP listener serving the REST API, the WebSocket gateway (/ws) and
// the static web client on one port (Boost.Beast). This is the only place Beast is compiled.
//
// Threading: I/O runs on an io_context with `threads` threads; each connection runs on its
// own strand. Blocking service calls go to the blocking pool and resume on the strand.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/rest_api.hpp"
#include "common/config.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/ports/routes.hpp"
#include "gateway/hub.hpp"

namespace imd::net {

struct ServerDeps {
  const Config& config;
  api::RestApi& rest;
  AuthService& auth;
  MessagingService& messaging;
  Routes& routes;
  gateway::Hub& hub;
  Clock& clock;
  boost::asio::thread_pool& blocking;
  std::string web_root;    // empty: no static files
  bool serve_ws = true;    // the gateway role: /ws
  bool serve_rest = true;  // the api role: /api/... (/healthz is served by every role)
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerDeps deps);
  ~Server();
  // Binds and starts accepting; returns the bound "host:port". Throws on bind failure.
  std::string start();
  // Stops accepting and closes every connection.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace imd::net
