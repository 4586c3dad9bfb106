// The REST API (/api/v1, docs/api.md) against the real binary: every endpoint, its
// validation, its authentication and authorization rules, and the HTTP edge (404, 405, 413,
// malformed requests). One server per suite; tests that need other flags or a restart start
// their own ServerProcess.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "domain/tokens.hpp"
#include "support/client.hpp"
#include "support/fake_clock.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

// Explicit keys, so a token of one server is a correctly formed token signed with a key the
// other does not know.
constexpr const char* kSecret = "api-test-secret-0123456789abcdefghijklmnopqrstuvwxyz";
constexpr const char* kOtherSecret = "another-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

// The suite does far more logins per second than a real client: lift the per-IP limits so
// that only ApiRateLimit exercises them.
std::vector<std::string> suite_flags(const char* secret) {
  return {"--auth-jwt-secret",   secret,   "--limits-http-rate-per-s",   "100000",
          "--limits-http-burst", "100000", "--limits-auth-rate-per-min", "1000000"};
}

// --- small helpers ----------------------------------------------------------------------------

std::string unique_phone() {
  static std::atomic<unsigned> counter{0};
  return "+1666" + std::to_string(::getpid() % 10000) + std::to_string(1000000 + counter++);
}

// A unique phone number of exactly `digits` digits, with or without a leading '+'.
std::string phone_with_digits(std::size_t digits, bool plus) {
  std::string tail = unique_phone().substr(5);  // the pid and the counter
  std::string d = "1666" + std::string(digits - 4 - tail.size(), '0') + tail;
  return (plus ? "+" : "") + d;
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  return prefix + std::to_string(::getpid()) + "x" + std::to_string(counter++);
}

const bj::object& obj(const bj::value& v) {
  static const bj::object kEmpty;
  if (!v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << bj::serialize(v);
    return kEmpty;
  }
  return v.as_object();
}
const bj::object& obj(const HttpResult& r) {
  return obj(r.json);
}

const bj::object& field_obj(const bj::object& o, const char* key) {
  static const bj::value kNull;
  const auto* v = o.if_contains(key);
  return obj(v ? *v : kNull);
}

const bj::array& field_arr(const bj::object& o, const char* key) {
  static const bj::array kEmpty;
  const auto* v = o.if_contains(key);
  if (!v || !v->is_array()) {
    ADD_FAILURE() << "no array '" << key << "' in " << bj::serialize(o);
    return kEmpty;
  }
  return v->as_array();
}

// Ids are decimal strings on the wire (64-bit values do not fit a JavaScript number).
::testing::AssertionResult is_id(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v) return ::testing::AssertionFailure() << "no '" << key << "' in " << bj::serialize(o);
  if (!v->is_string()) {
    return ::testing::AssertionFailure()
           << "'" << key << "' is not a string: " << bj::serialize(*v);
  }
  std::string_view s = v->as_string();
  if (s.empty() || s == "0" ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return ::testing::AssertionFailure() << "'" << key << "' is not a decimal id: " << s;
  }
  return ::testing::AssertionSuccess();
}

// Asserts the status and the error body {"error":{"code":…,"message":…}}.
::testing::AssertionResult is_error(const HttpResult& r, int status, const std::string& code) {
  if (r.status != status || r.error_code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << status << " " << code << ", got " << r.status << " " << r.body;
  }
  const auto& err = r.json.as_object().at("error").as_object();
  const auto* msg = err.if_contains("message");
  if (!msg || !msg->is_string() || msg->as_string().empty()) {
    return ::testing::AssertionFailure() << "error without a message: " << r.body;
  }
  if (r.header("Content-Type").rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure() << "error is not JSON: " << r.header("Content-Type");
  }
  return ::testing::AssertionSuccess();
}

std::string message_of(const HttpResult& r) {
  if (!r.json.is_object()) return {};
  const auto* e = r.json.as_object().if_contains("error");
  if (!e || !e->is_object()) return {};
  const auto* m = e->as_object().if_contains("message");
  return m && m->is_string() ? std::string(m->as_string()) : std::string();
}

// True when any object at any depth has a key that must never leave the server.
bool has_secret_field(const bj::value& v) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object()) {
      if (k == "password" || k == "password_hash" || k == "token_hash") return true;
      if (has_secret_field(x)) return true;
    }
  } else if (v.is_array()) {
    for (const auto& x : v.as_array()) {
      if (has_secret_field(x)) return true;
    }
  }
  return false;
}

std::vector<std::string> ids_of(const bj::array& a, const char* key) {
  std::vector<std::string> out;
  for (const auto& v : a) out.push_back(std::string(v.as_object().at(key).as_string()));
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// --- JWT pieces (base64url without padding), to forge tokens by hand --------------------------

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 0x3F];
  return out;
}

std::string b64url_decode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = kB64.find(c);
    if (pos == std::string_view::npos) break;
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

struct JwtParts {
  std::string header, payload, signature;
};

JwtParts split_jwt(const std::string& token) {
  auto a = token.find('.');
  auto b = token.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    ADD_FAILURE() << "not a JWT: " << token;
    return {};
  }
  return {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

std::string join_jwt(const JwtParts& p) {
  return p.header + "." + p.payload + "." + p.signature;
}

// --- the suite --------------------------------------------------------------------------------

class Api : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(suite_flags(kSecret));
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static Http http() { return Http(server_->host(), server_->port()); }

  // Every response of the suite goes through check(): no response may carry a secret.
  static HttpResult check(HttpResult r) {
    EXPECT_FALSE(has_secret_field(r.json)) << "secret field in response: " << r.body;
    return r;
  }
  static HttpResult get(const std::string& target, const std::string& token = {}) {
    return check(http().get(target, token));
  }
  static HttpResult post(const std::string& target, const bj::value& body,
                         const std::string& token = {}) {
    return check(http().post(target, body, token));
  }
  static HttpResult patch(const std::string& target, const bj::value& body,
                          const std::string& token = {}) {
    return check(http().patch(target, body, token));
  }
  static HttpResult send(const std::string& method, const std::string& target,
                         const std::optional<std::string>& body, const std::string& token = {},
                         const std::string& content_type = "application/json") {
    return check(http().request(method, target, body, token, content_type));
  }

  static Account account(const std::string& name) {
    Http h = http();
    return make_account(h, name);
  }

  static HttpResult register_user(const bj::object& body) {
    return post("/api/v1/auth/register", body);
  }
  static bj::object reg_body(const std::string& name, const std::string& phone,
                             const std::string& password = "password-123") {
    return {{"name", name}, {"phone", phone}, {"password", password}};
  }

  // A space owned by `owner`, joined by each of `members` through an invitation.
  static std::string make_space(const Account& owner, const std::vector<const Account*>& members,
                                const std::string& name = "team") {
    auto r = post("/api/v1/spaces", bj::object{{"name", name}}, owner.access);
    EXPECT_EQ(r.status, 201) << r.body;
    std::string sid = r.str("id");
    for (const Account* m : members) join(owner, sid, *m);
    return sid;
  }
  // `member` accepts an invitation of `inviter` to the space.
  static void join(const Account& inviter, const std::string& sid, const Account& member) {
    auto inv = post("/api/v1/spaces/" + sid + "/invites", bj::object{}, inviter.access);
    ASSERT_EQ(inv.status, 201) << inv.body;
    auto j = post("/api/v1/invites/" + inv.str("code") + "/accept", bj::object{}, member.access);
    EXPECT_EQ(j.status, 200) << j.body;
  }
  static std::string make_channel(const Account& creator, const std::string& space,
                                  const std::string& name = "general") {
    auto r =
        post("/api/v1/spaces/" + space + "/channels", bj::object{{"name", name}}, creator.access);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.str("id");
  }

  // Walks a member list page by page; returns the user ids in order and the page sizes.
  static std::vector<std::string> walk_members(const std::string& base, const std::string& token,
                                               int limit, std::vector<std::size_t>* sizes) {
    std::vector<std::string> all;
    std::string after;
    for (int guard = 0; guard < 100; ++guard) {
      std::string target = base + "?limit=" + std::to_string(limit);
      if (!after.empty()) target += "&after=" + after;
      auto r = get(target, token);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      const auto& page = field_arr(obj(r), "members");
      if (sizes) sizes->push_back(page.size());
      for (const auto& m : page) {
        EXPECT_TRUE(is_id(m.as_object(), "user_id"));
        all.push_back(std::string(m.as_object().at("user_id").as_string()));
      }
      const auto& next = obj(r).at("next_after");
      if (next.is_null()) break;
      EXPECT_TRUE(next.is_string()) << r.body;
      EXPECT_FALSE(page.empty()) << "next_after on an empty page: " << r.body;
      EXPECT_EQ(std::string(next.as_string()), all.back()) << "next_after is the last user id";
      after = std::string(next.as_string());
    }
    return all;
  }

  static ServerProcess* server_;
};
ServerProcess* Api::server_ = nullptr;

// --- health and the HTTP edge -----------------------------------------------------------------

TEST_F(Api, Healthz) {
  auto r = get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.str("status"), "ok");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
}

// The store answers and the queue is empty: ready, with nothing failing named.
TEST_F(Api, ReadyzWhenTheEnginesAnswer) {
  auto r = get("/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.str("status"), "ready");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(get("/readyz").status, 200);  // cached, still ready
}

TEST_F(Api, UnknownPathIs404Json) {
  auto a = account("ghost");
  auto r = get("/api/v1/nope", a.access);
  EXPECT_TRUE(is_error(r, 404, "not_found"));
  // Unknown API paths are 404 before authentication.
  EXPECT_TRUE(is_error(get("/api/v1/nope"), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v2/users/me", a.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/users/me/extra", a.access), 404, "not_found"));
  // Outside /api/ the static handler answers, with the same error shape.
  EXPECT_TRUE(is_error(get("/no-such-file.txt"), 404, "not_found"));
}

TEST_F(Api, WrongMethodIs405) {
  auto a = account("method");
  auto r = send("DELETE", "/api/v1/users/me", std::nullopt, a.access);
  EXPECT_EQ(r.status, 405) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_argument");
  EXPECT_EQ(message_of(r), "method not allowed");

  EXPECT_EQ(send("PUT", "/api/v1/spaces", "{}", a.access).status, 405);
  EXPECT_EQ(send("GET", "/api/v1/auth/login", std::nullopt).status, 405);
  EXPECT_EQ(send("POST", "/healthz", "{}").status, 405);
  EXPECT_EQ(send("DELETE", "/api/v1/spaces/123", std::nullopt, a.access).status, 405);
  // HEAD is GET without the body.
  auto head = http().request("HEAD", "/api/v1/users/me", std::nullopt, a.access);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(http().request("HEAD", "/healthz").status, 200);
  // Non-API paths only serve GET/HEAD.
  auto s = send("POST", "/index.html", "{}");
  EXPECT_EQ(s.status, 405);
  EXPECT_EQ(s.error_code(), "invalid_argument");
}

TEST_F(Api, NonNumericIdInPathIs404) {
  auto a = account("ids");
  for (const char* path :
       {"/api/v1/users/abc", "/api/v1/users/0", "/api/v1/users/-1", "/api/v1/users/+5",
        "/api/v1/users/12x", "/api/v1/spaces/x", "/api/v1/spaces/1.5/members",
        "/api/v1/channels/0x10", "/api/v1/channels/123456789012345678901234/messages"}) {
    auto r = get(path, a.access);
    EXPECT_TRUE(is_error(r, 404, "not_found")) << path;
    EXPECT_EQ(message_of(r), "no such endpoint") << path;
  }
}

TEST_F(Api, BodyOver64KiBIs413) {
  std::string big = bj::serialize(
      bj::object{{"name", std::string(70 * 1024, 'a')}, {"phone", "+15550001"}, {"password", "x"}});
  ASSERT_GT(big.size(), 64u * 1024);
  auto r = send("POST", "/api/v1/auth/register", big);
  EXPECT_TRUE(is_error(r, 413, "payload_too_large"));

  // Exactly 64 KiB passes the edge and reaches validation.
  std::string pad(64 * 1024, ' ');
  std::string body = R"({"name":")" + std::string(100, 'n') + R"(","phone":"1","password":"x"})";
  std::string exact = body + pad.substr(body.size());
  ASSERT_EQ(exact.size(), 64u * 1024);
  auto e = send("POST", "/api/v1/auth/register", exact);
  EXPECT_TRUE(is_error(e, 400, "invalid_argument"));
  EXPECT_EQ(message_of(e), "name is longer than 64 bytes");
}

TEST_F(Api, DeclaredOversizedBodyIs413BeforeItIsSent) {
  auto res = http().raw(
      "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000000\r\n\r\n{");
  EXPECT_EQ(res.rfind("HTTP/1.1 413", 0), 0u) << res;
  EXPECT_NE(res.find("application/json"), std::string::npos) << res;
}

TEST_F(Api, MalformedHttpRequestIs400) {
  for (const char* bytes : {"THIS IS NOT HTTP\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: abc\r\n\r\n"}) {
    auto res = http().raw(bytes);
    EXPECT_EQ(res.rfind("HTTP/1.1 400", 0), 0u) << bytes << " -> " << res;
    EXPECT_NE(res.find("application/json"), std::string::npos) << res;
  }
  // A target that is not a valid URL (bad percent-escape) is refused by the API as well.
  auto target = get("/api/v1/users?name=%zz");
  EXPECT_TRUE(is_error(target, 400, "invalid_argument"));
  EXPECT_EQ(message_of(target), "malformed request target");
  // The server is still fine afterwards.
  EXPECT_EQ(get("/healthz").status, 200);
}

// RFC 9110 15.5.6: "The origin server MUST generate an Allow header field in a 405 response".
TEST_F(Api, WrongMethodNamesAllowedMethods) {
  auto a = account("allow");
  auto r = send("DELETE", "/api/v1/users/me", std::nullopt, a.access);
  ASSERT_EQ(r.status, 405);
  std::string allow = r.header("Allow");
  EXPECT_NE(allow.find("GET"), std::string::npos) << "Allow: '" << allow << "'";
  EXPECT_NE(allow.find("PATCH"), std::string::npos) << "Allow: '" << allow << "'";
}

// --- register ---------------------------------------------------------------------------------

TEST_F(Api, RegisterCreatesUser) {
  std::string phone = unique_phone();
  auto r = register_user(reg_body("Alice", phone));
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& u = field_obj(obj(r), "user");
  EXPECT_TRUE(is_id(u, "id"));
  EXPECT_EQ(str(u, "name"), "Alice");
  EXPECT_EQ(str(u, "phone"), phone);
  EXPECT_EQ(str(u, "avatar"), "");
  ASSERT_TRUE(u.contains("created_at"));
  EXPECT_TRUE(u.at("created_at").is_int64() || u.at("created_at").is_uint64());
  EXPECT_GT(u.at("created_at").to_number<std::int64_t>(), 1600000000000);  // milliseconds
  EXPECT_FALSE(u.contains("password"));

  // Limits are inclusive: 64-byte name, 8- and 128-byte passwords, '+' and 19 digits.
  EXPECT_EQ(register_user(reg_body(std::string(64, 'n'), unique_phone())).status, 201);
  EXPECT_EQ(register_user(reg_body("eight", unique_phone(), "k7#q2vZp")).status, 201);
  std::string long_password;
  for (int i = 0; i < 128; ++i) long_password += static_cast<char>('a' + i % 26);
  EXPECT_EQ(register_user(reg_body("long", unique_phone(), long_password)).status, 201);
  // The policy (docs/security.md): common passwords and one repeated character are refused.
  EXPECT_EQ(register_user(reg_body("weak", unique_phone(), "12345678")).error_code(),
            "invalid_argument");
  EXPECT_EQ(register_user(reg_body("weak", unique_phone(), std::string(128, 'p'))).status, 400);
  EXPECT_EQ(register_user(reg_body("digits", phone_with_digits(19, true))).status, 201);
  // Multi-byte UTF-8 names are counted in bytes: 16 x 4 bytes = 64.
  std::string emoji;
  for (int i = 0; i < 16; ++i) emoji += "\xF0\x9F\x98\x80";
  auto e = register_user(reg_body(emoji, unique_phone()));
  EXPECT_EQ(e.status, 201) << e.body;
  EXPECT_EQ(str(field_obj(obj(e), "user"), "name"), emoji);
}

TEST_F(Api, RegisterRejectsMalformedJson) {
  for (const char* body : {"{", "{\"name\":", "not json", "{\"name\":\"a\",}"}) {
    auto r = send("POST", "/api/v1/auth/register", std::string(body));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << body;
    EXPECT_EQ(message_of(r).rfind("malformed JSON", 0), 0u) << message_of(r);
  }
}

TEST_F(Api, RegisterRejectsInvalidUtf8AndDeepJson) {
  std::string bad_utf8 =
      "{\"name\":\"\xff\xfe\",\"phone\":\"" + unique_phone() + "\",\"password\":\"password-1\"}";
  auto r = send("POST", "/api/v1/auth/register", bad_utf8);
  EXPECT_TRUE(is_error(r, 400, "invalid_argument"));
  EXPECT_EQ(message_of(r).rfind("malformed JSON", 0), 0u) << message_of(r);
  // An escaped NUL is valid JSON but a control character in a name.
  auto nul = register_user(reg_body(std::string("a\0b", 3), unique_phone()));
  EXPECT_TRUE(is_error(nul, 400, "invalid_argument"));
  EXPECT_EQ(message_of(nul), "name must not contain control characters");
  // Deep nesting is refused, not recursed into.
  auto deep =
      send("POST", "/api/v1/auth/register", std::string(20000, '[') + std::string(20000, ']'));
  EXPECT_TRUE(is_error(deep, 400, "invalid_argument"));
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(Api, RegisterRejectsNonObjectBody) {
  for (const char* body : {"[1,2]", "\"text\"", "42", "null", "true"}) {
    auto r = send("POST", "/api/v1/auth/register", std::string(body));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << body;
    EXPECT_EQ(message_of(r), "expected a JSON object") << body;
  }
}

TEST_F(Api, RegisterRejectsMissingFields) {
  std::string phone = unique_phone();
  auto no_name = register_user(bj::object{{"phone", phone}, {"password", "password-1"}});
  EXPECT_TRUE(is_error(no_name, 400, "invalid_argument"));
  EXPECT_EQ(message_of(no_name), "name is required");
  auto no_phone = register_user(bj::object{{"name", "n"}, {"password", "password-1"}});
  EXPECT_TRUE(is_error(no_phone, 400, "invalid_argument"));
  EXPECT_EQ(message_of(no_phone), "phone is required");
  auto no_password = register_user(bj::object{{"name", "n"}, {"phone", phone}});
  EXPECT_TRUE(is_error(no_password, 400, "invalid_argument"));
  EXPECT_EQ(message_of(no_password), "password is required");
  auto null_name =
      register_user(bj::object{{"name", nullptr}, {"phone", phone}, {"password", "password-1"}});
  EXPECT_TRUE(is_error(null_name, 400, "invalid_argument"));
  EXPECT_EQ(message_of(null_name), "name is required");
  // No body at all is an empty object.
  auto empty = send("POST", "/api/v1/auth/register", std::nullopt);
  EXPECT_TRUE(is_error(empty, 400, "invalid_argument"));
  EXPECT_EQ(message_of(empty), "name is required");
  // None of these created the account.
  EXPECT_EQ(register_user(reg_body("n", phone)).status, 201);
}

TEST_F(Api, RegisterRejectsWrongTypes) {
  auto r =
      register_user(bj::object{{"name", 5}, {"phone", unique_phone()}, {"password", "password-1"}});
  EXPECT_TRUE(is_error(r, 400, "invalid_argument"));
  EXPECT_EQ(message_of(r), "name must be a string");
  auto p =
      register_user(bj::object{{"name", "n"}, {"phone", 15551234567}, {"password", "password-1"}});
  EXPECT_TRUE(is_error(p, 400, "invalid_argument"));
  EXPECT_EQ(message_of(p), "phone must be a string");
  auto w = register_user(
      bj::object{{"name", "n"}, {"phone", unique_phone()}, {"password", bj::array{"a"}}});
  EXPECT_TRUE(is_error(w, 400, "invalid_argument"));
  EXPECT_EQ(message_of(w), "password must be a string");
}

TEST_F(Api, RegisterRejectsOverlongFields) {
  auto name = register_user(reg_body(std::string(65, 'n'), unique_phone()));
  EXPECT_TRUE(is_error(name, 400, "invalid_argument"));
  EXPECT_EQ(message_of(name), "name is longer than 64 bytes");
  auto password = register_user(reg_body("n", unique_phone(), std::string(129, 'p')));
  EXPECT_TRUE(is_error(password, 400, "invalid_argument"));
  EXPECT_EQ(message_of(password), "password is longer than 128 bytes");
  auto phone = register_user(reg_body("n", "+" + std::string(20, '1')));
  EXPECT_TRUE(is_error(phone, 400, "invalid_argument"));
  EXPECT_EQ(message_of(phone), "phone is longer than 20 bytes");
}

TEST_F(Api, RegisterRejectsShortPassword) {
  for (const char* pw : {"", "1234567"}) {
    auto r = register_user(reg_body("n", unique_phone(), pw));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << pw;
  }
  auto r = register_user(reg_body("n", unique_phone(), "1234567"));
  EXPECT_EQ(message_of(r), "password must be 8..128 bytes");
}

TEST_F(Api, RegisterRejectsBadName) {
  for (std::string name : {std::string("   "), std::string("\t"), std::string("a\x01z"),
                           std::string("tab\there"), std::string("del\x7f")}) {
    auto r = register_user(reg_body(name, unique_phone()));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << "name=" << bj::serialize(bj::value(name));
  }
  auto empty = register_user(reg_body("", unique_phone()));
  EXPECT_TRUE(is_error(empty, 400, "invalid_argument"));
}

TEST_F(Api, RegisterRejectsBadPhone) {
  for (const char* phone :
       {"abc", "1234", "+1234", "+12-3456789", "++123456", "123 4567", "+", "12345a", "-1234567"}) {
    auto r = register_user(reg_body("n", phone));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << phone;
    EXPECT_EQ(message_of(r), "phone must be 5..19 digits, optionally after '+'") << phone;
  }
  // Five digits, with or without '+', are enough; with or without it, it is one number, kept
  // in one form ('+' first).
  std::string five = std::to_string(10000 + ::getpid() % 90000);
  auto ok = register_user(reg_body("n", five));
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(str(field_obj(obj(ok), "user"), "phone"), "+" + five);
  auto plus = register_user(reg_body("n", "+" + five));
  EXPECT_TRUE(is_error(plus, 409, "conflict")) << plus.body;
  for (const auto& typed : {five, "+" + five}) {
    auto login =
        post("/api/v1/auth/login", bj::object{{"phone", typed}, {"password", "password-123"}});
    EXPECT_EQ(login.status, 200) << typed << " " << login.body;
  }
  // A leading 0 is a national trunk prefix, not a country code.
  for (const char* national : {"0155512345", "+0155512345"}) {
    auto r = register_user(reg_body("n", national));
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << national;
    EXPECT_EQ(message_of(r),
              "phone must be in international form: country code first, no leading 0");
  }
}

// The error message promises at most 19 digits; a 20-digit phone without '+' must not pass.
// (src/domain/auth_service.cpp check_phone() only checks the byte length, which is 20 with
// or without the '+'.)
TEST_F(Api, RegisterRejectsPhoneWithTwentyDigits) {
  std::string digits = phone_with_digits(20, false);
  ASSERT_EQ(digits.size(), 20u);
  auto r = register_user(reg_body("n", digits));
  EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << "a 20-digit phone was accepted";
}

TEST_F(Api, RegisterDuplicatePhoneIs409) {
  std::string phone = unique_phone();
  ASSERT_EQ(register_user(reg_body("first", phone)).status, 201);
  auto r = register_user(reg_body("second", phone, "another-password"));
  EXPECT_TRUE(is_error(r, 409, "conflict"));
  EXPECT_EQ(message_of(r), "phone already registered");
  // The first account is intact.
  auto login =
      post("/api/v1/auth/login", bj::object{{"phone", phone}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(str(field_obj(obj(login), "user"), "name"), "first");
}

TEST_F(Api, ConcurrentRegisterWithOnePhoneSucceedsOnce) {
  std::string phone = unique_phone();
  std::vector<int> statuses(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        statuses[i] =
            http()
                .post("/api/v1/auth/register", reg_body("racer" + std::to_string(i), phone))
                .status;
      } catch (const std::exception&) {
        statuses[i] = -1;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 409), 7);
}

TEST_F(Api, RegisterRejectsWrongContentType) {
  std::string body = bj::serialize(reg_body("n", unique_phone()));
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "application/xml"}) {
    auto r = send("POST", "/api/v1/auth/register", body, {}, ct);
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << ct;
    EXPECT_EQ(message_of(r), "Content-Type must be application/json") << ct;
  }
  // Parameters after the media type are fine.
  auto ok = send("POST", "/api/v1/auth/register", body, {}, "application/json; charset=utf-8");
  EXPECT_EQ(ok.status, 201) << ok.body;
}

// --- login, refresh, logout -------------------------------------------------------------------

TEST_F(Api, LoginReturnsSession) {
  std::string phone = unique_phone();
  auto reg = register_user(reg_body("Login", phone, "s3cret-pass"));
  ASSERT_EQ(reg.status, 201);
  std::string id = str(field_obj(obj(reg), "user"), "id");

  auto r = post("/api/v1/auth/login", bj::object{{"phone", phone}, {"password", "s3cret-pass"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& o = obj(r);
  std::string access = r.str("access_token");
  std::string refresh = r.str("refresh_token");
  EXPECT_FALSE(access.empty());
  EXPECT_FALSE(refresh.empty());
  EXPECT_NE(access, refresh);
  EXPECT_EQ(r.str("token_type"), "Bearer");
  ASSERT_TRUE(o.contains("expires_in"));
  EXPECT_EQ(o.at("expires_in").to_number<std::int64_t>(), 900);  // the default access TTL
  const auto& u = field_obj(o, "user");
  EXPECT_TRUE(is_id(u, "id"));
  EXPECT_EQ(str(u, "id"), id);
  EXPECT_EQ(str(u, "name"), "Login");
  EXPECT_EQ(str(u, "phone"), phone);

  // The access token is an HS256 JWT for this user.
  auto parts = split_jwt(access);
  auto header = bj::parse(b64url_decode(parts.header));
  auto payload = bj::parse(b64url_decode(parts.payload));
  EXPECT_EQ(str(obj(header), "alg"), "HS256");
  EXPECT_EQ(str(obj(payload), "sub"), id);
  EXPECT_EQ(str(obj(payload), "typ"), "access");
  EXPECT_EQ(obj(payload).at("exp").to_number<std::int64_t>() -
                obj(payload).at("iat").to_number<std::int64_t>(),
            900);
  EXPECT_EQ(get("/api/v1/users/me", access).status, 200);

  // Every login opens its own session.
  auto again =
      post("/api/v1/auth/login", bj::object{{"phone", phone}, {"password", "s3cret-pass"}});
  ASSERT_EQ(again.status, 200);
  EXPECT_NE(again.str("refresh_token"), refresh);
}

TEST_F(Api, LoginFailuresAreIndistinguishable) {
  auto a = account("victim");
  auto wrong =
      post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", "wrong-password"}});
  auto unknown = post("/api/v1/auth/login",
                      bj::object{{"phone", unique_phone()}, {"password", "wrong-password"}});
  EXPECT_TRUE(is_error(wrong, 401, "unauthenticated"));
  EXPECT_TRUE(is_error(unknown, 401, "unauthenticated"));
  EXPECT_EQ(message_of(wrong), "wrong phone or password");
  EXPECT_EQ(message_of(unknown), message_of(wrong));
  EXPECT_EQ(wrong.header("WWW-Authenticate"), "Bearer");
  EXPECT_FALSE(wrong.json.as_object().contains("access_token"));
  // A phone that is not even valid is just unknown.
  auto odd = post("/api/v1/auth/login", bj::object{{"phone", "xyz"}, {"password", "whatever1"}});
  EXPECT_TRUE(is_error(odd, 401, "unauthenticated"));
  EXPECT_EQ(message_of(odd), message_of(wrong));
}

TEST_F(Api, LoginValidation) {
  auto no_password = post("/api/v1/auth/login", bj::object{{"phone", "+15551234"}});
  EXPECT_TRUE(is_error(no_password, 400, "invalid_argument"));
  EXPECT_EQ(message_of(no_password), "password is required");
  auto no_phone = post("/api/v1/auth/login", bj::object{{"password", "password1"}});
  EXPECT_TRUE(is_error(no_phone, 400, "invalid_argument"));
  EXPECT_EQ(message_of(no_phone), "phone is required");
  EXPECT_TRUE(
      is_error(send("POST", "/api/v1/auth/login", std::string("{")), 400, "invalid_argument"));
  EXPECT_TRUE(
      is_error(send("POST", "/api/v1/auth/login", std::string("[]")), 400, "invalid_argument"));
  auto ct = send("POST", "/api/v1/auth/login", std::string(R"({"phone":"1","password":"2"})"), {},
                 "text/plain");
  EXPECT_TRUE(is_error(ct, 400, "invalid_argument"));
}

TEST_F(Api, RefreshRotatesTokens) {
  auto a = account("rotate");
  auto r = post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string access2 = r.str("access_token");
  std::string refresh2 = r.str("refresh_token");
  EXPECT_FALSE(access2.empty());
  EXPECT_NE(refresh2, a.refresh);
  EXPECT_EQ(r.str("token_type"), "Bearer");
  EXPECT_EQ(obj(r).at("expires_in").to_number<std::int64_t>(), 900);
  EXPECT_EQ(str(field_obj(obj(r), "user"), "id"), a.id);
  EXPECT_EQ(str(field_obj(obj(r), "user"), "phone"), a.phone);

  auto me = get("/api/v1/users/me", access2);
  EXPECT_EQ(me.status, 200);
  EXPECT_EQ(me.str("id"), a.id);

  // A client whose answer was lost retries with the token it has: within the reuse window
  // (auth.refresh_reuse_s, 60 s by default) that is another session, not a logout. When the
  // window ends is the store's and AuthService's test (it follows the clock).
  auto retry = post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_NE(retry.str("refresh_token"), refresh2);
  auto next = post("/api/v1/auth/refresh", bj::object{{"refresh_token", refresh2}});
  EXPECT_EQ(next.status, 200) << next.body;
}

// With auth.refresh_reuse_s = 0 a refresh token works exactly once.
TEST(ApiStrictRefresh, RefreshTokensWorkOnceWithoutAReuseWindow) {
  ServerProcess server({"--auth-refresh-reuse-s", "0"});
  server.start();
  Http h(server.host(), server.port());
  auto a = make_account(h, "strict");
  auto r = h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto reuse = h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  EXPECT_TRUE(is_error(reuse, 401, "unauthenticated"));
  EXPECT_EQ(message_of(reuse), "refresh token is unknown, used or expired");

  // Concurrent uses of one token: exactly one wins.
  auto b = make_account(h, "race");
  std::vector<int> statuses(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        statuses[i] = Http(server.host(), server.port())
                          .post("/api/v1/auth/refresh", bj::object{{"refresh_token", b.refresh}})
                          .status;
      } catch (const std::exception&) {
        statuses[i] = -1;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), 7);
}

TEST_F(Api, RefreshRejectsBadTokens) {
  auto garbage = post("/api/v1/auth/refresh", bj::object{{"refresh_token", "not-a-token"}});
  EXPECT_TRUE(is_error(garbage, 401, "unauthenticated"));
  // An access token is not a refresh token.
  auto a = account("mixup");
  EXPECT_TRUE(
      is_error(post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.access.substr(0, 256)}}),
               401, "unauthenticated"));
  auto missing = post("/api/v1/auth/refresh", bj::object{});
  EXPECT_TRUE(is_error(missing, 400, "invalid_argument"));
  EXPECT_EQ(message_of(missing), "refresh_token is required");
  auto empty = post("/api/v1/auth/refresh", bj::object{{"refresh_token", ""}});
  EXPECT_TRUE(is_error(empty, 400, "invalid_argument"));
  auto huge = post("/api/v1/auth/refresh", bj::object{{"refresh_token", std::string(257, 'a')}});
  EXPECT_TRUE(is_error(huge, 400, "invalid_argument"));
  auto type = post("/api/v1/auth/refresh", bj::object{{"refresh_token", 7}});
  EXPECT_TRUE(is_error(type, 400, "invalid_argument"));
}

TEST_F(Api, LogoutRevokesRefreshToken) {
  auto a = account("logout");
  auto r = post("/api/v1/auth/logout", bj::object{{"refresh_token", a.refresh}});
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  auto refresh = post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  EXPECT_TRUE(is_error(refresh, 401, "unauthenticated"));
  // Logging out again is harmless; the session ended, so its access token is refused too.
  EXPECT_EQ(post("/api/v1/auth/logout", bj::object{{"refresh_token", a.refresh}}).status, 204);
  EXPECT_EQ(get("/api/v1/users/me", a.access).status, 401);
  // Other sessions of the user are untouched.
  auto other = post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  ASSERT_EQ(other.status, 200);
  EXPECT_EQ(post("/api/v1/auth/refresh", bj::object{{"refresh_token", other.str("refresh_token")}})
                .status,
            200);
}

TEST_F(Api, LogoutValidation) {
  // Logout is idempotent and does not reveal whether a token exists.
  auto unknown = post("/api/v1/auth/logout", bj::object{{"refresh_token", "never-issued"}});
  EXPECT_EQ(unknown.status, 204) << unknown.body;
  auto missing = post("/api/v1/auth/logout", bj::object{});
  EXPECT_TRUE(is_error(missing, 400, "invalid_argument"));
  EXPECT_EQ(message_of(missing), "refresh_token is required");
  EXPECT_TRUE(
      is_error(send("POST", "/api/v1/auth/logout", std::string("{")), 400, "invalid_argument"));
  EXPECT_TRUE(
      is_error(post("/api/v1/auth/logout", bj::object{{"refresh_token", std::string(300, 'x')}}),
               400, "invalid_argument"));
}

// --- bearer tokens ----------------------------------------------------------------------------

TEST_F(Api, MissingBearerIs401) {
  auto r = get("/api/v1/users/me");
  EXPECT_TRUE(is_error(r, 401, "unauthenticated"));
  EXPECT_EQ(message_of(r), "missing bearer token");
  EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
  // Every authenticated route checks, whatever the body.
  EXPECT_TRUE(is_error(post("/api/v1/spaces", bj::object{{"name", "x"}}), 401, "unauthenticated"));
  EXPECT_TRUE(is_error(get("/api/v1/conversations"), 401, "unauthenticated"));
  EXPECT_TRUE(is_error(get("/api/v1/users/1"), 401, "unauthenticated"));
  EXPECT_TRUE(
      is_error(patch("/api/v1/users/me", bj::object{{"name", "x"}}), 401, "unauthenticated"));
}

TEST_F(Api, NonBearerSchemesAre401) {
  auto a = account("scheme");
  for (const std::string& auth :
       std::vector<std::string>{"Basic Zm9vOmJhcg==", "Bearer", "Bearer ", "bearer " + a.access,
                                a.access, "Token " + a.access}) {
    auto res = http().raw("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
                          "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(res.rfind("HTTP/1.1 401", 0), 0u) << "Authorization: " << auth << " -> " << res;
  }
  // The same token with the right scheme works.
  auto ok = http().raw("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       a.access + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
}

TEST_F(Api, GarbageBearerIs401) {
  for (std::string token : {std::string("garbage"), std::string("a.b.c"), std::string("..."),
                            std::string("eyJhbGciOiJIUzI1NiJ9.e30."), std::string(5000, 'x')}) {
    auto r = get("/api/v1/users/me", token);
    EXPECT_TRUE(is_error(r, 401, "unauthenticated")) << token.substr(0, 40);
    EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
  }
}

TEST_F(Api, AlgNoneTokenIs401) {
  auto a = account("none");
  auto parts = split_jwt(a.access);
  for (const char* header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"NONE","typ":"JWT"})", R"({"alg":"None"})"}) {
    std::string h = b64url_encode(header);
    auto unsigned_token = get("/api/v1/users/me", h + "." + parts.payload + ".");
    EXPECT_TRUE(is_error(unsigned_token, 401, "unauthenticated")) << header;
    // Keeping the original signature does not help either.
    auto kept = get("/api/v1/users/me", h + "." + parts.payload + "." + parts.signature);
    EXPECT_TRUE(is_error(kept, 401, "unauthenticated")) << header;
  }
  // Nor does another HMAC algorithm.
  auto hs512 = get("/api/v1/users/me", b64url_encode(R"({"alg":"HS512","typ":"JWT"})") + "." +
                                           parts.payload + "." + parts.signature);
  EXPECT_TRUE(is_error(hs512, 401, "unauthenticated"));
  // The untouched token is fine.
  EXPECT_EQ(get("/api/v1/users/me", a.access).status, 200);
}

TEST_F(Api, SwappedPayloadIs401) {
  auto a = account("mallory");
  auto b = account("bob");
  ASSERT_EQ(get("/api/v1/users/me", a.access).status, 200);
  ASSERT_EQ(get("/api/v1/users/me", b.access).status, 200);
  auto pa = split_jwt(a.access);
  auto pb = split_jwt(b.access);
  // A's header and signature over B's payload.
  auto swapped = get("/api/v1/users/me", join_jwt({pa.header, pb.payload, pa.signature}));
  EXPECT_TRUE(is_error(swapped, 401, "unauthenticated"));
  EXPECT_EQ(message_of(swapped), "invalid token");
  // A hand-made payload naming B, with an expiry far in the future.
  auto forged_payload = b64url_encode(bj::serialize(
      bj::object{{"sub", b.id}, {"typ", "access"}, {"iat", 1700000000}, {"exp", 4000000000}}));
  auto forged = get("/api/v1/users/me", join_jwt({pa.header, forged_payload, pa.signature}));
  EXPECT_TRUE(is_error(forged, 401, "unauthenticated"));
}

TEST_F(Api, TamperedSignatureIs401) {
  auto a = account("tamper");
  auto parts = split_jwt(a.access);
  ASSERT_FALSE(parts.signature.empty());
  // Flip the top bit of the last character's 6-bit value: the last character of a 32-byte
  // signature carries 4 data bits (its 2 low bits are padding), so this changes the bytes.
  auto flip = [](std::string sig, std::size_t i) {
    auto pos = kB64.find(sig[i]);
    sig[i] = kB64[pos ^ 0x20];
    return sig;
  };
  auto last = parts;
  last.signature = flip(parts.signature, parts.signature.size() - 1);
  auto r = get("/api/v1/users/me", join_jwt(last));
  EXPECT_TRUE(is_error(r, 401, "unauthenticated"));
  EXPECT_EQ(message_of(r), "invalid token");
  auto first = parts;
  first.signature = flip(parts.signature, 0);
  EXPECT_TRUE(is_error(get("/api/v1/users/me", join_jwt(first)), 401, "unauthenticated"));
  auto cut = parts;
  cut.signature.pop_back();
  EXPECT_TRUE(is_error(get("/api/v1/users/me", join_jwt(cut)), 401, "unauthenticated"));
  auto empty = parts;
  empty.signature.clear();
  EXPECT_TRUE(is_error(get("/api/v1/users/me", join_jwt(empty)), 401, "unauthenticated"));
}

TEST_F(Api, TokenSignedWithAnotherKeyIs401) {
  ServerProcess other(suite_flags(kOtherSecret));
  other.start();
  Http oh(other.host(), other.port());
  auto stranger = make_account(oh, "stranger");
  ASSERT_EQ(oh.get("/api/v1/users/me", stranger.access).status, 200);
  auto r = get("/api/v1/users/me", stranger.access);
  EXPECT_TRUE(is_error(r, 401, "unauthenticated"));
  EXPECT_EQ(message_of(r), "invalid token");
  // And the other way round.
  auto local = account("local");
  EXPECT_TRUE(is_error(check(oh.get("/api/v1/users/me", local.access)), 401, "unauthenticated"));
}

// --- users ------------------------------------------------------------------------------------

TEST_F(Api, UsersMeReturnsOwnProfile) {
  auto a = account("Me Myself");
  auto r = get("/api/v1/users/me", a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(is_id(obj(r), "id"));
  EXPECT_EQ(r.str("id"), a.id);
  EXPECT_EQ(r.str("name"), "Me Myself");
  EXPECT_EQ(r.str("phone"), a.phone);
  EXPECT_EQ(r.str("avatar"), "");
  EXPECT_TRUE(obj(r).at("created_at").is_number());
}

TEST_F(Api, UpdateMeChangesNameAndAvatar) {
  auto a = account("before");
  auto r = patch("/api/v1/users/me", bj::object{{"name", "after"}}, a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.str("id"), a.id);
  EXPECT_EQ(r.str("name"), "after");
  EXPECT_EQ(r.str("phone"), a.phone);
  EXPECT_EQ(r.str("avatar"), "");

  auto av =
      patch("/api/v1/users/me", bj::object{{"avatar", "https://img.example/a.png"}}, a.access);
  ASSERT_EQ(av.status, 200) << av.body;
  EXPECT_EQ(av.str("name"), "after");  // an absent field is left alone
  EXPECT_EQ(av.str("avatar"), "https://img.example/a.png");

  auto both =
      patch("/api/v1/users/me", bj::object{{"name", "both"}, {"avatar", nullptr}}, a.access);
  ASSERT_EQ(both.status, 200) << both.body;
  EXPECT_EQ(both.str("name"), "both");
  EXPECT_EQ(both.str("avatar"), "https://img.example/a.png");  // null = unchanged

  auto nothing = patch("/api/v1/users/me", bj::object{}, a.access);
  ASSERT_EQ(nothing.status, 200);
  EXPECT_EQ(nothing.str("name"), "both");

  auto clear = patch("/api/v1/users/me", bj::object{{"avatar", ""}}, a.access);
  ASSERT_EQ(clear.status, 200);
  EXPECT_EQ(clear.str("avatar"), "");

  auto boundary = patch(
      "/api/v1/users/me",
      bj::object{{"name", std::string(64, 'n')}, {"avatar", std::string(512, 'a')}}, a.access);
  EXPECT_EQ(boundary.status, 200) << boundary.body;

  auto me = get("/api/v1/users/me", a.access);
  EXPECT_EQ(me.str("name"), std::string(64, 'n'));
  EXPECT_EQ(me.str("avatar"), std::string(512, 'a'));
  // Others see the new name.
  auto b = account("viewer");
  EXPECT_EQ(get("/api/v1/users/" + a.id, b.access).str("name"), std::string(64, 'n'));
}

TEST_F(Api, UpdateMeValidation) {
  auto a = account("valid");
  struct Case {
    bj::object body;
    const char* message;  // nullptr: any message
  };
  std::vector<Case> cases = {
      {{{"name", ""}}, "name is too short (at least 1)"},
      {{{"name", std::string(65, 'n')}}, "name is longer than 64 bytes"},
      {{{"name", "   "}}, nullptr},
      {{{"name", "a\nb"}}, "name must not contain control characters"},
      {{{"name", 12}}, "name must be a string"},
      {{{"avatar", std::string(513, 'a')}}, "avatar is longer than 512 bytes"},
      {{{"avatar", "x\ty"}}, "avatar must not contain control characters"},
      {{{"avatar", false}}, "avatar must be a string"},
      {{{"phone", "+15550000"}}, "unknown field 'phone'"},
      {{{"password", "newpassword"}}, "unknown field 'password'"},
      {{{"name", "ok"}, {"nickname", "x"}}, "unknown field 'nickname'"},
  };
  for (const auto& c : cases) {
    auto r = patch("/api/v1/users/me", c.body, a.access);
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << bj::serialize(c.body);
    if (c.message) {
      EXPECT_EQ(message_of(r), c.message) << bj::serialize(c.body);
    }
  }
  EXPECT_TRUE(is_error(send("PATCH", "/api/v1/users/me", std::string("[]"), a.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(is_error(send("PATCH", "/api/v1/users/me", std::string("{"), a.access), 400,
                       "invalid_argument"));
  // Nothing was changed by the rejected requests.
  auto me = get("/api/v1/users/me", a.access);
  EXPECT_EQ(me.str("name"), "valid");
  EXPECT_EQ(me.str("avatar"), "");
  EXPECT_EQ(me.str("phone"), a.phone);
}

TEST_F(Api, GetOtherUserHidesPhone) {
  auto a = account("asker");
  auto b = account("Other Person");
  auto r = get("/api/v1/users/" + b.id, a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(is_id(obj(r), "id"));
  EXPECT_EQ(r.str("id"), b.id);
  EXPECT_EQ(r.str("name"), "Other Person");
  EXPECT_EQ(r.str("avatar"), "");
  EXPECT_TRUE(obj(r).at("created_at").is_number());
  EXPECT_FALSE(obj(r).contains("phone")) << r.body;
  EXPECT_EQ(r.body.find(b.phone), std::string::npos) << r.body;
  // Oneself, by id, with the phone.
  auto self = get("/api/v1/users/" + a.id, a.access);
  ASSERT_EQ(self.status, 200);
  EXPECT_EQ(self.str("phone"), a.phone);
}

TEST_F(Api, GetUnknownUserIs404) {
  auto a = account("seeker");
  auto r = get("/api/v1/users/424242", a.access);
  EXPECT_TRUE(is_error(r, 404, "not_found"));
  // Above int64: still just unknown.
  EXPECT_TRUE(is_error(get("/api/v1/users/18446744073709551615", a.access), 404, "not_found"));
}

TEST_F(Api, FindUsersByNameIsCaseInsensitive) {
  std::string name = unique_name("Findme");
  auto a = account("finder");
  auto b = account(name);
  auto c = account(name);  // two users share the name

  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  auto r = get("/api/v1/users?name=" + lower, a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& users = field_arr(obj(r), "users");
  auto ids = ids_of(users, "id");
  EXPECT_EQ(ids.size(), 2u) << r.body;
  EXPECT_TRUE(contains(ids, b.id));
  EXPECT_TRUE(contains(ids, c.id));
  for (const auto& u : users) {
    EXPECT_TRUE(is_id(u.as_object(), "id"));
    EXPECT_EQ(str(u.as_object(), "name"), name);
    EXPECT_FALSE(u.as_object().contains("phone")) << "phone of another user in search";
  }
  // Upper case too; searching oneself shows one's own phone.
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  auto self = get("/api/v1/users?name=" + upper, b.access);
  ASSERT_EQ(self.status, 200);
  for (const auto& u : field_arr(obj(self), "users")) {
    if (str(u.as_object(), "id") == b.id) {
      EXPECT_EQ(str(u.as_object(), "phone"), b.phone);
    } else {
      EXPECT_FALSE(u.as_object().contains("phone"));
    }
  }
  // Whole names only: a prefix finds nothing.
  auto prefix = get("/api/v1/users?name=" + name.substr(0, name.size() - 1), a.access);
  ASSERT_EQ(prefix.status, 200);
  EXPECT_TRUE(field_arr(obj(prefix), "users").empty()) << prefix.body;
  // Percent-encoded query values are decoded.
  auto spaced_name = unique_name("Two Words ");
  auto d = account(spaced_name);
  std::string encoded = spaced_name;
  for (std::size_t i; (i = encoded.find(' ')) != std::string::npos;) encoded.replace(i, 1, "%20");
  auto spaced = get("/api/v1/users?name=" + encoded, a.access);
  ASSERT_EQ(spaced.status, 200);
  EXPECT_EQ(ids_of(field_arr(obj(spaced), "users"), "id"), std::vector<std::string>{d.id});
}

TEST_F(Api, FindUsersValidation) {
  auto a = account("searcher");
  auto missing = get("/api/v1/users", a.access);
  EXPECT_TRUE(is_error(missing, 400, "invalid_argument"));
  EXPECT_EQ(message_of(missing), "name or q is required");
  EXPECT_TRUE(is_error(get("/api/v1/users?name=", a.access), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/users?name=%20%20", a.access), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/users?name=" + std::string(65, 'n'), a.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/users?nam=x", a.access), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/users?name=x"), 401, "unauthenticated"));
}

// --- spaces -----------------------------------------------------------------------------------

TEST_F(Api, CreateSpace) {
  auto a = account("founder");
  auto r = post("/api/v1/spaces", bj::object{{"name", "Acme"}}, a.access);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(is_id(obj(r), "id"));
  EXPECT_TRUE(is_id(obj(r), "owner_id"));
  EXPECT_EQ(r.str("owner_id"), a.id);
  EXPECT_EQ(r.str("name"), "Acme");
  EXPECT_EQ(r.str("avatar"), "");
  EXPECT_TRUE(obj(r).at("created_at").is_number());

  auto av = post("/api/v1/spaces", bj::object{{"name", "Pictured"}, {"avatar", "a.png"}}, a.access);
  ASSERT_EQ(av.status, 201);
  EXPECT_EQ(av.str("avatar"), "a.png");
  EXPECT_NE(av.str("id"), r.str("id"));

  // The creator is its first member.
  auto members = get("/api/v1/spaces/" + r.str("id") + "/members", a.access);
  ASSERT_EQ(members.status, 200);
  EXPECT_EQ(ids_of(field_arr(obj(members), "members"), "user_id"), std::vector<std::string>{a.id});
}

TEST_F(Api, CreateSpaceValidation) {
  auto a = account("badspace");
  auto missing = post("/api/v1/spaces", bj::object{}, a.access);
  EXPECT_TRUE(is_error(missing, 400, "invalid_argument"));
  EXPECT_EQ(message_of(missing), "name is required");
  EXPECT_TRUE(is_error(post("/api/v1/spaces", bj::object{{"name", std::string(65, 's')}}, a.access),
                       400, "invalid_argument"));
  EXPECT_TRUE(is_error(post("/api/v1/spaces", bj::object{{"name", " "}}, a.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(
      is_error(post("/api/v1/spaces", bj::object{{"name", "ok"}, {"avatar", std::string(513, 'a')}},
                    a.access),
               400, "invalid_argument"));
  EXPECT_TRUE(is_error(post("/api/v1/spaces", bj::object{{"name", "ok"}, {"avatar", 1}}, a.access),
                       400, "invalid_argument"));
  EXPECT_TRUE(is_error(send("POST", "/api/v1/spaces", std::string("[\"x\"]"), a.access), 400,
                       "invalid_argument"));
  auto list = get("/api/v1/spaces", a.access);
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(field_arr(obj(list), "spaces").empty()) << "a rejected create left a space behind";
}

TEST_F(Api, ListMySpaces) {
  auto a = account("lister");
  auto b = account("other");
  auto fresh = get("/api/v1/spaces", a.access);
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_TRUE(field_arr(obj(fresh), "spaces").empty());

  std::string s1 = make_space(a, {}, "one");
  std::string s2 = make_space(a, {}, "two");
  std::string s3 = make_space(b, {}, "theirs");
  auto r = get("/api/v1/spaces", a.access);
  ASSERT_EQ(r.status, 200);
  const auto& spaces = field_arr(obj(r), "spaces");
  auto ids = ids_of(spaces, "id");
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_TRUE(contains(ids, s1));
  EXPECT_TRUE(contains(ids, s2));
  EXPECT_FALSE(contains(ids, s3));
  for (const auto& s : spaces) {
    EXPECT_TRUE(is_id(s.as_object(), "id"));
    EXPECT_TRUE(is_id(s.as_object(), "owner_id"));
    EXPECT_EQ(str(s.as_object(), "owner_id"), a.id);
  }
  // Joining lists it; leaving unlists it.
  join(b, s3, a);
  EXPECT_TRUE(
      contains(ids_of(field_arr(obj(get("/api/v1/spaces", a.access)), "spaces"), "id"), s3));
  ASSERT_EQ(post("/api/v1/spaces/" + s3 + "/leave", bj::object{}, a.access).status, 204);
  EXPECT_FALSE(
      contains(ids_of(field_arr(obj(get("/api/v1/spaces", a.access)), "spaces"), "id"), s3));
}

TEST_F(Api, GetSpace) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member}, "Visible");

  auto r = get("/api/v1/spaces/" + sid, member.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.str("id"), sid);
  EXPECT_EQ(r.str("name"), "Visible");
  EXPECT_EQ(r.str("owner_id"), owner.id);
  EXPECT_TRUE(is_id(obj(r), "owner_id"));
  EXPECT_EQ(get("/api/v1/spaces/" + sid, owner.access).status, 200);

  // To an outsider the space does not exist: the same answer as for a missing id.
  auto forbidden = get("/api/v1/spaces/" + sid, outsider.access);
  EXPECT_TRUE(is_error(forbidden, 404, "not_found"));
  EXPECT_EQ(message_of(forbidden), message_of(get("/api/v1/spaces/987654321", outsider.access)));
  EXPECT_EQ(forbidden.body.find("Visible"), std::string::npos) << "leaked the space to an outsider";
  EXPECT_TRUE(is_error(get("/api/v1/spaces/987654321", owner.access), 404, "not_found"));
}

TEST_F(Api, UpdateSpace) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member}, "Old");

  auto r = patch("/api/v1/spaces/" + sid, bj::object{{"name", "New"}}, owner.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.str("id"), sid);
  EXPECT_EQ(r.str("name"), "New");
  EXPECT_EQ(r.str("owner_id"), owner.id);
  auto av = patch("/api/v1/spaces/" + sid, bj::object{{"avatar", "logo.png"}}, owner.access);
  ASSERT_EQ(av.status, 200);
  EXPECT_EQ(av.str("name"), "New");
  EXPECT_EQ(av.str("avatar"), "logo.png");
  auto none = patch("/api/v1/spaces/" + sid, bj::object{}, owner.access);
  ASSERT_EQ(none.status, 200);
  EXPECT_EQ(none.str("name"), "New");
  EXPECT_EQ(get("/api/v1/spaces/" + sid, member.access).str("name"), "New");

  auto by_member = patch("/api/v1/spaces/" + sid, bj::object{{"name", "Hijack"}}, member.access);
  EXPECT_TRUE(is_error(by_member, 403, "forbidden"));
  EXPECT_EQ(message_of(by_member), "only admins and the owner may change a space");
  EXPECT_TRUE(
      is_error(patch("/api/v1/spaces/" + sid, bj::object{{"name", "Hijack"}}, outsider.access), 404,
               "not_found"));
  EXPECT_TRUE(is_error(patch("/api/v1/spaces/987654321", bj::object{{"name", "x"}}, owner.access),
                       404, "not_found"));
  EXPECT_TRUE(is_error(patch("/api/v1/spaces/" + sid, bj::object{{"name", ""}}, owner.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(is_error(
      patch("/api/v1/spaces/" + sid, bj::object{{"name", std::string(65, 'x')}}, owner.access), 400,
      "invalid_argument"));
  EXPECT_TRUE(is_error(
      patch("/api/v1/spaces/" + sid, bj::object{{"avatar", std::string(513, 'x')}}, owner.access),
      400, "invalid_argument"));
  EXPECT_EQ(get("/api/v1/spaces/" + sid, owner.access).str("name"), "New");
}

TEST_F(Api, JoinSpaceIsIdempotent) {
  auto owner = account("owner");
  auto joiner = account("joiner");
  std::string sid = make_space(owner, {}, "Open");
  // Private (the default): joining by id alone answers as for a missing space.
  EXPECT_TRUE(is_error(post("/api/v1/spaces/" + sid + "/join", bj::object{}, joiner.access), 404,
                       "not_found"));
  ASSERT_EQ(patch("/api/v1/spaces/" + sid, bj::object{{"discoverable", true}}, owner.access).status,
            200);
  for (int i = 0; i < 2; ++i) {
    auto r = post("/api/v1/spaces/" + sid + "/join", bj::object{}, joiner.access);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.str("id"), sid);
    EXPECT_EQ(r.str("name"), "Open");
    EXPECT_EQ(r.str("owner_id"), owner.id);
  }
  // A body-less POST works the same.
  EXPECT_EQ(send("POST", "/api/v1/spaces/" + sid + "/join", std::nullopt, joiner.access).status,
            200);
  auto members = get("/api/v1/spaces/" + sid + "/members", owner.access);
  ASSERT_EQ(members.status, 200);
  auto ids = ids_of(field_arr(obj(members), "members"), "user_id");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), joiner.id), 1);
  EXPECT_EQ(ids.size(), 2u);
  // The owner joining its own space changes nothing either.
  EXPECT_EQ(post("/api/v1/spaces/" + sid + "/join", bj::object{}, owner.access).status, 200);
  EXPECT_TRUE(is_error(post("/api/v1/spaces/987654321/join", bj::object{}, joiner.access), 404,
                       "not_found"));
}

TEST_F(Api, LeaveSpace) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member});

  auto r = post("/api/v1/spaces/" + sid + "/leave", bj::object{}, member.access);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(is_error(get("/api/v1/spaces/" + sid, member.access), 404, "not_found"));
  auto members = get("/api/v1/spaces/" + sid + "/members", owner.access);
  EXPECT_FALSE(contains(ids_of(field_arr(obj(members), "members"), "user_id"), member.id));
  // Leaving twice: no longer a member.
  EXPECT_TRUE(is_error(post("/api/v1/spaces/" + sid + "/leave", bj::object{}, member.access), 404,
                       "not_found"));

  auto by_owner = post("/api/v1/spaces/" + sid + "/leave", bj::object{}, owner.access);
  EXPECT_TRUE(is_error(by_owner, 409, "conflict"));
  EXPECT_EQ(message_of(by_owner),
            "the owner cannot leave their space: transfer the ownership first");
  EXPECT_EQ(get("/api/v1/spaces/" + sid, owner.access).status, 200);

  EXPECT_TRUE(is_error(post("/api/v1/spaces/" + sid + "/leave", bj::object{}, outsider.access), 404,
                       "not_found"));
  EXPECT_TRUE(is_error(post("/api/v1/spaces/987654321/leave", bj::object{}, member.access), 404,
                       "not_found"));
  // Rejoining (by a new invitation) works.
  join(owner, sid, member);
  EXPECT_EQ(get("/api/v1/spaces/" + sid, member.access).status, 200);
}

TEST_F(Api, SpaceMembersPaging) {
  auto owner = account("Owner");
  std::vector<Account> joiners;
  for (int i = 0; i < 4; ++i) joiners.push_back(account("joiner" + std::to_string(i)));
  std::vector<const Account*> ptrs;
  for (const auto& j : joiners) ptrs.push_back(&j);
  std::string sid = make_space(owner, ptrs);
  std::string base = "/api/v1/spaces/" + sid + "/members";

  // Default page: everyone, ascending user ids, no next page.
  auto all = get(base, joiners[0].access);
  ASSERT_EQ(all.status, 200) << all.body;
  const auto& members = field_arr(obj(all), "members");
  ASSERT_EQ(members.size(), 5u);
  EXPECT_TRUE(obj(all).at("next_after").is_null());
  std::set<std::string> expected{owner.id};
  for (const auto& j : joiners) expected.insert(j.id);
  for (const auto& m : members) {
    const auto& o = m.as_object();
    EXPECT_TRUE(is_id(o, "user_id"));
    EXPECT_FALSE(str(o, "name").empty());
    EXPECT_TRUE(o.at("avatar").is_string());
    EXPECT_TRUE(o.at("joined_at").is_number());
    EXPECT_FALSE(o.contains("phone")) << "member list leaks phone numbers";
  }
  for (const auto& m : members) {
    if (str(m.as_object(), "user_id") == owner.id) {
      EXPECT_EQ(str(m.as_object(), "name"), "Owner");
    }
  }

  std::vector<std::size_t> sizes;
  auto walked = walk_members(base, owner.access, 2, &sizes);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(std::set<std::string>(walked.begin(), walked.end()), expected);
  EXPECT_EQ(walked.size(), 5u);
  auto sorted = walked;
  std::sort(sorted.begin(), sorted.end(), [](const std::string& x, const std::string& y) {
    return std::stoull(x) < std::stoull(y);
  });
  EXPECT_EQ(walked, sorted) << "members are ordered by user id";

  // A full last page still names a next page; that page is empty and ends the walk.
  sizes.clear();
  walked = walk_members(base, owner.access, 5, &sizes);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{5, 0}));
  auto past = get(base + "?after=" + walked.back(), owner.access);
  ASSERT_EQ(past.status, 200);
  EXPECT_TRUE(field_arr(obj(past), "members").empty());
  EXPECT_TRUE(obj(past).at("next_after").is_null());
  auto beyond = get(base + "?after=18446744073709551615&limit=100", owner.access);
  ASSERT_EQ(beyond.status, 200) << beyond.body;
  EXPECT_TRUE(field_arr(obj(beyond), "members").empty());
  EXPECT_EQ(field_arr(obj(get(base + "?limit=100", owner.access)), "members").size(), 5u);
  EXPECT_EQ(field_arr(obj(get(base + "?limit=1", owner.access)), "members").size(), 1u);

  for (const char* q : {"?limit=0", "?limit=101", "?limit=-1", "?limit=abc", "?after=x",
                        "?after=-5", "?limit=99999999999999999999999"}) {
    auto r = get(base + q, owner.access);
    EXPECT_TRUE(is_error(r, 400, "invalid_argument")) << q;
  }
  EXPECT_EQ(message_of(get(base + "?limit=101", owner.access)), "limit must be 1..100");

  auto outsider = account("outsider");
  EXPECT_TRUE(is_error(get(base, outsider.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/spaces/987654321/members", owner.access), 404, "not_found"));
}

// --- channels ---------------------------------------------------------------------------------

TEST_F(Api, CreateChannel) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member});

  // Any space member may create a channel; the creator owns and joins it.
  auto r =
      post("/api/v1/spaces/" + sid + "/channels", bj::object{{"name", "random"}}, member.access);
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& c = obj(r);
  EXPECT_TRUE(is_id(c, "id"));
  EXPECT_TRUE(is_id(c, "space_id"));
  EXPECT_TRUE(is_id(c, "owner_id"));
  EXPECT_EQ(r.str("space_id"), sid);
  EXPECT_EQ(r.str("owner_id"), member.id);
  EXPECT_EQ(r.str("name"), "random");
  EXPECT_EQ(r.str("avatar"), "");
  EXPECT_TRUE(c.at("created_at").is_number());
  ASSERT_TRUE(c.contains("last_seq"));
  EXPECT_EQ(c.at("last_seq").to_number<std::int64_t>(), 0);
  auto members = get("/api/v1/channels/" + r.str("id") + "/members", member.access);
  ASSERT_EQ(members.status, 200) << members.body;
  EXPECT_EQ(ids_of(field_arr(obj(members), "members"), "user_id"),
            std::vector<std::string>{member.id});

  auto av = post("/api/v1/spaces/" + sid + "/channels",
                 bj::object{{"name", "pics"}, {"avatar", "p.png"}}, owner.access);
  ASSERT_EQ(av.status, 201);
  EXPECT_EQ(av.str("avatar"), "p.png");

  auto forbidden = post("/api/v1/spaces/" + sid + "/channels", bj::object{{"name", "intruder"}},
                        outsider.access);
  EXPECT_TRUE(is_error(forbidden, 404, "not_found"));
  EXPECT_TRUE(
      is_error(post("/api/v1/spaces/987654321/channels", bj::object{{"name", "x"}}, owner.access),
               404, "not_found"));
  EXPECT_TRUE(is_error(post("/api/v1/spaces/" + sid + "/channels", bj::object{}, owner.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(is_error(post("/api/v1/spaces/" + sid + "/channels",
                            bj::object{{"name", std::string(65, 'c')}}, owner.access),
                       400, "invalid_argument"));
  EXPECT_TRUE(
      is_error(post("/api/v1/spaces/" + sid + "/channels",
                    bj::object{{"name", "ok"}, {"avatar", std::string(513, 'a')}}, owner.access),
               400, "invalid_argument"));
  auto list = get("/api/v1/spaces/" + sid + "/channels", owner.access);
  EXPECT_EQ(field_arr(obj(list), "channels").size(), 2u) << list.body;
}

TEST_F(Api, ListChannels) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member});
  auto empty = get("/api/v1/spaces/" + sid + "/channels", member.access);
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_TRUE(field_arr(obj(empty), "channels").empty());

  std::string c1 = make_channel(owner, sid, "one");
  std::string c2 = make_channel(member, sid, "two");
  std::string other_space = make_space(outsider, {});
  make_channel(outsider, other_space, "elsewhere");

  // A space member sees every channel of the space, joined or not.
  auto r = get("/api/v1/spaces/" + sid + "/channels", member.access);
  ASSERT_EQ(r.status, 200);
  const auto& channels = field_arr(obj(r), "channels");
  EXPECT_EQ(ids_of(channels, "id"), (std::vector<std::string>{c1, c2}));
  for (const auto& c : channels) {
    EXPECT_EQ(str(c.as_object(), "space_id"), sid);
    EXPECT_TRUE(is_id(c.as_object(), "owner_id"));
  }
  EXPECT_TRUE(
      is_error(get("/api/v1/spaces/" + sid + "/channels", outsider.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/spaces/987654321/channels", owner.access), 404, "not_found"));
}

TEST_F(Api, GetChannel) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member});
  std::string cid = make_channel(owner, sid, "meta");

  // Space membership suffices to read a channel's metadata.
  auto r = get("/api/v1/channels/" + cid, member.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.str("id"), cid);
  EXPECT_EQ(r.str("space_id"), sid);
  EXPECT_EQ(r.str("name"), "meta");
  EXPECT_EQ(r.str("owner_id"), owner.id);
  EXPECT_EQ(obj(r).at("last_seq").to_number<std::int64_t>(), 0);

  auto forbidden = get("/api/v1/channels/" + cid, outsider.access);
  EXPECT_TRUE(is_error(forbidden, 404, "not_found"));
  EXPECT_EQ(forbidden.body.find("meta"), std::string::npos);
  EXPECT_TRUE(is_error(get("/api/v1/channels/987654321", owner.access), 404, "not_found"));
}

TEST_F(Api, JoinChannel) {
  auto owner = account("owner");
  auto member = account("member");
  auto outsider = account("outsider");
  std::string sid = make_space(owner, {&member});
  std::string cid = make_channel(owner, sid, "joinable");

  for (int i = 0; i < 2; ++i) {  // idempotent
    auto r = post("/api/v1/channels/" + cid + "/join", bj::object{}, member.access);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.str("id"), cid);
    EXPECT_EQ(r.str("space_id"), sid);
    EXPECT_EQ(r.str("name"), "joinable");
  }
  auto members = get("/api/v1/channels/" + cid + "/members", member.access);
  ASSERT_EQ(members.status, 200);
  auto ids = ids_of(field_arr(obj(members), "members"), "user_id");
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_TRUE(contains(ids, owner.id));
  EXPECT_TRUE(contains(ids, member.id));

  auto forbidden = post("/api/v1/channels/" + cid + "/join", bj::object{}, outsider.access);
  EXPECT_TRUE(is_error(forbidden, 404, "not_found"));
  EXPECT_EQ(message_of(forbidden), "channel not found");
  EXPECT_TRUE(is_error(post("/api/v1/channels/987654321/join", bj::object{}, member.access), 404,
                       "not_found"));
  auto convs = get("/api/v1/conversations", member.access);
  ASSERT_EQ(convs.status, 200);
  bool listed = false;
  for (const auto& c : field_arr(obj(convs), "conversations")) {
    listed = listed || str(c.as_object(), "conversation") == "channel:" + cid;
  }
  EXPECT_TRUE(listed) << "a joined channel is a conversation: " << convs.body;
  // After joining the space, the outsider may join the channel.
  join(owner, sid, outsider);
  EXPECT_EQ(post("/api/v1/channels/" + cid + "/join", bj::object{}, outsider.access).status, 200);
}

TEST_F(Api, LeaveChannel) {
  auto owner = account("owner");
  auto member = account("member");
  std::string sid = make_space(owner, {&member});
  std::string cid = make_channel(owner, sid, "leavable");
  ASSERT_EQ(post("/api/v1/channels/" + cid + "/join", bj::object{}, member.access).status, 200);
  ASSERT_EQ(get("/api/v1/channels/" + cid + "/members", member.access).status, 200);

  auto r = post("/api/v1/channels/" + cid + "/leave", bj::object{}, member.access);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  auto members = get("/api/v1/channels/" + cid + "/members", member.access);
  EXPECT_TRUE(is_error(members, 403, "forbidden"));
  EXPECT_EQ(message_of(members), "not a member of this channel");
  EXPECT_TRUE(
      is_error(get("/api/v1/channels/" + cid + "/messages", member.access), 404, "not_found"));
  auto seen = get("/api/v1/channels/" + cid + "/members", owner.access);
  EXPECT_FALSE(contains(ids_of(field_arr(obj(seen), "members"), "user_id"), member.id));
  auto convs = get("/api/v1/conversations", member.access);
  ASSERT_EQ(convs.status, 200);
  for (const auto& c : field_arr(obj(convs), "conversations")) {
    EXPECT_NE(str(c.as_object(), "conversation"), "channel:" + cid) << "left channel still listed";
  }
  // Still a space member: the metadata stays readable, and rejoining works.
  EXPECT_EQ(get("/api/v1/channels/" + cid, member.access).status, 200);
  EXPECT_TRUE(is_error(post("/api/v1/channels/" + cid + "/leave", bj::object{}, member.access), 403,
                       "forbidden"));
  EXPECT_TRUE(is_error(post("/api/v1/channels/987654321/leave", bj::object{}, member.access), 404,
                       "not_found"));
  EXPECT_EQ(post("/api/v1/channels/" + cid + "/join", bj::object{}, member.access).status, 200);
  EXPECT_EQ(get("/api/v1/channels/" + cid + "/members", member.access).status, 200);
}

TEST_F(Api, ChannelMembersPaging) {
  auto owner = account("owner");
  std::vector<Account> joiners;
  for (int i = 0; i < 4; ++i) joiners.push_back(account("cm" + std::to_string(i)));
  std::vector<const Account*> ptrs;
  for (const auto& j : joiners) ptrs.push_back(&j);
  auto lurker = account("lurker");  // space member, not in the channel
  ptrs.push_back(&lurker);
  std::string sid = make_space(owner, ptrs);
  std::string cid = make_channel(owner, sid, "paged");
  for (const auto& j : joiners) {
    ASSERT_EQ(post("/api/v1/channels/" + cid + "/join", bj::object{}, j.access).status, 200);
  }
  std::string base = "/api/v1/channels/" + cid + "/members";

  std::set<std::string> expected{owner.id};
  for (const auto& j : joiners) expected.insert(j.id);
  std::vector<std::size_t> sizes;
  auto walked = walk_members(base, joiners[2].access, 2, &sizes);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(std::set<std::string>(walked.begin(), walked.end()), expected);
  EXPECT_EQ(walked.size(), 5u);

  auto all = get(base, owner.access);
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(field_arr(obj(all), "members").size(), 5u);
  EXPECT_TRUE(obj(all).at("next_after").is_null());
  for (const auto& m : field_arr(obj(all), "members")) {
    EXPECT_TRUE(m.as_object().at("joined_at").is_number());
    EXPECT_FALSE(m.as_object().contains("phone"));
  }
  auto past = get(base + "?after=" + walked.back() + "&limit=3", owner.access);
  ASSERT_EQ(past.status, 200);
  EXPECT_TRUE(field_arr(obj(past), "members").empty());
  EXPECT_TRUE(obj(past).at("next_after").is_null());

  for (const char* q : {"?limit=0", "?limit=101", "?limit=x", "?after=abc"}) {
    EXPECT_TRUE(is_error(get(base + q, owner.access), 400, "invalid_argument")) << q;
  }
  EXPECT_TRUE(is_error(get(base, lurker.access), 403, "forbidden"));
  auto outsider = account("outsider");
  EXPECT_TRUE(is_error(get(base, outsider.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/channels/987654321/members", owner.access), 404, "not_found"));
}

TEST_F(Api, LeavingSpaceLeavesItsChannels) {
  auto owner = account("owner");
  auto member = account("member");
  std::string sid = make_space(owner, {&member});
  std::string c1 = make_channel(owner, sid, "a");
  std::string c2 = make_channel(member, sid, "b");  // even one the member created
  ASSERT_EQ(post("/api/v1/channels/" + c1 + "/join", bj::object{}, member.access).status, 200);
  ASSERT_EQ(post("/api/v1/channels/" + c2 + "/join", bj::object{}, owner.access).status, 200);
  ASSERT_EQ(get("/api/v1/channels/" + c1 + "/messages", member.access).status, 200);
  ASSERT_EQ(get("/api/v1/channels/" + c2 + "/messages", member.access).status, 200);

  ASSERT_EQ(post("/api/v1/spaces/" + sid + "/leave", bj::object{}, member.access).status, 204);
  for (const auto& cid : {c1, c2}) {
    auto seen = get("/api/v1/channels/" + cid + "/members", owner.access);
    ASSERT_EQ(seen.status, 200) << seen.body;
    EXPECT_FALSE(contains(ids_of(field_arr(obj(seen), "members"), "user_id"), member.id)) << cid;
    EXPECT_TRUE(is_error(get("/api/v1/channels/" + cid, member.access), 404, "not_found"));
    EXPECT_TRUE(
        is_error(get("/api/v1/channels/" + cid + "/members", member.access), 404, "not_found"));
    EXPECT_TRUE(
        is_error(get("/api/v1/channels/" + cid + "/messages", member.access), 404, "not_found"));
    EXPECT_TRUE(is_error(post("/api/v1/channels/" + cid + "/join", bj::object{}, member.access),
                         404, "not_found"));
  }
  auto convs = get("/api/v1/conversations", member.access);
  ASSERT_EQ(convs.status, 200);
  EXPECT_TRUE(field_arr(obj(convs), "conversations").empty()) << convs.body;
  EXPECT_TRUE(field_arr(obj(convs), "spaces").empty()) << convs.body;
  // Rejoining the space does not bring the channel memberships back.
  join(owner, sid, member);
  EXPECT_TRUE(
      is_error(get("/api/v1/channels/" + c1 + "/members", member.access), 403, "forbidden"));
  EXPECT_EQ(get("/api/v1/channels/" + c1, member.access).status, 200);
}

// Channel membership must stay a subset of space membership even when a join of a channel
// races the user's leaving of its space. SpaceService::join_channel checks the space
// membership and inserts the channel membership in two separate Store calls, so a leave that
// commits between them leaves the user in the channel: it keeps reading the channel's messages.
TEST_F(Api, JoinChannelRacingLeaveSpaceLeavesNoStaleMembership) {
  auto owner = account("owner");
  auto member = account("racer");
  std::string sid = make_space(owner, {});
  std::string cid = make_channel(owner, sid, "raced");
  ASSERT_EQ(patch("/api/v1/spaces/" + sid, bj::object{{"discoverable", true}}, owner.access).status,
            200);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(post("/api/v1/spaces/" + sid + "/join", bj::object{}, member.access).status, 200);
    std::thread join([&] {
      try {
        http().post("/api/v1/channels/" + cid + "/join", bj::object{}, member.access);
      } catch (const std::exception&) {
      }
    });
    std::thread leave([&] {
      try {
        http().post("/api/v1/spaces/" + sid + "/leave", bj::object{}, member.access);
      } catch (const std::exception&) {
      }
    });
    join.join();
    leave.join();
    bool in_space = get("/api/v1/spaces/" + sid, member.access).status == 200;
    auto members = get("/api/v1/channels/" + cid + "/members", owner.access);
    ASSERT_EQ(members.status, 200);
    bool in_channel = contains(ids_of(field_arr(obj(members), "members"), "user_id"), member.id);
    if (!in_space && in_channel) {
      auto history = get("/api/v1/channels/" + cid + "/messages", member.access);
      ADD_FAILURE() << "iteration " << i
                    << ": not a space member but still a channel member; its history answers "
                    << history.status;
      return;
    }
    if (in_space) {
      ASSERT_EQ(post("/api/v1/spaces/" + sid + "/leave", bj::object{}, member.access).status, 204);
    }
  }
}

// --- messages and conversations (the messaging suite covers their content) --------------------

TEST_F(Api, ChannelMessagesOfFreshChannel) {
  auto owner = account("owner");
  auto member = account("member");
  std::string sid = make_space(owner, {&member});
  std::string cid = make_channel(owner, sid, "quiet");
  std::string base = "/api/v1/channels/" + cid + "/messages";

  auto r = get(base, owner.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(field_arr(obj(r), "messages").empty());
  for (const char* q : {"?limit=1", "?limit=100", "?before_seq=10", "?after_seq=0&limit=5"}) {
    auto p = get(base + q, owner.access);
    EXPECT_EQ(p.status, 200) << q << " " << p.body;
    EXPECT_TRUE(field_arr(obj(p), "messages").empty()) << q;
  }
  // Nobody outside the channel may read it, nor tell it from a missing one.
  auto forbidden = get(base, member.access);
  EXPECT_TRUE(is_error(forbidden, 404, "not_found"));
  auto outsider = account("outsider");
  EXPECT_TRUE(is_error(get(base, outsider.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/channels/987654321/messages", owner.access), 404, "not_found"));

  for (const char* q : {"?limit=0", "?limit=101", "?limit=5000", "?before_seq=5&after_seq=1",
                        "?before_seq=x", "?after_seq=-1", "?limit=abc"}) {
    auto bad = get(base + q, owner.access);
    EXPECT_TRUE(is_error(bad, 400, "invalid_argument")) << q;
  }
  EXPECT_EQ(message_of(get(base + "?limit=0", owner.access)), "limit must be 1..100");
  EXPECT_EQ(message_of(get(base + "?before_seq=5&after_seq=1", owner.access)),
            "give before_seq or after_seq, not both");
}

TEST_F(Api, DmMessages) {
  auto a = account("dm-a");
  auto b = account("dm-b");
  auto r = get("/api/v1/dms/" + b.id + "/messages", a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(field_arr(obj(r), "messages").empty());
  auto self = get("/api/v1/dms/" + a.id + "/messages", a.access);
  EXPECT_TRUE(is_error(self, 400, "invalid_argument"));
  EXPECT_EQ(message_of(self), "no conversation with yourself");
  EXPECT_TRUE(is_error(get("/api/v1/dms/987654321/messages", a.access), 404, "not_found"));
  EXPECT_TRUE(is_error(get("/api/v1/dms/" + b.id + "/messages?limit=0", a.access), 400,
                       "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/dms/" + b.id + "/messages?before_seq=2&after_seq=1", a.access),
                       400, "invalid_argument"));
  EXPECT_TRUE(is_error(get("/api/v1/dms/" + b.id + "/messages"), 401, "unauthenticated"));
}

TEST_F(Api, Conversations) {
  auto a = account("convs");
  auto fresh = get("/api/v1/conversations", a.access);
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_TRUE(field_arr(obj(fresh), "conversations").empty());
  EXPECT_TRUE(field_arr(obj(fresh), "spaces").empty());

  std::string sid = make_space(a, {});
  std::string cid = make_channel(a, sid, "talk");
  auto r = get("/api/v1/conversations", a.access);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& spaces = field_arr(obj(r), "spaces");
  ASSERT_EQ(spaces.size(), 1u) << r.body;
  EXPECT_TRUE(is_id(spaces[0].as_object(), "space_id"));
  EXPECT_EQ(str(spaces[0].as_object(), "space_id"), sid);
  EXPECT_EQ(spaces[0].as_object().at("unread").to_number<std::int64_t>(), 0);
  const auto& convs = field_arr(obj(r), "conversations");
  ASSERT_EQ(convs.size(), 1u) << r.body;
  const auto& c = convs[0].as_object();
  EXPECT_EQ(str(c, "conversation"), "channel:" + cid);
  EXPECT_EQ(str(c, "kind"), "channel");
  EXPECT_EQ(str(c, "name"), "talk");
  EXPECT_TRUE(is_id(c, "channel_id"));
  EXPECT_EQ(str(c, "channel_id"), cid);
  EXPECT_EQ(str(c, "space_id"), sid);
  EXPECT_EQ(c.at("unread").to_number<std::int64_t>(), 0);
  EXPECT_EQ(c.at("last_seq").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(c.at("last_message").is_null());
  EXPECT_TRUE(is_error(get("/api/v1/conversations"), 401, "unauthenticated"));
}

// --- rate limiting, token expiry, persistence: their own servers --------------------------------

// The static web client next to the API: files, the SPA fallback, and no way out of the root.
TEST(ApiStatic, ServesFilesButNeverOutsideTheRoot) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/imd-api-web-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path base = tmpl;
  fs::path root = base / "dist";
  fs::create_directories(root / "assets");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  write(root / "index.html", "<html>index</html>");
  write(root / "app.js", "console.log(1)");
  write(root / "assets" / "app-1234.js", "hashed()");
  write(base / "secret.txt", "TOP-SECRET");

  {
    ServerProcess server({"--web-root", root.string()});
    server.start();
    Http h(server.host(), server.port());
    auto index = h.get("/");
    EXPECT_EQ(index.status, 200);
    EXPECT_EQ(index.body, "<html>index</html>");
    EXPECT_EQ(index.header("Content-Type").rfind("text/html", 0), 0u);
    // The page may load only its own files and talk only to its origin, and nobody may frame it.
    const auto csp = index.header("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(index.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(index.header("X-Frame-Options"), "DENY");
    auto js = h.get("/app.js");
    EXPECT_EQ(js.status, 200);
    EXPECT_EQ(js.body, "console.log(1)");
    EXPECT_EQ(js.header("Content-Type").rfind("text/javascript", 0), 0u);
    EXPECT_EQ(js.header("Cache-Control"), "no-cache");
    auto hashed = h.get("/assets/app-1234.js");
    EXPECT_EQ(hashed.status, 200);
    EXPECT_NE(hashed.header("Cache-Control").find("immutable"), std::string::npos);
    // Client-side routes fall back to index.html; missing files with an extension do not.
    auto route = h.get("/spaces/123/channels");
    EXPECT_EQ(route.status, 200);
    EXPECT_EQ(route.body, "<html>index</html>");
    EXPECT_TRUE(is_error(h.get("/missing.png"), 404, "not_found"));
    // API paths never fall back to the web client.
    EXPECT_TRUE(is_error(h.get("/api/v1/nope"), 404, "not_found"));
    // Traversal, raw or percent-encoded.
    for (const char* target :
         {"/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt",
          "/..%2fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"}) {
      auto r = h.get(target);
      EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << target;
      EXPECT_TRUE(is_error(r, 404, "not_found")) << target << " -> " << r.status << " " << r.body;
    }
    auto head = h.request("HEAD", "/app.js");
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());
  }
  std::error_code ec;
  fs::remove_all(base, ec);
}

TEST(ApiRateLimit, AuthEndpointsAreLimitedPerIp) {
  // 60 per minute: a burst of 10, then one per second.
  ServerProcess server({"--limits-auth-rate-per-min", "60"});
  server.start();
  Http h(server.host(), server.port());
  int limited = 0;
  HttpResult last;
  for (int i = 0; i < 20; ++i) {
    auto r =
        h.post("/api/v1/auth/login", bj::object{{"phone", "+15550000"}, {"password", "password1"}});
    ASSERT_TRUE(r.status == 401 || r.status == 429) << r.body;
    if (r.status == 429) {
      ++limited;
      last = r;
    }
  }
  EXPECT_GE(limited, 5);
  EXPECT_EQ(last.error_code(), "too_many_requests");
  EXPECT_EQ(last.header("Retry-After"), "1");
  // Other endpoints are not held back by the auth limit.
  EXPECT_EQ(h.get("/healthz").status, 200);
  EXPECT_TRUE(is_error(h.get("/api/v1/users/me"), 401, "unauthenticated"));
}

// Expiry end to end without waiting for it: the server's own token lapses after the configured
// lifetime (checked with the server's key on a clock moved ahead), and a token of that key that
// has expired is refused with 401 and WWW-Authenticate while the refresh token still opens a new
// session. How expiry follows the clock is AuthService's test (tests/unit/auth_service_test.cpp).
TEST(ApiExpiry, ExpiredAccessTokenIs401ButRefreshWorks) {
  ServerProcess server({"--auth-jwt-secret", kSecret, "--auth-access-ttl-s", "10"});
  server.start();
  Http h(server.host(), server.port());
  auto a = make_account(h, "shortlived");
  const Millis before = SystemClock().now_ms();
  auto login =
      h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  ASSERT_EQ(login.status, 200);
  EXPECT_EQ(login.json.as_object().at("expires_in").to_number<std::int64_t>(), 10);
  const std::string access = login.str("access_token");
  ASSERT_EQ(h.get("/api/v1/users/me", access).status, 200);

  testing::FakeClock clock;
  TokenIssuer server_key(clock, kSecret, 10);
  clock.set(before + 9'000);
  EXPECT_TRUE(server_key.verify(access).ok());
  clock.set(SystemClock().now_ms() + 10'000);
  EXPECT_FALSE(server_key.verify(access).ok());

  clock.set(SystemClock().now_ms() - 60'000);
  auto r = h.get("/api/v1/users/me", server_key.issue(std::stoull(a.id)));
  EXPECT_TRUE(is_error(r, 401, "unauthenticated"));
  EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
  // The refresh token outlives the access token.
  auto refreshed = h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  EXPECT_EQ(h.get("/api/v1/users/me", refreshed.str("access_token")).status, 200);
}

TEST(ApiPersistence, DataSurvivesRestart) {
  ServerProcess server;
  server.start();
  Account a;
  std::string sid, cid;
  {
    Http h(server.host(), server.port());
    a = make_account(h, "durable");
    auto s = h.post("/api/v1/spaces", bj::object{{"name", "Keeps"}}, a.access);
    ASSERT_EQ(s.status, 201) << s.body;
    sid = s.str("id");
    auto c = h.post("/api/v1/spaces/" + sid + "/channels", bj::object{{"name", "kept"}}, a.access);
    ASSERT_EQ(c.status, 201) << c.body;
    cid = c.str("id");
    ASSERT_EQ(h.patch("/api/v1/users/me", bj::object{{"avatar", "me.png"}}, a.access).status, 200);
  }

  server.restart();
  Http h(server.host(), server.port());
  auto login =
      h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  ASSERT_EQ(login.status, 200) << login.body;
  std::string access = login.str("access_token");
  EXPECT_EQ(str(login.json.as_object().at("user").as_object(), "id"), a.id);
  EXPECT_EQ(str(login.json.as_object().at("user").as_object(), "avatar"), "me.png");

  auto spaces = h.get("/api/v1/spaces", access);
  ASSERT_EQ(spaces.status, 200) << spaces.body;
  const auto& list = spaces.json.as_object().at("spaces").as_array();
  ASSERT_EQ(list.size(), 1u) << spaces.body;
  EXPECT_EQ(str(list[0].as_object(), "id"), sid);
  EXPECT_EQ(str(list[0].as_object(), "name"), "Keeps");
  EXPECT_EQ(str(list[0].as_object(), "owner_id"), a.id);
  auto channels = h.get("/api/v1/spaces/" + sid + "/channels", access);
  ASSERT_EQ(channels.status, 200);
  EXPECT_EQ(ids_of(channels.json.as_object().at("channels").as_array(), "id"),
            std::vector<std::string>{cid});
  EXPECT_EQ(h.get("/api/v1/channels/" + cid + "/members", access).status, 200);

  // Tokens issued before the restart stay valid: the generated key is kept in the data dir.
  EXPECT_EQ(h.get("/api/v1/users/me", a.access).status, 200);
  auto refreshed = h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", a.refresh}});
  EXPECT_EQ(refreshed.status, 200) << refreshed.body;
  // New ids do not collide with the old ones.
  auto s2 = h.post("/api/v1/spaces", bj::object{{"name", "After"}}, access);
  ASSERT_EQ(s2.status, 201);
  EXPECT_NE(s2.str("id"), sid);
  EXPECT_NE(s2.str("id"), cid);
}

}  // namespace
}  // namespace imd::test
