#include "support/client.hpp"

#include <algorithm>
#include <atomic>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace imd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::string HttpResult::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

std::string HttpResult::error_code() const {
  if (!json.is_object()) return {};
  const auto* err = json.as_object().if_contains("error");
  if (!err || !err->is_object()) return {};
  const auto* code = err->as_object().if_contains("code");
  return code && code->is_string() ? std::string(code->as_string()) : std::string();
}

std::string HttpResult::str(const char* key) const {
  if (!json.is_object()) return {};
  const auto* v = json.as_object().if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

HttpResult Http::request(const std::string& method, const std::string& target,
                         const std::optional<std::string>& body, const std::string& token,
                         const std::string& content_type,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(resolver.resolve(host_, std::to_string(port_)));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host_);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (body) {
    req.set(http::field::content_type, content_type);
    req.body() = *body;
  }
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);
  http::read(stream, buf, parser);
  auto res = parser.release();
  HttpResult out;
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& f : res)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  boost::system::error_code ec;
  out.json = bj::parse(out.body, ec);
  if (ec) out.json = nullptr;
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

std::string Http::raw(const std::string& bytes) {
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(resolver.resolve(host_, std::to_string(port_)));
  asio::write(stream.socket(), asio::buffer(bytes));
  std::string out;
  char buf[4096];
  beast::error_code ec;
  for (;;) {
    std::size_t n = stream.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
    if (out.find("\r\n\r\n") != std::string::npos) break;
  }
  return out;
}

Account make_account(Http& http, const std::string& name) {
  static std::atomic<unsigned> counter{0};
  return make_account(
      http, name,
      "+1555" + std::to_string(::getpid() % 10000) + std::to_string(1000000 + counter++));
}

Account make_account(Http& http, const std::string& name, const std::string& phone) {
  Account a;
  a.name = name;
  a.phone = phone;
  a.password = "password-" + name;
  auto reg = http.post("/api/v1/auth/register",
                       bj::object{{"name", name}, {"phone", a.phone}, {"password", a.password}});
  if (reg.status != 201) throw std::runtime_error("register failed: " + reg.body);
  auto login =
      http.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  if (login.status != 200) throw std::runtime_error("login failed: " + login.body);
  const auto& o = login.json.as_object();
  a.access = std::string(o.at("access_token").as_string());
  a.refresh = std::string(o.at("refresh_token").as_string());
  a.id = std::string(o.at("user").as_object().at("id").as_string());
  return a;
}

namespace {
void expect(const HttpResult& r, int status, const char* what) {
  if (r.status != status) throw std::runtime_error(std::string(what) + " failed: " + r.body);
}
}  // namespace

std::string make_invite(Http& http, const Account& inviter, const std::string& space_id,
                        int max_uses) {
  auto r = http.post("/api/v1/spaces/" + space_id + "/invites", bj::object{{"max_uses", max_uses}},
                     inviter.access);
  expect(r, 201, "creating an invitation");
  return r.str("code");
}

void join_by_invite(Http& http, const Account& inviter, const std::string& space_id,
                    const Account& member) {
  const std::string code = make_invite(http, inviter, space_id, 1);
  expect(http.post("/api/v1/invites/" + code + "/accept", bj::object{}, member.access), 200,
         "accepting an invitation");
}

SpaceAndChannel make_space_channel(Http& http, const Account& owner,
                                   const std::vector<const Account*>& members) {
  SpaceAndChannel sc;
  auto space = http.post("/api/v1/spaces", bj::object{{"name", "team"}}, owner.access);
  expect(space, 201, "creating a space");
  sc.space_id = space.str("id");
  auto ch = http.post("/api/v1/spaces/" + sc.space_id + "/channels",
                      bj::object{{"name", "general"}}, owner.access);
  expect(ch, 201, "creating a channel");
  sc.channel_id = ch.str("id");
  const std::string code = make_invite(http, owner, sc.space_id,
                                       static_cast<int>(std::max<std::size_t>(members.size(), 1)));
  for (const Account* m : members) {
    expect(http.post("/api/v1/invites/" + code + "/accept", bj::object{}, m->access), 200,
           "joining the space");
    expect(http.post("/api/v1/channels/" + sc.channel_id + "/join", bj::object{}, m->access), 200,
           "joining the channel");
  }
  return sc;
}

struct Ws::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<bj::object> frames;
  bool closed = false;
  std::size_t batches = 0;
  beast::flat_buffer buf;
  std::deque<std::pair<std::string, bool>> out;  // (payload, binary)
  bool writing = false;

  void read() {
    ws.async_read(buf, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        std::lock_guard lock(mu);
        closed = true;
        cv.notify_all();
        return;
      }
      std::string text = beast::buffers_to_string(buf.data());
      buf.consume(buf.size());
      boost::system::error_code pec;
      bj::value v = bj::parse(text, pec);
      {
        std::lock_guard lock(mu);
        if (pec || !v.is_object()) {
          frames.push_back(bj::object{{"op", "__unparsable__"}, {"text", text}});
        } else if (const auto* op = v.as_object().if_contains("op");
                   op && op->is_string() && op->as_string() == "batch") {
          ++batches;
          for (auto& f : v.as_object()["frames"].as_array()) frames.push_back(f.as_object());
        } else {
          frames.push_back(std::move(v.as_object()));
        }
      }
      cv.notify_all();
      read();
    });
  }

  void write_next() {
    if (out.empty()) {
      writing = false;
      return;
    }
    writing = true;
    ws.binary(out.front().second);
    ws.async_write(asio::buffer(out.front().first), [this](beast::error_code ec, std::size_t) {
      out.pop_front();
      if (ec) {
        out.clear();
        writing = false;
        return;
      }
      write_next();
    });
  }

  void enqueue(std::string payload, bool binary) {
    asio::post(io, [this, p = std::move(payload), binary]() mutable {
      out.emplace_back(std::move(p), binary);
      if (!writing) write_next();
    });
  }
};

Ws::Ws(const std::string& host, unsigned short port, const std::string& token, bool batch)
    : impl_(std::make_unique<Impl>()) {
  tcp::resolver resolver(impl_->io);
  auto& lowest = beast::get_lowest_layer(impl_->ws);
  lowest.expires_after(std::chrono::seconds(10));
  lowest.connect(resolver.resolve(host, std::to_string(port)));
  impl_->ws.read_message_max(64 * 1024 * 1024);
  impl_->ws.handshake(host + ":" + std::to_string(port),
                      "/ws?token=" + token + (batch ? "&batch=1" : ""));
  lowest.expires_never();
  impl_->read();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

Ws::~Ws() {
  close();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Ws::send(const bj::object& frame) {
  impl_->enqueue(bj::serialize(frame), false);
}
void Ws::send_text(const std::string& text) {
  impl_->enqueue(text, false);
}
void Ws::send_binary(const std::string& bytes) {
  impl_->enqueue(bytes, true);
}

std::optional<bj::object> Ws::recv(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [&] { return !impl_->frames.empty() || impl_->closed; });
  if (impl_->frames.empty()) return std::nullopt;
  auto f = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return f;
}

std::optional<bj::object> Ws::recv_op(const std::string& op, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto f = recv(left);
    if (!f) return std::nullopt;
    if (str(*f, "op") == op) return f;
  }
}

std::vector<bj::object> Ws::recv_until(const std::function<bool(const bj::object&)>& pred,
                                       std::chrono::milliseconds timeout) {
  std::vector<bj::object> got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return got;
    auto f = recv(left);
    if (!f) return got;
    got.push_back(*f);
    if (pred(got.back())) return got;
  }
}

bool Ws::closed() const {
  std::lock_guard lock(impl_->mu);
  return impl_->closed;
}

bool Ws::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->closed; });
}

std::size_t Ws::batches() const {
  std::lock_guard lock(impl_->mu);
  return impl_->batches;
}

std::size_t Ws::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->frames.size();
}

void Ws::close() {
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    beast::get_lowest_layer(impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(impl_->ws).socket().close(ec);
  });
}

std::string str(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::uint64_t num(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64()) return static_cast<std::uint64_t>(v->as_int64());
  if (v->is_string()) return std::stoull(std::string(v->as_string()));
  return 0;
}

bj::object send_dm(const std::string& cid, const std::string& to, const std::string& body) {
  return {{"op", "send"}, {"cid", cid}, {"to", to}, {"type", "text"}, {"body", body}};
}

bj::object send_channel(const std::string& cid, const std::string& channel,
                        const std::string& body) {
  return {{"op", "send"}, {"cid", cid}, {"channel", channel}, {"type", "text"}, {"body", body}};
}

}  // namespace imd::test
