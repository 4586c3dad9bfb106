#include "net/http_session.hpp"

#include <optional>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include "common/offload.hpp"
#include "net/static_files.hpp"
#include "net/ws_frame.hpp"

namespace imd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

using Request = http::request<http::string_body>;

http::response<http::string_body> to_beast(wire::HttpResponse out, unsigned version,
                                           bool head = false) {
  http::response<http::string_body> res{static_cast<http::status>(out.status), version};
  res.set(http::field::server, "imd");
  if (!out.content_type.empty()) res.set(http::field::content_type, out.content_type);
  for (auto& [k, v] : out.headers) res.set(k, v);
  if (!head) res.body() = std::move(out.body);
  res.prepare_payload();
  return res;
}

// An error that ends the connection.
http::response<http::string_body> closing(wire::HttpResponse out, unsigned version) {
  auto res = to_beast(std::move(out), version);
  res.set(http::field::connection, "close");
  return res;
}

struct Upgrade {
  Id user = 0;
  Millis token_expires_ms = 0;
  bool batch = false;
};

// The checks of RFC 6455 §4.2 and ours (role, token, connection limit); an error response
// when the upgrade is refused.
std::variant<Upgrade, wire::HttpResponse> check_upgrade(const HttpContext& ctx, const Request& req,
                                                        std::string_view path) {
  auto refuse = [](Errc code, std::string message, int status = 0) {
    auto r = wire::error_response(make_error(code, std::move(message)));
    if (status) r.status = status;
    return r;
  };
  if (path != "/ws") return refuse(Errc::not_found, "WebSocket endpoint is /ws");
  if (!ctx.serve_ws) {
    return refuse(Errc::not_found, "this process has no gateway role: no WebSocket here");
  }
  if (req[http::field::sec_websocket_version] != "13") {
    auto r = refuse(Errc::invalid_argument, "Sec-WebSocket-Version must be 13", 426);
    r.headers.emplace_back("Sec-WebSocket-Version", "13");
    return r;
  }
  if (!ws::valid_client_key(req[http::field::sec_websocket_key])) {
    return refuse(Errc::invalid_argument, "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  std::string token;
  std::string ticket;
  Upgrade up;
  if (auto url = boost::urls::parse_origin_form(req.target())) {
    for (auto qp : url->params()) {
      if (qp.key == "token" || qp.key == "access_token") token = qp.value;
      if (qp.key == "ticket") ticket = qp.value;
      if (qp.key == "batch") up.batch = qp.value == "1" || qp.value == "true";
    }
  }
  auto h = req[http::field::authorization];
  if (token.empty() && h.size() > 7 && h.substr(0, 7) == "Bearer ")
    token = std::string(h.substr(7));
  // A one-time ticket (POST /api/v1/ws/ticket) keeps the access token out of the URL; the
  // token itself is still accepted (scripts, other clients).
  auto claims =
      ticket.empty() ? ctx.auth.authenticate_claims(token) : ctx.auth.redeem_ws_ticket(ticket);
  if (!claims) return wire::error_response(claims.error());
  const Id user = claims->user;
  if (ctx.ws.hub.size() >= static_cast<std::size_t>(ctx.config.limits.max_connections)) {
    return refuse(Errc::unavailable, "too many connections");
  }
  // One user cannot take every slot (a soft bound: upgrades racing each other may pass it by
  // the few in flight).
  if (ctx.ws.hub.connections_of(user) >=
      static_cast<std::size_t>(ctx.config.limits.ws_connections_per_user)) {
    return refuse(Errc::too_many_requests, "too many connections for this user");
  }
  up.user = user;
  up.token_expires_ms = claims->exp_s * 1000;
  return up;
}

}  // namespace

awaitable<void> http_session(tcp::socket socket, std::shared_ptr<void> slot,
                             std::shared_ptr<HttpContext> ctx) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buf;
  std::string remote_ip;
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote_ip = ep.address().to_string();
  }
  const auto& cfg = ctx->config;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(static_cast<std::uint64_t>(cfg.limits.max_http_body_bytes));
    parser.header_limit(16 * 1024);
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(stream, buf, parser, kTuple);
    if (ec) {
      std::optional<Error> answer;
      if (ec == http::error::body_limit) {
        answer = make_error(Errc::payload_too_large, "request body too large");
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::connection_reset && ec != asio::error::eof) {
        answer = make_error(Errc::invalid_argument, "malformed HTTP request");
      }
      if (answer)
        co_await http::async_write(stream, closing(wire::error_response(*answer), 11), kTuple);
      break;
    }
    Request req = parser.release();
    std::string target(req.target());
    std::string_view path = std::string_view(target).substr(0, target.find('?'));

    if (beast::websocket::is_upgrade(req)) {
      auto checked = check_upgrade(*ctx, req, path);
      if (auto* refused = std::get_if<wire::HttpResponse>(&checked)) {
        co_await http::async_write(stream, closing(std::move(*refused), req.version()), kTuple);
        break;
      }
      const auto up = std::get<Upgrade>(checked);
      http::response<http::empty_body> res{http::status::switching_protocols, req.version()};
      res.set(http::field::server, "imd");
      res.set(http::field::upgrade, "websocket");
      res.set(http::field::connection, "Upgrade");
      res.set(http::field::sec_websocket_accept,
              ws::accept_key(req[http::field::sec_websocket_key]));
      auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
      if (wec) break;
      // From here on the connection speaks WebSocket through our own frame codec (see
      // ws_frame.hpp); bytes the client sent right behind its request go along.
      std::string early = beast::buffers_to_string(buf.data());
      stream.expires_never();
      auto conn = std::make_shared<WsConnection>(stream.release_socket(), ctx->ws, up.user,
                                                 up.batch, up.token_expires_ms);
      conn->hold(std::move(slot));
      ctx->connections.add(conn);
      conn->start(std::move(early));
      co_return;
    }

    wire::HttpResponse out;
    // /healthz, /readyz and /metrics are served by every role.
    const bool every_role = path == "/healthz" || path == "/readyz" || path == "/metrics";
    if (!ctx->serve_rest && !every_role) {
      out = wire::error_response(
          make_error(Errc::not_found, "this process has no api role: no REST API here"));
    } else if (path.rfind("/api/", 0) == 0 || every_role) {
      wire::HttpRequest in;
      in.method = std::string(req.method_string());
      in.target = target;
      in.authorization = std::string(req[http::field::authorization]);
      in.content_type = std::string(req[http::field::content_type]);
      in.body = std::move(req.body());
      in.remote_ip = ctx->proxies.empty()
                         ? remote_ip
                         : ctx->proxies.client_ip(remote_ip, req["X-Forwarded-For"]);
      api::RestApi& rest = ctx->rest;
      if (rest.hashes_password(in.method, path)) {
        // Argon2id on its own bounded pool: when it is full, "busy" at once.
        BoundedPool::Place place(ctx->hashing);
        if (!place) {
          out = wire::error_response(
              make_error(Errc::unavailable, "too many logins in progress, retry shortly"));
        } else {
          out = co_await offload(ctx->hashing.pool(), [&rest, &in] { return rest.handle(in); });
        }
      } else {
        out = co_await inline_or_offload(
            ctx->blocking, [&rest, &in] { return rest.try_handle(in); },
            [&rest, &in] { return rest.handle(in); });
      }
    } else if (req.method() == http::verb::get || req.method() == http::verb::head) {
      out = co_await offload(ctx->blocking, [&] { return serve_static(ctx->web_root, target); });
    } else {
      out = wire::error_response(make_error(Errc::invalid_argument, "method not allowed"));
      out.status = 405;
    }
    auto res = to_beast(std::move(out), req.version(), req.method() == http::verb::head);
    res.keep_alive(req.keep_alive());
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace imd::net
