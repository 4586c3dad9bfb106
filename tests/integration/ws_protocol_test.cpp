// The WebSocket wire protocol of /ws (RFC 6455), spoken byte by byte over a plain TCP socket
// against the real binary: the upgrade's checks, fragmented messages with control frames
// between the fragments, pings, the closing handshake, and hostile frames (each closes the
// connection with its close code, the server lives on).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <random>
#include <thread>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

// One server frame as read off the wire.
struct WireFrame {
  int opcode = -1;  // -1: the connection ended (or timed out) before a whole frame arrived
  bool fin = false;
  std::string payload;
  std::uint16_t close_code() const {
    return payload.size() < 2
               ? 0
               : static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                            static_cast<unsigned char>(payload[1]));
  }
};

// A blocking client that writes exactly the bytes it is told to.
class RawSocket {
 public:
  explicit RawSocket(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect failed");
    }
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawSocket() { ::close(fd_); }

  void write(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server closed: the reads tell
      off += static_cast<std::size_t>(n);
    }
  }

  // The HTTP response head (through the blank line); what follows stays buffered.
  std::string read_head() {
    for (;;) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end + 4);
        buf_.erase(0, end + 4);
        return head;
      }
      if (!fill()) return buf_;
    }
  }

  WireFrame read_frame() {
    WireFrame f;
    if (!need(2)) return f;
    auto b0 = static_cast<unsigned char>(buf_[0]), b1 = static_cast<unsigned char>(buf_[1]);
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
    std::uint64_t len = b1 & 0x7F;
    std::size_t pos = 2;
    if (len == 126) {
      if (!need(4)) return f;
      len = (static_cast<unsigned char>(buf_[2]) << 8) | static_cast<unsigned char>(buf_[3]);
      pos = 4;
    } else if (len == 127) {
      if (!need(10)) return f;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf_[2 + i]);
      pos = 10;
    }
    if (!need(pos + len)) return f;
    f.opcode = b0 & 0x0F;
    f.fin = (b0 & 0x80) != 0;
    f.payload = buf_.substr(pos, len);
    buf_.erase(0, pos + len);
    return f;
  }

  // Reads frames until a text frame whose payload contains `needle` (or the end).
  WireFrame read_text_with(const std::string& needle) {
    for (;;) {
      auto f = read_frame();
      if (f.opcode == -1 || (f.opcode == 1 && f.payload.find(needle) != std::string::npos)) {
        return f;
      }
    }
  }

  // True when the server closed the TCP connection (after anything still buffered).
  bool ends() {
    while (fill()) buf_.clear();
    return eof_;
  }

 private:
  bool need(std::size_t n) {
    while (buf_.size() < n)
      if (!fill()) return false;
    return true;
  }
  bool fill() {
    char tmp[4096];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// A client frame, masked as the RFC requires unless `masked` is false.
std::string frame(std::uint8_t first, const std::string& payload, bool masked = true) {
  static std::mt19937 rng(42);
  std::string out(1, static_cast<char>(first));
  const char m = masked ? char(0x80) : char(0);
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(m | static_cast<char>(payload.size())));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    out.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
  }
  if (!masked) return out + payload;
  char key[4];
  for (auto& k : key) k = static_cast<char>(rng());
  out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(payload[i] ^ key[i % 4]);
  return out;
}

constexpr std::uint8_t kText = 0x81, kBinary = 0x82, kClose = 0x88, kPing = 0x89;

std::string close_payload(std::uint16_t code) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

class WsProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--limits-max-message-bytes", "1000", "--limits-max-frame-bytes", "4096"});
    server_->start();
    Http h(server_->host(), server_->port());
    account_ = make_account(h, "wire");
  }

  std::string upgrade_request(const std::string& extra_headers,
                              const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==") {
    return "GET /ws?token=" + account_.access +
           " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: " +
           key + "\r\n" + extra_headers + "\r\n";
  }

  // An upgraded connection that has received hello and synced.
  std::unique_ptr<RawSocket> open() {
    auto s = std::make_unique<RawSocket>(server_->port());
    s->write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
    auto head = s->read_head();
    EXPECT_NE(head.find("101"), std::string::npos) << head;
    EXPECT_EQ(s->read_text_with("\"synced\"").opcode, 1);
    return s;
  }

  void expect_server_healthy() {
    Http h(server_->host(), server_->port());
    EXPECT_EQ(h.get("/healthz").status, 200);
    auto s = open();  // and still upgrading
  }

  std::unique_ptr<ServerProcess> server_;
  Account account_;
};

TEST_F(WsProtocol, UpgradeAnswersTheRfcAcceptKey) {
  RawSocket s(server_->port());
  s.write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
  auto head = s.read_head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101", 0), 0u) << head;
  // RFC 6455 §1.3: this key's accept value.
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos)
      << head;
  EXPECT_NE(s.read_text_with("\"hello\"").opcode, -1);
}

TEST_F(WsProtocol, UpgradeWithAWrongVersionOrKeyIsRefused) {
  {
    RawSocket s(server_->port());
    s.write(upgrade_request("Sec-WebSocket-Version: 8\r\n"));
    auto head = s.read_head();
    EXPECT_EQ(head.rfind("HTTP/1.1 426", 0), 0u) << head;
    EXPECT_NE(head.find("Sec-WebSocket-Version: 13"), std::string::npos) << head;
  }
  {
    RawSocket s(server_->port());
    s.write(upgrade_request("Sec-WebSocket-Version: 13\r\n", "short"));
    EXPECT_EQ(s.read_head().rfind("HTTP/1.1 400", 0), 0u);
  }
  expect_server_healthy();
}

// Refusals go through the one HTTP error mapping: 401 says how to authenticate, 503 when to
// come back.
TEST_F(WsProtocol, UpgradeRefusalsCarryTheHeadersOfTheirStatus) {
  {
    RawSocket s(server_->port());
    s.write(
        "GET /ws?token=forged HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n");
    auto head = s.read_head();
    EXPECT_EQ(head.rfind("HTTP/1.1 401", 0), 0u) << head;
    EXPECT_NE(head.find("WWW-Authenticate: Bearer"), std::string::npos) << head;
  }
  server_ =
      std::make_unique<ServerProcess>(std::vector<std::string>{"--limits-max-connections", "1"});
  server_->start();
  Http h(server_->host(), server_->port());
  account_ = make_account(h, "solo");
  auto first = open();
  RawSocket second(server_->port());
  second.write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
  auto head = second.read_head();
  EXPECT_EQ(head.rfind("HTTP/1.1 503", 0), 0u) << head;
  EXPECT_NE(head.find("Retry-After: 1"), std::string::npos) << head;
}

// One user cannot hold every connection slot: past limits.ws_connections_per_user the upgrade
// answers 429 with Retry-After, and a slot freed by a close is taken again.
TEST_F(WsProtocol, OneUserCannotTakeEverySlot) {
  server_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{"--limits-ws-connections-per-user", "2"});
  server_->start();
  Http h(server_->host(), server_->port());
  account_ = make_account(h, "greedy");
  auto first = open();
  auto second = open();
  {
    RawSocket third(server_->port());
    third.write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
    auto head = third.read_head();
    EXPECT_EQ(head.rfind("HTTP/1.1 429", 0), 0u) << head;
    EXPECT_NE(head.find("Retry-After: 1"), std::string::npos) << head;
  }
  auto other = make_account(h, "someone else");
  std::swap(account_, other);
  auto theirs = open();  // another user is not affected
  std::swap(account_, other);
  first->write(frame(kClose, close_payload(1000)));
  EXPECT_TRUE(first->ends());
  first.reset();
  // The slot is free once the server has detached the connection.
  bool reopened = false;
  for (int i = 0; i < 100 && !reopened; ++i) {
    RawSocket again(server_->port());
    again.write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
    reopened = again.read_head().rfind("HTTP/1.1 101", 0) == 0;
    if (!reopened) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(reopened);
}

// SIGTERM: every WebSocket gets a close frame with 1001 (going away) and a reconnect hint, and
// the process exits with status 0 once the clients answered it.
TEST_F(WsProtocol, ShutdownClosesEveryWebSocketWithGoingAway) {
  auto a = open();
  auto b = open();
  auto started = std::chrono::steady_clock::now();
  server_->signal(SIGTERM);
  for (auto* s : {a.get(), b.get()}) {
    WireFrame f;
    do {
      f = s->read_frame();
    } while (f.opcode == 1);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_EQ(f.close_code(), 1001);
    EXPECT_NE(f.payload.find("reconnect"), std::string::npos) << f.payload;
    s->write(frame(kClose, close_payload(1001)));  // the client's half of the handshake
    EXPECT_TRUE(s->ends());
  }
  a.reset();  // the clients close their sockets: nothing is left to wait for
  b.reset();
  int status = server_->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);  // well inside the 5 s timeout
}

// With shutdown_ready_grace_ms, SIGTERM fails /readyz first while the process still serves
// (new requests, new WebSockets), so a balancer's probe takes it out of rotation; then the
// drain runs as without it.
TEST_F(WsProtocol, ReadinessFailsBeforeTheListenerClosesDuringTheReadyGrace) {
  server_ = std::make_unique<ServerProcess>(
      std::vector<std::string>{"--shutdown-ready-grace-ms", "5000"});
  server_->start();
  Http h(server_->host(), server_->port());
  account_ = make_account(h, "leaving");
  auto before = open();
  EXPECT_EQ(h.get("/readyz").status, 200);
  const auto signalled = std::chrono::steady_clock::now();
  server_->signal(SIGTERM);
  HttpResult ready;
  for (int attempt = 0; attempt < 100; ++attempt) {
    ready = h.get("/readyz");
    if (ready.status == 503) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("draining"), std::string::npos) << ready.body;
  // Still serving inside the grace.
  if (std::chrono::steady_clock::now() - signalled < 4s) {
    EXPECT_EQ(h.get("/healthz").status, 200);
    auto late = open();
    EXPECT_TRUE(late != nullptr);
  }
  // Then the drain: the WebSocket gets its 1001, the process exits 0.
  WireFrame f;
  do {
    f = before->read_frame();
  } while (f.opcode == 1);
  EXPECT_EQ(f.close_code(), 1001);
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, 4s);  // not before the grace ended
  before->write(frame(kClose, close_payload(1001)));
  before.reset();
  int status = server_->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A client that never answers the close keeps a drain waiting up to shutdown_timeout_s; a
// second signal ends it at once.
TEST_F(WsProtocol, ASecondSignalDuringTheDrainExitsAtOnce) {
  server_ = std::make_unique<ServerProcess>(std::vector<std::string>{"--shutdown-timeout-s", "60"});
  server_->start();
  Http h(server_->host(), server_->port());
  account_ = make_account(h, "silent");
  auto s = open();
  server_->signal(SIGTERM);
  WireFrame f;
  do {
    f = s->read_frame();
  } while (f.opcode == 1);
  ASSERT_EQ(f.close_code(), 1001);  // draining, waiting for this client
  auto second = std::chrono::steady_clock::now();
  server_->signal(SIGTERM);
  int status = server_->wait();
  EXPECT_LT(std::chrono::steady_clock::now() - second, 3s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
}

TEST_F(WsProtocol, FramesSentRightBehindTheRequestAreRead) {
  RawSocket s(server_->port());
  // The request and a ping op in one write: the frame arrives with the request.
  s.write(upgrade_request("Sec-WebSocket-Version: 13\r\n") +
          frame(kText, R"({"op":"ping","t":"early"})"));
  EXPECT_NE(s.read_head().find("101"), std::string::npos);
  auto pong = s.read_text_with("\"pong\"");
  EXPECT_NE(pong.payload.find("early"), std::string::npos) << pong.payload;
}

TEST_F(WsProtocol, FragmentedMessageWithControlFramesBetweenItsFragments) {
  auto s = open();
  // {"op":"ping","t":"frag"} in three fragments, a ping control frame between them.
  s->write(frame(0x01, R"({"op":"pi)") + frame(kPing, "beat") + frame(0x00, R"(ng","t":)") +
           frame(0x80, R"("frag"})"));
  auto control = s->read_frame();
  EXPECT_EQ(control.opcode, 0xA) << "a pong control frame first";
  EXPECT_EQ(control.payload, "beat");
  auto pong = s->read_text_with("\"pong\"");
  EXPECT_NE(pong.payload.find("frag"), std::string::npos) << pong.payload;
}

TEST_F(WsProtocol, ManyFramesInOneWriteAreAllHandledInOrder) {
  auto s = open();
  std::string burst;
  for (int i = 0; i < 50; ++i)
    burst += frame(kText, R"({"op":"ping","t":")" + std::to_string(i) + "\"}");
  s->write(burst);
  for (int i = 0; i < 50; ++i) {
    auto f = s->read_text_with("\"pong\"");
    ASSERT_NE(f.opcode, -1) << i;
    EXPECT_NE(f.payload.find("\"t\":\"" + std::to_string(i) + "\""), std::string::npos)
        << f.payload;
  }
}

// Unsolicited pongs and empty continuation fragments are not free: a flood of either is
// closed with 1008 like a flood of messages (they used to skip the limit and keep the idle
// timer alive).
TEST_F(WsProtocol, PongAndFragmentFloodsAreRateLimited) {
  std::string pongs;
  for (int i = 0; i < 400; ++i) pongs += frame(0x8A, "");   // unsolicited pongs
  std::string fragments = frame(0x01, R"({"op":"ping",)");  // a message that never ends
  for (int i = 0; i < 400; ++i) fragments += frame(0x00, "");
  for (const auto& flood : {pongs, fragments}) {
    auto s = open();
    s->write(flood);
    WireFrame f;
    do {
      f = s->read_frame();
    } while (f.opcode == 1);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_EQ(f.close_code(), 1008);
  }
  expect_server_healthy();
}

// The next frame that is not a text frame (a close, or the end), waiting up to `limit`.
WireFrame next_control(RawSocket& s, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  WireFrame f;
  do {
    f = s.read_frame();  // -1 after the socket's 5 s receive timeout: keep waiting
  } while ((f.opcode == 1 || f.opcode == -1) && std::chrono::steady_clock::now() < deadline);
  return f;
}

// A WebSocket ends with 4001 when its access token does, unless the client sent a fresh token
// for the same user with `auth` (answered with the new end); then it lives until that one ends.
TEST_F(WsProtocol, AConnectionEndsWithItsTokenUnlessRenewedInBand) {
  server_ = std::make_unique<ServerProcess>(std::vector<std::string>{"--auth-access-ttl-s", "10"});
  server_->start();
  Http h(server_->host(), server_->port());
  account_ = make_account(h, "expiring");
  auto plain = open();
  auto renewed = open();
  std::this_thread::sleep_for(2s);  // the next token ends at least 2 s later
  auto login = h.post("/api/v1/auth/login",
                      bj::object{{"phone", account_.phone}, {"password", account_.password}});
  ASSERT_EQ(login.status, 200);
  renewed->write(frame(kText, R"({"op":"auth","token":")" + login.str("access_token") + "\"}"));
  auto answer = renewed->read_text_with("\"auth\"");
  EXPECT_NE(answer.payload.find("expires_at"), std::string::npos) << answer.payload;
  // Someone else's token is refused, and the connection stays.
  Http h2(server_->host(), server_->port());
  Account other = make_account(h2, "other");
  renewed->write(frame(kText, R"({"op":"auth","token":")" + other.access + "\"}"));
  EXPECT_NE(renewed->read_text_with("forbidden").opcode, -1);

  auto f = next_control(*plain, 20s);
  ASSERT_EQ(f.opcode, 0x8);
  EXPECT_EQ(f.close_code(), 4001);
  EXPECT_NE(f.payload.find("token expired"), std::string::npos) << f.payload;
  // The renewed one outlives the first token...
  renewed->write(frame(kText, R"({"op":"ping","t":"alive"})"));
  EXPECT_NE(renewed->read_text_with("alive").opcode, -1);
  // ... and ends with the second.
  f = next_control(*renewed, 20s);
  ASSERT_EQ(f.opcode, 0x8);
  EXPECT_EQ(f.close_code(), 4001);
}

// A password change ends every session of the user: their WebSockets close with 4003, and the
// access token they were opened with no longer opens one; the new session's token does.
// A browser opens /ws with a one-time ticket instead of its access token (URLs end up in
// logs): the ticket opens one connection, as the ticket's user; used again, or given as a
// bearer token, it is refused.
TEST_F(WsProtocol, AOneTimeTicketOpensOneConnection) {
  Http h(server_->host(), server_->port());
  auto t = h.post("/api/v1/ws/ticket", bj::object{}, account_.access);
  ASSERT_EQ(t.status, 201) << t.body;
  const std::string ticket = t.str("ticket");
  EXPECT_EQ(t.json.as_object().at("expires_in").to_number<int>(), 30);
  EXPECT_EQ(h.post("/api/v1/ws/ticket", bj::object{}).status, 401);
  EXPECT_EQ(h.get("/api/v1/users/me", ticket).status, 401);

  auto upgrade = [&](const std::string& query) {
    auto s = std::make_unique<RawSocket>(server_->port());
    s->write("GET /ws?" + query +
             " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    return std::pair{s->read_head(), std::move(s)};
  };
  auto [head, ws] = upgrade("ticket=" + ticket);
  ASSERT_EQ(head.rfind("HTTP/1.1 101", 0), 0u) << head;
  EXPECT_NE(ws->read_text_with("\"hello\"").payload.find(account_.id), std::string::npos);
  auto [again, ws2] = upgrade("ticket=" + ticket);
  EXPECT_EQ(again.rfind("HTTP/1.1 401", 0), 0u) << again;
  auto [forged, ws3] = upgrade("ticket=" + account_.access);
  EXPECT_EQ(forged.rfind("HTTP/1.1 401", 0), 0u) << forged;
}

TEST_F(WsProtocol, APasswordChangeClosesTheUsersWebSocketsWith4003) {
  auto a = open();
  auto b = open();
  Http h(server_->host(), server_->port());
  auto changed = h.post(
      "/api/v1/users/me/password",
      bj::object{{"old_password", account_.password}, {"new_password", "tram-lines-at-dusk"}},
      account_.access);
  ASSERT_EQ(changed.status, 200) << changed.body;
  for (auto* s : {a.get(), b.get()}) {
    auto f = next_control(*s, 10s);
    ASSERT_EQ(f.opcode, 0x8);
    EXPECT_EQ(f.close_code(), 4003);
  }
  RawSocket again(server_->port());
  again.write(upgrade_request("Sec-WebSocket-Version: 13\r\n"));
  EXPECT_EQ(again.read_head().rfind("HTTP/1.1 401", 0), 0u);
  account_.access = changed.str("access_token");
  auto fresh = open();
}

// Sessions (GET/DELETE /users/me/sessions): each login is one, listed with its client and the
// caller's marked. Ending one refuses its refresh and access tokens and closes its WebSockets
// with 4003, while the user's other session, its tokens and its WebSocket go on. Another
// user's session (or one already ended) is not found.
TEST_F(WsProtocol, EndingOneSessionEndsItsTokensAndWebSocketsOnly) {
  Http h(server_->host(), server_->port());
  auto login = h.request(
      "POST", "/api/v1/auth/login",
      bj::serialize(bj::object{{"phone", account_.phone}, {"password", account_.password}}), {},
      "application/json", {{"User-Agent", "PhoneApp/2.0 \xc3\xa9"}});
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string phone_access = login.str("access_token");
  const std::string phone_refresh = login.str("refresh_token");

  auto list = h.get("/api/v1/users/me/sessions", account_.access);
  ASSERT_EQ(list.status, 200) << list.body;
  const auto& sessions = list.json.as_object().at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 2u) << list.body;
  std::string mine, phone;
  for (const auto& v : sessions) {
    const auto& o = v.as_object();
    EXPECT_EQ(o.at("ip").as_string(), "127.0.0.1");
    EXPECT_GT(o.at("created_at").to_number<std::int64_t>(), 0);
    EXPECT_GE(o.at("last_used_at").to_number<std::int64_t>(),
              o.at("created_at").to_number<std::int64_t>());
    if (o.at("current").as_bool()) {
      mine = o.at("id").as_string();
    } else {
      phone = o.at("id").as_string();
      EXPECT_EQ(o.at("user_agent").as_string(), "PhoneApp/2.0 ??");
    }
  }
  ASSERT_FALSE(mine.empty()) << list.body;
  ASSERT_FALSE(phone.empty()) << list.body;
  auto seen_by_phone = h.get("/api/v1/users/me/sessions", phone_access);
  ASSERT_EQ(seen_by_phone.status, 200);
  for (const auto& v : seen_by_phone.json.as_object().at("sessions").as_array()) {
    EXPECT_EQ(v.as_object().at("current").as_bool(), v.as_object().at("id").as_string() == phone);
  }

  auto laptop_ws = open();  // account_.access: the first session's
  const std::string laptop_access = account_.access;
  account_.access = phone_access;
  auto phone_ws = open();
  account_.access = laptop_access;

  Account other = make_account(h, "stranger");
  EXPECT_EQ(
      h.request("DELETE", "/api/v1/users/me/sessions/" + phone, std::nullopt, other.access).status,
      404);
  EXPECT_EQ(
      h.request("DELETE", "/api/v1/users/me/sessions/12345", std::nullopt, account_.access).status,
      404);
  EXPECT_EQ(h.get("/api/v1/users/me", phone_access).status, 200);  // untouched by those

  auto ended =
      h.request("DELETE", "/api/v1/users/me/sessions/" + phone, std::nullopt, account_.access);
  EXPECT_EQ(ended.status, 204) << ended.body;
  auto f = next_control(*phone_ws, 10s);
  ASSERT_EQ(f.opcode, 0x8);
  EXPECT_EQ(f.close_code(), 4003);
  EXPECT_EQ(h.get("/api/v1/users/me", phone_access).status, 401);
  EXPECT_EQ(h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", phone_refresh}}).status,
            401);
  EXPECT_EQ(h.request("DELETE", "/api/v1/users/me/sessions/" + phone, std::nullopt, account_.access)
                .status,
            404);

  // The other session goes on: its token, its refresh, its WebSocket.
  EXPECT_EQ(h.get("/api/v1/users/me", account_.access).status, 200);
  auto fresh = h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", account_.refresh}});
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  laptop_ws->write(frame(kText, R"({"op":"ping","t":"alive"})"));
  EXPECT_NE(laptop_ws->read_text_with("alive").opcode, -1);
  list = h.get("/api/v1/users/me/sessions", fresh.str("access_token"));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json.as_object().at("sessions").as_array().size(), 1u) << list.body;
  EXPECT_EQ(list.json.as_object().at("sessions").as_array()[0].as_object().at("id").as_string(),
            mine);
}

TEST_F(WsProtocol, PingFloodIsRateLimitedLikeMessages) {
  auto s = open();
  // The default limit: a burst of 200, 100/s; 50 refused in a row close the connection.
  std::string flood;
  for (int i = 0; i < 400; ++i) flood += frame(kPing, "p");
  s->write(flood);
  int pongs = 0, errors = 0;
  WireFrame f;
  for (;;) {
    f = s->read_frame();
    if (f.opcode == 0xA) ++pongs;
    if (f.opcode == 1 && f.payload.find("too_many_requests") != std::string::npos) ++errors;
    if (f.opcode == 0x8 || f.opcode == -1) break;
  }
  EXPECT_EQ(f.opcode, 0x8);
  EXPECT_EQ(f.close_code(), 1008);
  EXPECT_GE(pongs, 200);
  EXPECT_LE(pongs, 260);  // the burst, plus what refills while the flood is read
  EXPECT_GE(errors, 50);  // more if a token refilled between them
  EXPECT_TRUE(s->ends());
  expect_server_healthy();
}

TEST_F(WsProtocol, ClientCloseIsEchoedThenTheConnectionEnds) {
  auto s = open();
  s->write(frame(kClose, close_payload(1000) + "bye"));
  auto f = s->read_frame();
  EXPECT_EQ(f.opcode, 0x8);
  EXPECT_EQ(f.close_code(), 1000);
  EXPECT_TRUE(s->ends());
}

TEST_F(WsProtocol, HostileFramesCloseWithTheirCode) {
  struct Case {
    const char* what;
    std::string bytes;
    std::uint16_t code;
  };
  const std::vector<Case> cases = {
      {"unmasked", frame(kText, R"({"op":"ping"})", false), 1002},
      {"reserved bits", frame(0xC1, R"({"op":"ping"})"), 1002},
      {"unknown opcode", frame(0x83, "x"), 1002},
      {"continuation without a message", frame(0x80, "x"), 1002},
      {"new message inside a fragmented one", frame(0x01, "{") + frame(kText, "{}"), 1002},
      {"fragmented ping", frame(0x09, "x"), 1002},
      {"text that is not UTF-8", frame(kText, "{\"op\":\"ping\",\"t\":\"\xC0\xAF\"}"), 1007},
      {"over the frame limit", frame(kText, std::string(5000, ' ')), 1009},
      {"fragments over the limit",
       frame(0x01, std::string(3000, ' ')) + frame(0x80, std::string(3000, ' ')), 1009},
      {"close with a reserved code", frame(kClose, close_payload(1005)), 1002},
  };
  for (const auto& c : cases) {
    auto s = open();
    s->write(c.bytes);
    WireFrame f;
    do {
      f = s->read_frame();
    } while (f.opcode == 1);  // error frames may come first
    EXPECT_EQ(f.opcode, 0x8) << c.what;
    EXPECT_EQ(f.close_code(), c.code) << c.what;
    EXPECT_TRUE(s->ends()) << c.what;
  }
  // A binary message is refused with an error frame, and the connection stays.
  auto s = open();
  s->write(frame(kBinary, "\x01\x02"));
  auto err = s->read_text_with("\"error\"");
  EXPECT_NE(err.payload.find("binary frames are not supported"), std::string::npos);
  s->write(frame(kText, R"({"op":"ping","t":"still"})"));
  EXPECT_NE(s->read_text_with("\"pong\"").payload.find("still"), std::string::npos);
  expect_server_healthy();
}

}  // namespace
}  // namespace imd::test
