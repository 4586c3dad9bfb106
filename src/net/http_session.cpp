#include "net/http_session.hpp"

#include <optional>
#include <variant>
#include <vector>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include "common/offload.hpp"
#include "domain/auth_service.hpp"
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

// The client's address: the peer's, or the one a trusted proxy's X-Forwarded-For names.
std::string client_address(const HttpContext& ctx, const http::request_header<>& req,
                           const std::string& remote_ip) {
  return ctx.proxies.empty() ? remote_ip : ctx.proxies.client_ip(remote_ip, req["X-Forwarded-For"]);
}

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
  Id login_session = 0;
  bool batch = false;
  std::shared_ptr<void> address_slot;  // under limits.ws_connections_per_ip, while it lives
};

// The checks of RFC 6455 §4.2 and ours (role, token, connection limit); an error response
// when the upgrade is refused.
std::variant<Upgrade, wire::HttpResponse> check_upgrade(const HttpContext& ctx, const Request& req,
                                                        std::string_view path,
                                                        const std::string& remote_ip) {
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
  if (ctx.ws_by_address) {
    const std::string client = client_address(ctx, req, remote_ip);
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(client, ec);
    if (!ec) {
      ConnectionLimits::Refusal why{};
      up.address_slot = ctx.ws_by_address->admit(addr, false, why);
      if (!up.address_slot) {
        return refuse(Errc::too_many_requests, "too many connections from this address");
      }
    }
  }
  up.user = user;
  up.token_expires_ms = claims->exp_s * 1000;
  up.login_session = claims->session;
  return up;
}

constexpr std::size_t kChunkBytes = 64 * 1024;

// Sends `out`; whether the connection may serve another request. A streamed body
// (HttpResponse::stream) is read on the blocking pool a chunk at a time and written behind a
// header that declares its length.
awaitable<bool> send_response(beast::tcp_stream& stream, HttpContext& ctx, wire::HttpResponse out,
                              unsigned version, bool head, bool keep_alive) {
  if (!out.stream) {
    auto res = to_beast(std::move(out), version, head);
    res.keep_alive(keep_alive);
    auto [ec, n] = co_await http::async_write(stream, res, kTuple);
    co_return !ec && res.keep_alive();
  }
  http::response<http::empty_body> res{static_cast<http::status>(out.status), version};
  res.set(http::field::server, "imd");
  if (!out.content_type.empty()) res.set(http::field::content_type, out.content_type);
  for (auto& [k, v] : out.headers) res.set(k, v);
  res.content_length(out.stream->size());
  res.keep_alive(keep_alive);
  auto [ec, n] = co_await http::async_write(stream, res, kTuple);
  if (ec) co_return false;
  if (head) co_return res.keep_alive();
  std::vector<char> chunk(kChunkBytes);
  std::uint64_t left = out.stream->size();
  auto source = out.stream;
  while (left > 0) {
    auto got = co_await offload(ctx.blocking, [&] { return source->read(chunk); });
    // The length is promised: a source that fails or ends early ends the connection.
    if (!got || *got == 0) co_return false;
    stream.expires_after(std::chrono::seconds(60));
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(chunk.data(), *got), kTuple);
    if (wec) co_return false;
    left -= std::min<std::uint64_t>(left, *got);
  }
  co_return res.keep_alive();
}

// The request fields RestApi reads (all but the body).
wire::HttpRequest rest_request(const HttpContext& ctx, const http::request_header<>& req,
                               std::string target, const std::string& remote_ip) {
  wire::HttpRequest in;
  in.method = std::string(req.method_string());
  in.target = std::move(target);
  in.authorization = std::string(req[http::field::authorization]);
  in.content_type = std::string(req[http::field::content_type]);
  in.range = std::string(req[http::field::range]);
  in.if_none_match = std::string(req[http::field::if_none_match]);
  // Only what a session keeps of it (the header itself is bounded by the header limit).
  in.user_agent = std::string(req[http::field::user_agent].substr(0, kMaxUserAgentBytes));
  in.remote_ip = client_address(ctx, req, remote_ip);
  return in;
}

// POST /api/v1/files: the headers are checked (RestApi::begin_upload) before any of the body
// is read; a refusal is answered at once and the connection closed. The body then goes to the
// upload a chunk at a time, each written on the blocking pool, never held whole. Whether the
// connection may serve another request.
awaitable<bool> serve_upload(beast::tcp_stream& stream, beast::flat_buffer& buf,
                             http::request_parser<http::empty_body>& head, HttpContext& ctx,
                             const std::string& remote_ip) {
  const auto& h = head.get();
  const unsigned version = h.version();
  const bool keep_alive = h.keep_alive();
  const bool expects_continue = boost::iequals(h[http::field::expect], "100-continue");
  wire::HttpRequest in = rest_request(ctx, h, std::string(h.target()), remote_ip);
  std::optional<std::uint64_t> length;
  if (auto n = head.content_length()) length = *n;
  api::RestApi& rest = ctx.rest;
  auto begun = co_await offload(ctx.blocking, [&] { return rest.begin_upload(in, length); });
  if (auto* refused = std::get_if<wire::HttpResponse>(&begun)) {
    co_await http::async_write(stream, closing(std::move(*refused), version), kTuple);
    co_return false;
  }
  auto upload = std::move(std::get<std::unique_ptr<api::Upload>>(begun));
  if (expects_continue) {
    http::response<http::empty_body> cont{http::status::continue_, version};
    auto [ec, n] = co_await http::async_write(stream, cont, kTuple);
    if (ec) co_return false;
  }
  http::request_parser<http::buffer_body> body{std::move(head)};
  body.body_limit(boost::none);  // the upload enforces the file limit and the quota
  std::vector<char> chunk(kChunkBytes);
  while (!body.is_done()) {
    body.get().body().data = chunk.data();
    body.get().body().size = chunk.size();
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(stream, buf, body, kTuple);
    if (ec == http::error::need_buffer) ec = {};
    // A broken or timed-out body: the upload is dropped unfinished, which leaves nothing.
    if (ec) co_return false;
    const std::size_t got = chunk.size() - body.get().body().size;
    if (got == 0) continue;
    auto wrote = co_await offload(
        ctx.blocking, [&] { return upload->write(std::span<const char>(chunk.data(), got)); });
    if (!wrote) {
      co_await http::async_write(stream, closing(wire::error_response(wrote.error()), version),
                                 kTuple);
      co_return false;
    }
  }
  auto out = co_await offload(ctx.blocking, [&] { return upload->finish(); });
  co_return co_await send_response(stream, ctx, std::move(out), version, false, keep_alive);
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
  const auto body_limit = static_cast<std::uint64_t>(cfg.limits.max_http_body_bytes);
  for (;;) {
    // The header first: an upload's body is streamed, every other body read whole (bounded).
    http::request_parser<http::empty_body> head;
    head.body_limit(boost::none);
    head.header_limit(16 * 1024);
    stream.expires_after(std::chrono::seconds(60));
    auto [hec, hn] = co_await http::async_read_header(stream, buf, head, kTuple);
    beast::error_code ec = hec;
    std::optional<http::request_parser<http::string_body>> parser;
    if (!ec) {
      const std::string_view head_target = head.get().target();
      const std::string_view head_path = head_target.substr(0, head_target.find('?'));
      if (ctx->serve_rest && api::RestApi::is_upload(head.get().method_string(), head_path)) {
        if (!co_await serve_upload(stream, buf, head, *ctx, remote_ip)) break;
        continue;
      }
      if (head.content_length() && *head.content_length() > body_limit) {
        ec = http::error::body_limit;
      } else {
        parser.emplace(std::move(head));
        parser->body_limit(body_limit);
        auto [bec, bn] = co_await http::async_read(stream, buf, *parser, kTuple);
        ec = bec;
      }
    }
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
    Request req = parser->release();
    std::string target(req.target());
    std::string_view path = std::string_view(target).substr(0, target.find('?'));

    if (beast::websocket::is_upgrade(req)) {
      auto checked = check_upgrade(*ctx, req, path, remote_ip);
      if (auto* refused = std::get_if<wire::HttpResponse>(&checked)) {
        co_await http::async_write(stream, closing(std::move(*refused), req.version()), kTuple);
        break;
      }
      auto up = std::get<Upgrade>(std::move(checked));
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
                                                 up.batch, up.token_expires_ms, up.login_session);
      // Both places, the TCP one and the address's WebSocket one, go with the socket.
      conn->hold(std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(
          std::move(slot), std::move(up.address_slot)));
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
      wire::HttpRequest in = rest_request(*ctx, req, target, remote_ip);
      in.body = std::move(req.body());
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
    if (!co_await send_response(stream, *ctx, std::move(out), req.version(),
                                req.method() == http::verb::head, req.keep_alive())) {
      break;
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace imd::net
