#include "accounts.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "clock.hpp"

namespace imbench {

namespace bj = boost::json;

namespace {

constexpr const char* kPassword = "imbench-password-1";

std::string field(const std::string& body, std::initializer_list<const char*> path) {
  bj::value v = bj::parse(body);
  for (const char* k : path) v = v.as_object().at(k);
  return std::string(v.as_string());
}

}  // namespace

void read_session(const std::string& body, Account& a) {
  bj::object o = bj::parse(body).as_object();
  a.token = std::string(o.at("access_token").as_string());
  a.refresh_token = std::string(o.at("refresh_token").as_string());
  a.expires_in_s = o.at("expires_in").to_number<std::int64_t>();
}

Rest::Rest(Context& ctx, Workers& workers, std::size_t connections)
    : ctx_(ctx),
      workers_(workers),
      pool_(workers.io(0), ctx.server, ctx.host_header, connections) {}

Rest::~Rest() {
  close();
}

void Rest::close() {
  pool_.close();
}

void Rest::batch(std::size_t n, const std::function<HttpRequest(std::size_t)>& make,
                 int want_status, const std::function<void(std::size_t, const std::string&)>& on_ok,
                 const char* what) {
  std::size_t done = 0;
  std::string error;
  std::size_t next = 0;
  constexpr std::size_t kWindow = 512;  // queued requests at a time (the pool has fewer conns)
  std::function<void()> fill;
  auto submit_one = [&](std::size_t i) {
    pool_.submit(make(i), [&, i](HttpResult&& r) {
      ++done;
      if (r.status != want_status) {
        if (error.empty()) {
          error = std::string(what) + " failed: " +
                  (r.status ? "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300)
                            : r.error);
        }
      } else {
        try {
          on_ok(i, r.body);
        } catch (const std::exception& e) {
          if (error.empty())
            error = std::string(what) + ": bad answer: " + e.what() + ": " + r.body.substr(0, 300);
        }
      }
      fill();
    });
  };
  fill = [&] {
    while (next < n && next - done < kWindow && error.empty()) submit_one(next++);
  };
  fill();
  std::int64_t last_report = now_ns();
  std::int64_t t0 = last_report;
  bool ok = workers_.run_until(
      [&] {
        if (now_ns() - last_report > 5 * kSec) {
          last_report = now_ns();
          progress("%s: %zu/%zu", what, done, n);
        }
        return pool_.in_flight() == 0 && (next >= n || !error.empty());
      },
      std::chrono::minutes(10));
  if (!ok) throw Failure(std::string(what) + ": timed out");
  if (!error.empty()) throw Failure(error);
  double secs = static_cast<double>(now_ns() - t0) / 1e9;
  if (n >= 100)
    progress("%s: %zu in %.1f s (%.0f/s)", what, n, secs, static_cast<double>(n) / secs);
}

std::vector<Account> Rest::create_accounts(std::size_t n) {
  std::vector<Account> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    char phone[32];
    // "+1" first: a tag may start with 0, and a phone number may not (normalize_phone).
    std::snprintf(phone, sizeof phone, "+1%s%07zu", ctx_.tag.c_str(), i);
    out[i].phone = phone;
  }
  batch(
      n,
      [&](std::size_t i) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/auth/register";
        r.body = bj::serialize(bj::object{{"name", "bench" + std::to_string(i)},
                                          {"phone", out[i].phone},
                                          {"password", kPassword}});
        return r;
      },
      201,
      [&](std::size_t i, const std::string& body) {
        out[i].id = field(body, {"user", "id"});
      },
      "register");
  batch(
      n,
      [&](std::size_t i) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/auth/login";
        r.body = bj::serialize(bj::object{{"phone", out[i].phone}, {"password", kPassword}});
        return r;
      },
      200, [&](std::size_t i, const std::string& body) { read_session(body, out[i]); }, "login");
  return out;
}

std::string Rest::create_space(const Account& owner, const std::string& name) {
  std::string id;
  batch(
      1,
      [&](std::size_t) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/spaces";
        r.bearer = owner.token;
        r.body = bj::serialize(bj::object{{"name", name}});
        return r;
      },
      201, [&](std::size_t, const std::string& body) { id = field(body, {"id"}); }, "create space");
  return id;
}

std::string Rest::create_channel(const Account& owner, const std::string& space_id,
                                 const std::string& name) {
  std::string id;
  batch(
      1,
      [&](std::size_t) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/spaces/" + space_id + "/channels";
        r.bearer = owner.token;
        r.body = bj::serialize(bj::object{{"name", name}});
        return r;
      },
      201, [&](std::size_t, const std::string& body) { id = field(body, {"id"}); },
      "create channel");
  return id;
}

void Rest::join(const Account& owner, const std::vector<Account>& users,
                const std::string& space_id, const std::string& channel_id) {
  // One invitation per 10000 users (its most uses, docs/api.md).
  constexpr std::size_t kUsesPerInvite = 10000;
  std::vector<std::string> codes((users.size() + kUsesPerInvite - 1) / kUsesPerInvite);
  batch(
      codes.size(),
      [&](std::size_t) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/spaces/" + space_id + "/invites";
        r.bearer = owner.token;
        r.body = bj::serialize(bj::object{{"max_uses", kUsesPerInvite}});
        return r;
      },
      201, [&](std::size_t i, const std::string& body) { codes[i] = field(body, {"code"}); },
      "invite");
  batch(
      users.size(),
      [&](std::size_t i) {
        HttpRequest r;
        r.method = "POST";
        r.target = "/api/v1/invites/" + codes[i / kUsesPerInvite] + "/accept";
        r.bearer = users[i].token;
        return r;
      },
      200, [](std::size_t, const std::string&) {}, "join space");
  join_channel(users, channel_id);
}

void Rest::join_channel(const std::vector<Account>& users, const std::string& channel_id) {
  const std::string target = "/api/v1/channels/" + channel_id + "/join";
  batch(
      users.size(),
      [&](std::size_t i) {
        HttpRequest r;
        r.method = "POST";
        r.target = target;
        r.bearer = users[i].token;
        return r;
      },
      200, [](std::size_t, const std::string&) {}, "join channel");
}

}  // namespace imbench
