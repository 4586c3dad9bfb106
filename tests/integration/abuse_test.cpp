// Abuse limits against the real binary (issue "Teams can trust it", part 6): a login flood
// does not hold the threads other requests need, the hashing pool answers "busy" past its cap,
// the TCP connection cap closes what is over it and lets clients in again as sockets close,
// failed logins slow down per account, and a password change or "log out everywhere" ends
// the other sessions. Numbers are printed, not asserted (a loaded machine makes timings
// noisy): the assertions are about order and answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "support/client.hpp"
#include "support/commands.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// With one hashing thread and the real Argon2id cost, 24 wrong logins at once keep the
// hashing pool busy for seconds; /healthz and an authenticated read are answered while the
// flood is still running, because hashing has its own pool.
TEST(Abuse, ALoginFloodDoesNotHoldOtherRequests) {
  // The probes below are REST requests from one address: the per-IP REST limit is lifted.
  ServerProcess server({"--auth-password-hash", "interactive", "--auth-hash-threads", "1",
                        "--limits-auth-rate-per-min", "1000000", "--blocking-threads", "2",
                        "--limits-http-rate-per-s", "1000000", "--limits-http-burst", "1000000"});
  server.start();
  if (server.external()) GTEST_SKIP() << "needs its own server flags";
  Http h(server.host(), server.port());
  Account a = make_account(h, "floodvictim");

  constexpr int kLogins = 24;
  std::atomic<int> done{0};
  std::atomic<int> started{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < kLogins; ++i) {
    flood.emplace_back([&, i] {
      Http fh(server.host(), server.port());
      ++started;
      // Unknown accounts (each its own): no per-account brake, a full dummy hash each.
      auto r =
          fh.post("/api/v1/auth/login", bj::object{{"phone", "+1999000" + std::to_string(1000 + i)},
                                                   {"password", "wrong-guess-1"}});
      EXPECT_TRUE(r.status == 401 || r.status == 503) << r.status << " " << r.body;
      ++done;
    });
  }
  while (started.load() < kLogins) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the flood is queued

  auto t0 = Clock::now();
  auto health = h.get("/healthz");
  const double health_ms = ms_since(t0);
  const int done_at_health = done.load();
  t0 = Clock::now();
  auto me = h.get("/api/v1/users/me", a.access);
  const double me_ms = ms_since(t0);
  const int done_at_me = done.load();
  // Then as many probes as fit while the flood lasts: their latency distribution (printed,
  // docs/benchmarks.md "Abuse"; a loaded machine makes a bound here flaky).
  std::vector<double> health_samples{health_ms}, me_samples{me_ms};
  while (done.load() < kLogins && health_samples.size() < 2000) {
    t0 = Clock::now();
    EXPECT_EQ(h.get("/healthz").status, 200);
    health_samples.push_back(ms_since(t0));
    t0 = Clock::now();
    EXPECT_EQ(h.get("/api/v1/users/me", a.access).status, 200);
    me_samples.push_back(ms_since(t0));
  }
  for (auto& t : flood) t.join();

  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(me.status, 200) << me.body;
  auto pct = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  std::printf(
      "login flood (%d at once, 1 hashing thread): first /healthz %.1f ms after %d done, "
      "first /users/me %.1f ms after %d done; during the flood (%zu samples each): /healthz "
      "p50 %.2f p99 %.2f max %.2f ms, /users/me p50 %.2f p99 %.2f max %.2f ms\n",
      kLogins, health_ms, done_at_health, me_ms, done_at_me, health_samples.size(),
      pct(health_samples, 0.5), pct(health_samples, 0.99),
      *std::max_element(health_samples.begin(), health_samples.end()), pct(me_samples, 0.5),
      pct(me_samples, 0.99), *std::max_element(me_samples.begin(), me_samples.end()));
  RecordProperty("healthz_p99_ms", std::to_string(pct(health_samples, 0.99)));
  // Answered before the flood ended: neither waited behind the hashing.
  EXPECT_LT(done_at_health, kLogins);
  EXPECT_LT(done_at_me, kLogins);
}

// Past limits.password_hash_queue, a login is answered 503 with Retry-After at once.
TEST(Abuse, AFullHashingPoolAnswersBusy) {
  ServerProcess server({"--auth-password-hash", "interactive", "--auth-hash-threads", "1",
                        "--limits-password-hash-queue", "2", "--limits-auth-rate-per-min",
                        "1000000"});
  server.start();
  if (server.external()) GTEST_SKIP() << "needs its own server flags";
  std::atomic<int> busy{0};
  std::atomic<int> refused{0};
  std::atomic<bool> retry_after{true};
  std::vector<std::thread> flood;
  for (int i = 0; i < 16; ++i) {
    flood.emplace_back([&, i] {
      Http fh(server.host(), server.port());
      auto r =
          fh.post("/api/v1/auth/login", bj::object{{"phone", "+1999100" + std::to_string(1000 + i)},
                                                   {"password", "wrong-guess-1"}});
      if (r.status == 503) {
        ++busy;
        if (r.header("Retry-After").empty()) retry_after = false;
      } else if (r.status == 401) {
        ++refused;
      }
    });
  }
  for (auto& t : flood) t.join();
  std::printf("16 logins at once, hashing queue 2: %d busy (503), %d checked (401)\n", busy.load(),
              refused.load());
  EXPECT_GT(busy.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(busy.load() + refused.load(), 16);
  EXPECT_TRUE(retry_after.load());
}

// Sockets over limits.max_tcp_connections are closed at once; when one of the held sockets
// closes, a client gets in again. (Loopback peers are exempt from the per-address cap, so
// the total cap is what a test on 127.0.0.1 can reach.)
TEST(Abuse, TheTcpConnectionCapClosesWhatIsOverItAndRecovers) {
  ServerProcess server({"--limits-max-tcp-connections", "4"});
  server.start();
  if (server.external()) GTEST_SKIP() << "needs its own server flags";
  asio::io_context io;
  const tcp::endpoint ep(asio::ip::make_address(server.host()), server.port());
  // The start-up probe's connection may still be closing: fill the cap with bounded retries.
  std::vector<std::unique_ptr<tcp::socket>> held;
  for (int i = 0; i < 4; ++i) {
    auto s = std::make_unique<tcp::socket>(io);
    s->connect(ep);
    held.push_back(std::move(s));
  }
  // Give the accept loop time to admit them (each is admitted or closed once accepted): an
  // HTTP request on the last one tells when it has been served.
  auto over_cap_closed = [&] {
    tcp::socket extra(io);
    extra.connect(ep);
    extra.non_blocking(false);
    timeval tv{5, 0};
    ::setsockopt(extra.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    boost::system::error_code ec;
    auto n = extra.read_some(asio::buffer(&c, 1), ec);
    return n == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
  };
  bool closed = false;
  for (int attempt = 0; attempt < 20 && !closed; ++attempt) {
    closed = over_cap_closed();
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(closed) << "a connection over the cap was not closed";
  // The log is read by another thread: wait for the line (bounded).
  bool logged = false;
  for (int attempt = 0; attempt < 50 && !logged; ++attempt) {
    logged = server.log().find("limits.max_tcp_connections reached") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(logged);

  held.pop_back();  // one slot frees once the server sees the close
  Http h(server.host(), server.port());
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
    try {
      status = h.get("/healthz").status;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_EQ(status, 200);
}

// WebSockets per client address, the one a trusted proxy names included (the TCP cap sees only
// the proxy): past the cap the upgrade answers 429, other addresses still get in, and a closed
// socket gives its place back.
TEST(Abuse, WebSocketsPerClientAddressAreCappedBehindAProxyToo) {
  ServerProcess server({"--trusted-proxies", "127.0.0.1", "--limits-ws-connections-per-ip", "2"});
  server.start();
  if (server.external()) GTEST_SKIP() << "needs its own server flags";
  Http h(server.host(), server.port());
  auto a = make_account(h, "alice");
  asio::io_context io;
  const tcp::endpoint ep(asio::ip::make_address(server.host()), server.port());
  // An upgrade as nginx would forward it; the socket stays open while it is held.
  auto upgrade = [&](const std::string& client, std::unique_ptr<tcp::socket>& out) {
    out = std::make_unique<tcp::socket>(io);
    out->connect(ep);
    const std::string req = "GET /ws?token=" + a.access +
                            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                            "Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                            "dGhlIHNhbXBsZSBub25jZQ==\r\nX-Forwarded-For: " +
                            client + "\r\n\r\n";
    asio::write(*out, asio::buffer(req));
    asio::streambuf buf;
    boost::system::error_code ec;
    asio::read_until(*out, buf, "\r\n", ec);
    std::string line(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    return line.size() > 12 ? std::stoi(line.substr(9, 3)) : 0;
  };
  std::unique_ptr<tcp::socket> s1, s2, s3, other;
  EXPECT_EQ(upgrade("203.0.113.9", s1), 101);
  EXPECT_EQ(upgrade("203.0.113.9", s2), 101);
  EXPECT_EQ(upgrade("203.0.113.9", s3), 429);
  EXPECT_EQ(upgrade("203.0.113.10", other), 101);
  // Closed: the server releases the place once it sees the close (bounded retries).
  s1->close();
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 101; ++attempt) {
    status = upgrade("203.0.113.9", s3);
    if (status != 101) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 101);
}

// Changing the password through the REST API: the old one is checked, weak new ones are
// refused, the other sessions can neither refresh nor use their access tokens, the caller gets
// a fresh session. DELETE /users/me/sessions ends every session.
// Quotas, black-box: past each one the answer is 403 with the rule and its number, what was
// created before stays, and /metrics counts the refusal by quota.
TEST(Abuse, QuotasRefuseWithTheRuleAndAreCounted) {
  ServerProcess server({"--limits-spaces-per-user", "2", "--limits-channels-per-space", "2",
                        "--limits-members-per-space", "2"});
  server.start();
  if (server.external()) GTEST_SKIP() << "needs its own server flags";
  Http h(server.host(), server.port());
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto create_space = [&](const std::string& name) {
    return h.post("/api/v1/spaces", bj::object{{"name", name}}, a.access);
  };
  auto first = create_space("one");
  ASSERT_EQ(first.status, 201) << first.body;
  ASSERT_EQ(create_space("two").status, 201);
  auto third = create_space("three");
  EXPECT_EQ(third.status, 403) << third.body;
  EXPECT_NE(third.body.find("limits.spaces_per_user"), std::string::npos) << third.body;
  const std::string space = first.str("id");

  // Channels: up to the quota (a new space may already hold some), then refused.
  int created = 0;
  HttpResult refused;
  for (int i = 0; i < 3; ++i) {
    auto r = h.post("/api/v1/spaces/" + space + "/channels",
                    bj::object{{"name", "c" + std::to_string(i)}}, a.access);
    if (r.status == 201) {
      ++created;
      continue;
    }
    refused = r;
    break;
  }
  EXPECT_LE(created, 2);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("limits.channels_per_space"), std::string::npos) << refused.body;

  // Members: alice and bob fill it; carol is refused.
  const std::string members = "/api/v1/spaces/" + space + "/members";
  EXPECT_EQ(h.post(members, bj::object{{"user_id", b.id}}, a.access).status, 204);
  auto over = h.post(members, bj::object{{"user_id", c.id}}, a.access);
  EXPECT_EQ(over.status, 403) << over.body;
  EXPECT_NE(over.body.find("limits.members_per_space"), std::string::npos) << over.body;
  EXPECT_EQ(h.get(members, c.access).status, 404);  // not let in

  auto m = h.get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(metric_sample(m.body, "imd_quota_refused_total{what=\"spaces_per_user\"}"), 1);
  EXPECT_EQ(metric_sample(m.body, "imd_quota_refused_total{what=\"channels_per_space\"}"), 1);
  EXPECT_EQ(metric_sample(m.body, "imd_quota_refused_total{what=\"members_per_space\"}"), 1);
}

TEST(Abuse, PasswordChangeAndLogoutEverywhereEndOtherSessions) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account a = make_account(h, "changer");
  auto other =
      h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  ASSERT_EQ(other.status, 200);
  const std::string other_refresh = other.str("refresh_token");

  auto wrong =
      h.post("/api/v1/users/me/password",
             bj::object{{"old_password", "not-it-at-all"}, {"new_password", "tram-lines-at-dusk"}},
             a.access);
  EXPECT_EQ(wrong.status, 403);
  auto weak =
      h.post("/api/v1/users/me/password",
             bj::object{{"old_password", a.password}, {"new_password", "password"}}, a.access);
  EXPECT_EQ(weak.status, 400);
  EXPECT_EQ(weak.error_code(), "invalid_argument");
  auto changed = h.post(
      "/api/v1/users/me/password",
      bj::object{{"old_password", a.password}, {"new_password", "tram-lines-at-dusk"}}, a.access);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_FALSE(changed.str("access_token").empty());
  EXPECT_EQ(h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", other_refresh}}).status,
            401);
  EXPECT_EQ(h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}}).status, 401);
  auto fresh =
      h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", changed.str("refresh_token")}});
  ASSERT_EQ(fresh.status, 200);

  // Access tokens issued before the change are refused at once (by this process).
  EXPECT_EQ(h.get("/api/v1/users/me", a.access).status, 401);
  EXPECT_EQ(h.get("/api/v1/users/me", fresh.str("access_token")).status, 200);

  auto ended =
      h.request("DELETE", "/api/v1/users/me/sessions", std::nullopt, fresh.str("access_token"));
  EXPECT_EQ(ended.status, 204);
  EXPECT_EQ(
      h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", fresh.str("refresh_token")}})
          .status,
      401);
  EXPECT_EQ(h.post("/api/v1/auth/login",
                   bj::object{{"phone", a.phone}, {"password", "tram-lines-at-dusk"}})
                .status,
            200);
}

// Failed logins for one account from one address: after five, 429 with Retry-After, even for
// the right password, and no password is checked while it waits.
TEST(Abuse, RepeatedWrongPasswordsAreSlowedPerAccount) {
  ServerProcess server({"--limits-auth-rate-per-min", "1000000"});
  server.start();
  Http h(server.host(), server.port());
  Account a = make_account(h, "guessed");
  int unauthorized = 0;
  HttpResult last;
  for (int i = 0; i < 12; ++i) {
    last =
        h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", "nope-nope-1"}});
    if (last.status == 401) ++unauthorized;
    if (last.status == 429) break;
  }
  EXPECT_EQ(last.status, 429);
  EXPECT_FALSE(last.header("Retry-After").empty());
  EXPECT_GE(unauthorized, 5);
  auto right =
      h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  EXPECT_EQ(right.status, 429);
}

// With the caches in Redis the login brakes count there too: guesses spread over two processes
// (two imd on one MariaDB and one Redis, as a cluster's api processes) are braked as if they
// had come through one. Runs as MysqlRedis.Abuse.* (tests/CMakeLists.txt).
TEST(Abuse, LoginBrakesAreSharedByProcessesOnOneRedis) {
  const char* engines = std::getenv("IMD_TEST_SERVER_FLAGS");
  if (engines == nullptr || std::string(engines).find("--cache redis") == std::string::npos) {
    GTEST_SKIP() << "needs the caches in Redis (the MysqlRedis. variant)";
  }
  ServerProcess one({"--limits-auth-rate-per-min", "1000000", "--worker-id", "11"});
  ServerProcess two({"--limits-auth-rate-per-min", "1000000", "--worker-id", "12"});
  one.start();
  two.start();
  Http h1(one.host(), one.port()), h2(two.host(), two.port());
  Account a = make_account(h1, "guessed");
  const bj::object wrong{{"phone", a.phone}, {"password", "nope-nope-1"}};
  // Alternating: each process saw at most 6 guesses, so counted alone neither would brake
  // within these 12 (the 6th failure of a pair brakes, kFreePerSource = 5).
  int unauthorized = 0;
  HttpResult last;
  for (int i = 0; i < 12; ++i) {
    last = (i % 2 == 0 ? h1 : h2).post("/api/v1/auth/login", wrong);
    if (last.status == 401) ++unauthorized;
    if (last.status != 401) break;
  }
  EXPECT_EQ(unauthorized, 6);
  EXPECT_EQ(last.status, 429) << last.body;
  EXPECT_FALSE(last.header("Retry-After").empty());
  // Both processes refuse now, the right password too.
  const bj::object right{{"phone", a.phone}, {"password", a.password}};
  EXPECT_EQ(h1.post("/api/v1/auth/login", right).status, 429);
  EXPECT_EQ(h2.post("/api/v1/auth/login", right).status, 429);
}

}  // namespace
}  // namespace imd::test
