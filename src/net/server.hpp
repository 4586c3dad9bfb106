// The network edge: one TCP listener serving the REST API, the WebSocket gateway (/ws) and
// the static web client on one port. The HTTP side is http_session.*, the WebSocket
// connections ws_connection.*; the protocol above them lives in api/ and gateway/.
//
// Threading: I/O runs on an io_context with `threads` threads; each connection runs on its
// own strand. Blocking service calls go to the blocking pool and resume on the strand.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/rest_api.hpp"
#include "common/bounded_pool.hpp"
#include "common/config.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/ports/routes.hpp"
#include "domain/sync_service.hpp"
#include "gateway/hub.hpp"

namespace imd::net {

struct ServerDeps {
  const Config& config;
  api::RestApi& rest;
  AuthService& auth;
  MessagingService& messaging;
  SyncService& sync;
  Routes& routes;
  gateway::Hub& hub;
  Clock& clock;
  boost::asio::thread_pool& blocking;
  BoundedPool& hashing;  // password hashing (register, login, password change)
  PresenceService& presence;
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
  // Shutdown, in two steps so that the last `sent` ACKs reach their clients in between:
  // stop_accepting() closes the listener; close_connections() starts the closing handshake of
  // every WebSocket with 1001 (going away): each gets what was queued for it, then the close
  // frame. A connection that upgrades later is closed the same way. Both return at once.
  void stop_accepting();
  void close_connections();
  // WebSocket connections that have not finished closing. After close_connections() the idle
  // sweep no longer runs: wait for 0 with a deadline.
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace imd::net
