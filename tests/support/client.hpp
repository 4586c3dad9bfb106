// Real HTTP and WebSocket clients for black-box tests (Boost.Beast).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/json.hpp>

namespace imd::test {

namespace bj = boost::json;

struct HttpResult {
  int status = 0;
  std::string body;
  bj::value json;  // null when the body is not JSON
  std::string header(const std::string& name) const;
  std::vector<std::pair<std::string, std::string>> headers;
  // Shorthands for the common shapes.
  std::string error_code() const;
  std::string str(const char* key) const;
};

class Http {
 public:
  Http(std::string host, unsigned short port) : host_(std::move(host)), port_(port) {}
  HttpResult request(const std::string& method, const std::string& target,
                     const std::optional<std::string>& body = std::nullopt,
                     const std::string& token = {},
                     const std::string& content_type = "application/json",
                     const std::vector<std::pair<std::string, std::string>>& headers = {});
  HttpResult get(const std::string& target, const std::string& token = {}) {
    return request("GET", target, std::nullopt, token);
  }
  HttpResult post(const std::string& target, const bj::value& body, const std::string& token = {}) {
    return request("POST", target, bj::serialize(body), token);
  }
  HttpResult patch(const std::string& target, const bj::value& body,
                   const std::string& token = {}) {
    return request("PATCH", target, bj::serialize(body), token);
  }
  // Sends raw bytes and returns the raw response (for malformed-request tests).
  std::string raw(const std::string& bytes);

 private:
  std::string host_;
  unsigned short port_;
};

struct Account {
  std::string id;
  std::string name;
  std::string phone;
  std::string password;
  std::string access;
  std::string refresh;
};

// Registers and logs in a fresh account with a unique phone number.
Account make_account(Http& http, const std::string& name);
// The same with a chosen phone (an admin that auth.admins names).
Account make_account(Http& http, const std::string& name, const std::string& phone);

// An invitation code to `space_id` made by `inviter` (an admin or the owner); throws
// std::runtime_error when it fails.
std::string make_invite(Http& http, const Account& inviter, const std::string& space_id,
                        int max_uses = 100);
// `member` joins the (private) space through an invitation `inviter` makes for them.
void join_by_invite(Http& http, const Account& inviter, const std::string& space_id,
                    const Account& member);

// A space owned by `owner` with one channel that every account in `members` joined, the space
// through an invitation (throws std::runtime_error when a step fails).
struct SpaceAndChannel {
  std::string space_id;
  std::string channel_id;
};
SpaceAndChannel make_space_channel(Http& http, const Account& owner,
                                   const std::vector<const Account*>& members);

// A WebSocket client with its own I/O thread. Frames are JSON objects.
class Ws {
 public:
  // Connects to /ws?token=...; throws on a failed handshake. With `batch`, the server may
  // combine frames into {"op":"batch","frames":[...]}; recv() unwraps them transparently
  // (batches() counts how many arrived).
  Ws(const std::string& host, unsigned short port, const std::string& token, bool batch = false);
  ~Ws();
  Ws(const Ws&) = delete;
  Ws& operator=(const Ws&) = delete;

  void send(const bj::object& frame);
  void send_text(const std::string& text);
  void send_binary(const std::string& bytes);

  // The next frame, or nullopt after `timeout` (or when the connection closed).
  std::optional<bj::object> recv(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Skips frames until one has op == `op` (others are kept for later recv calls? no: dropped).
  std::optional<bj::object> recv_op(const std::string& op,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Collects frames until pred(frame) is true for one of them; returns all collected.
  std::vector<bj::object> recv_until(const std::function<bool(const bj::object&)>& pred,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool closed() const;
  void close();
  // Waits until the server closed the connection.
  bool wait_closed(std::chrono::milliseconds timeout);
  std::size_t pending() const;
  std::size_t batches() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Frame helpers.
std::string str(const bj::object& o, const char* key);
std::uint64_t num(const bj::object& o, const char* key);
bj::object send_dm(const std::string& cid, const std::string& to, const std::string& body);
bj::object send_channel(const std::string& cid, const std::string& channel,
                        const std::string& body);

}  // namespace imd::test
