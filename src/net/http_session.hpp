// One HTTP/1.1 connection (Boost.Beast): requests one after the other, each answered by the
// REST API (api::RestApi, inline first, else on the blocking pool), the static web client, or
// the WebSocket upgrade at /ws, after which the socket belongs to a WsConnection. Every error
// answer is wire::error_response()'s. This is the one translation unit that compiles Beast.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/rest_api.hpp"
#include "common/bounded_pool.hpp"
#include "common/forwarded.hpp"
#include "gateway/ws_session.hpp"
#include "net/conn_limits.hpp"
#include "net/ws_connection.hpp"

namespace imd::net {

// What every HTTP session of a server shares.
struct HttpContext {
  const Config& config;
  api::RestApi& rest;
  AuthService& auth;
  gateway::WsContext& ws;  // for the connections that upgrade
  WsConnections& connections;
  boost::asio::thread_pool& blocking;
  BoundedPool& hashing;    // requests that hash a password (RestApi::hashes_password)
  TrustedProxies proxies;  // whose X-Forwarded-For names the client
  std::string web_root;    // empty: no static files
  bool serve_ws = true;    // the gateway role: /ws
  bool serve_rest = true;  // the api role: /api/... (/healthz and /metrics: every role)
  // WebSockets per client address (limits.ws_connections_per_ip); null: not capped.
  std::shared_ptr<ConnectionLimits> ws_by_address = nullptr;
};

// `slot`: the connection's place under the TCP caps (ConnectionLimits), held until the socket
// closes, by the WsConnection after an upgrade.
boost::asio::awaitable<void> http_session(boost::asio::ip::tcp::socket socket,
                                          std::shared_ptr<void> slot,
                                          std::shared_ptr<HttpContext> ctx);

}  // namespace imd::net
