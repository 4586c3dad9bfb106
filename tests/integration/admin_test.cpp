// Server administration against the real binary (issue "Teams can trust it", part 5): the
// first account is a server admin, others are not (auth.admins names more); an admin lists
// and searches users, deactivates one (their WebSockets close, their tokens and logins are
// refused, and stay refused after a restart), reactivates them, and resets a password.
#include <gtest/gtest.h>

#include <chrono>

#include "support/client.hpp"
#include "support/commands.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

bool is_admin(Http& h, const Account& a) {
  auto me = h.get("/api/v1/users/me", a.access);
  EXPECT_EQ(me.status, 200) << me.body;
  return me.json.as_object().at("admin").as_bool();
}

HttpResult login(Http& h, const std::string& phone, const std::string& password) {
  return h.post("/api/v1/auth/login", bj::object{{"phone", phone}, {"password", password}});
}

std::vector<std::string> ids_of(const HttpResult& r) {
  std::vector<std::string> out;
  for (const auto& u : r.json.as_object().at("users").as_array()) {
    out.push_back(std::string(u.as_object().at("id").as_string()));
  }
  return out;
}

TEST(Admin, TheFirstAccountAdministersAndOthersMayNot) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account ann = make_account(h, "Annabel");
  Account bob = make_account(h, "bob");
  EXPECT_TRUE(is_admin(h, root));
  EXPECT_FALSE(is_admin(h, ann));

  // Not an admin: 403 on every admin route, whatever the target.
  EXPECT_EQ(h.get("/api/v1/admin/users", ann.access).status, 403);
  EXPECT_EQ(
      h.post("/api/v1/admin/users/" + bob.id + "/deactivate", bj::object{}, ann.access).status,
      403);
  EXPECT_EQ(h.post("/api/v1/admin/users/" + bob.id + "/password", bj::object{}, ann.access).status,
            403);
  EXPECT_EQ(h.get("/api/v1/admin/users").status, 401);

  // Every user, paged in id order; a name prefix (any case) or a phone (any form) finds one.
  auto all = h.get("/api/v1/admin/users?limit=2", root.access);
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(ids_of(all), (std::vector<std::string>{root.id, ann.id}));
  const std::string next(all.json.as_object().at("next_after").as_string());
  auto rest = h.get("/api/v1/admin/users?limit=2&after=" + next, root.access);
  EXPECT_EQ(ids_of(rest), (std::vector<std::string>{bob.id}));
  EXPECT_EQ(ids_of(h.get("/api/v1/admin/users?q=anna", root.access)),
            (std::vector<std::string>{ann.id}));
  EXPECT_EQ(ids_of(h.get("/api/v1/admin/users?q=" + bob.phone.substr(1), root.access)),
            (std::vector<std::string>{bob.id}));
  EXPECT_TRUE(ids_of(h.get("/api/v1/admin/users?q=%25", root.access)).empty());  // no wildcard
  EXPECT_EQ(h.get("/api/v1/admin/users?q=" + std::string(65, 'x'), root.access).status, 400);

  // An admin cannot lock themselves out; an unknown user is 404.
  EXPECT_EQ(
      h.post("/api/v1/admin/users/" + root.id + "/deactivate", bj::object{}, root.access).status,
      400);
  EXPECT_EQ(h.post("/api/v1/admin/users/999999/deactivate", bj::object{}, root.access).status, 404);
}

TEST(Admin, DeactivationShutsTheUserOutEverywhereUntilReactivated) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account bob = make_account(h, "bob");
  Ws ws(server.host(), server.port(), bob.access);
  ASSERT_TRUE(ws.recv_op("hello"));

  auto off = h.post("/api/v1/admin/users/" + bob.id + "/deactivate", bj::object{}, root.access);
  ASSERT_EQ(off.status, 204) << off.body;
  EXPECT_TRUE(ws.wait_closed(10s));
  auto me = h.get("/api/v1/users/me", bob.access);
  EXPECT_EQ(me.status, 401);
  EXPECT_NE(me.body.find("account deactivated"), std::string::npos) << me.body;
  EXPECT_EQ(h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", bob.refresh}}).status, 401);
  auto refused = login(h, bob.phone, bob.password);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.error_code(), "forbidden");
  auto listed = h.get("/api/v1/admin/users?q=bob", root.access);
  ASSERT_EQ(listed.status, 200);
  EXPECT_TRUE(
      listed.json.as_object().at("users").as_array()[0].as_object().at("deactivated").as_bool());

  // Stored, not only in this process's memory: after a restart the old token is still refused.
  server.restart();
  Http h2(server.host(), server.port());
  EXPECT_EQ(h2.get("/api/v1/users/me", bob.access).status, 401);
  EXPECT_EQ(login(h2, bob.phone, bob.password).status, 403);

  ASSERT_EQ(
      h2.post("/api/v1/admin/users/" + bob.id + "/reactivate", bj::object{}, root.access).status,
      204);
  auto back = login(h2, bob.phone, bob.password);
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(h2.get("/api/v1/users/me", back.str("access_token")).status, 200);
  // The sessions the deactivation ended stay ended.
  EXPECT_EQ(h2.get("/api/v1/users/me", bob.access).status, 401);
}

// What a deactivated user asks of spaces, channels, DMs, files and the WebSocket is a column
// of access_test's AuthorizationMatrix (on every engine and the cluster); here: their own
// account's calls answer 401, and a WebSocket ticket taken before does not open a socket after.
TEST(Admin, ADeactivatedUsersAccountCallsAndTicketAreRefused) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account bob = make_account(h, "bob");
  auto ticket = h.post("/api/v1/ws/ticket", bj::object{}, bob.access);
  ASSERT_EQ(ticket.status, 201);
  ASSERT_EQ(
      h.post("/api/v1/admin/users/" + bob.id + "/deactivate", bj::object{}, root.access).status,
      204);

  const std::vector<std::pair<std::string, std::string>> calls = {
      {"PATCH", "/api/v1/users/me"},           {"GET", "/api/v1/users/me/sessions"},
      {"DELETE", "/api/v1/users/me/sessions"}, {"GET", "/api/v1/users/me/blocks"},
      {"POST", "/api/v1/users/me/password"},
  };
  for (const auto& [method, target] : calls) {
    auto r =
        h.request(method, target, method == "GET" ? std::nullopt : std::optional<std::string>("{}"),
                  bob.access);
    EXPECT_EQ(r.status, 401) << method << " " << target << ": " << r.body;
  }
  auto raw =
      h.request("GET", "/ws?ticket=" + ticket.str("ticket"), std::nullopt, {}, "application/json",
                {{"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                 {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(raw.status, 401) << raw.body;
}

TEST(Admin, APasswordResetEndsEverySessionAndSetsTheNewPassword) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account bob = make_account(h, "bob");
  const std::string path = "/api/v1/admin/users/" + bob.id + "/password";

  EXPECT_EQ(h.post(path, bj::object{{"new_password", "password"}}, root.access).status, 400);
  EXPECT_EQ(h.post(path, bj::object{{"new_pasword", "x"}}, root.access).status, 400);
  auto chosen = h.post(path, bj::object{{"new_password", "lanterns-over-the-bay"}}, root.access);
  ASSERT_EQ(chosen.status, 200) << chosen.body;
  EXPECT_EQ(chosen.str("password"), "lanterns-over-the-bay");
  EXPECT_EQ(h.get("/api/v1/users/me", bob.access).status, 401);
  EXPECT_EQ(h.post("/api/v1/auth/refresh", bj::object{{"refresh_token", bob.refresh}}).status, 401);
  EXPECT_EQ(login(h, bob.phone, bob.password).status, 401);

  // No password given: a generated one, handed over once.
  auto generated = h.post(path, bj::object{}, root.access);
  ASSERT_EQ(generated.status, 200) << generated.body;
  const std::string password = generated.str("password");
  EXPECT_GE(password.size(), 16u);
  EXPECT_EQ(login(h, bob.phone, password).status, 200);
}

// Spaces: an admin lists every space (private ones included) and removes a user from one,
// whatever their role there but the owner's; the user loses the space at once.
TEST(Admin, SpacesAreListedAndAUserIsRemovedFromOne) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account ann = make_account(h, "ann");
  Account bob = make_account(h, "bob");
  auto sc = make_space_channel(h, ann, {&bob});
  ASSERT_EQ(h.get("/api/v1/spaces/" + sc.space_id, bob.access).status, 200);
  ASSERT_EQ(h.patch("/api/v1/spaces/" + sc.space_id + "/members/" + bob.id,
                    bj::object{{"role", "admin"}}, ann.access)
                .status,
            200);

  auto spaces = h.get("/api/v1/admin/spaces", root.access);
  ASSERT_EQ(spaces.status, 200) << spaces.body;
  const auto& list = spaces.json.as_object().at("spaces").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object().at("id").as_string(), sc.space_id);
  EXPECT_EQ(h.get("/api/v1/admin/spaces", ann.access).status, 403);

  const std::string members = "/api/v1/admin/spaces/" + sc.space_id + "/members/";
  EXPECT_EQ(h.request("DELETE", members + bob.id, std::nullopt, ann.access).status, 403);
  EXPECT_EQ(h.request("DELETE", members + ann.id, std::nullopt, root.access).status, 400);
  ASSERT_EQ(h.request("DELETE", members + bob.id, std::nullopt, root.access).status, 204);
  EXPECT_EQ(h.get("/api/v1/spaces/" + sc.space_id, bob.access).status, 404);
  EXPECT_EQ(h.get("/api/v1/channels/" + sc.channel_id + "/messages", bob.access).status, 404);
  EXPECT_EQ(h.request("DELETE", members + bob.id, std::nullopt, root.access).status, 404);
}

TEST(Admin, AuthAdminsNamesMoreAdminsByPhone) {
  ServerProcess server({"--auth-admins", "+15550001111, 15550002222"});
  server.start();
  Http h(server.host(), server.port());
  Account first = make_account(h, "first");
  auto reg = h.post(
      "/api/v1/auth/register",
      bj::object{{"name", "ops"}, {"phone", "15550002222"}, {"password", "kettle-drum-solo"}});
  ASSERT_EQ(reg.status, 201) << reg.body;
  auto session = login(h, "+15550002222", "kettle-drum-solo");
  ASSERT_EQ(session.status, 200) << session.body;
  Account ops;
  ops.access = session.str("access_token");
  Account other = make_account(h, "other");
  EXPECT_TRUE(is_admin(h, first));
  EXPECT_TRUE(is_admin(h, ops));
  EXPECT_FALSE(is_admin(h, other));
  EXPECT_EQ(h.get("/api/v1/admin/users", ops.access).status, 200);
}

// imdctl drives the same API from a shell: log in, list, deactivate, reactivate, reset.
TEST(Imdctl, OperatorsAdministerFromTheCommandLine) {
  ServerProcess server;
  server.start();
  Http h(server.host(), server.port());
  Account root = make_account(h, "root");
  Account bob = make_account(h, "bobby");
  auto sc = make_space_channel(h, root, {&bob});
  const std::string url = "http://" + server.host() + ":" + std::to_string(server.port());
  const std::string ctl = std::string(IMDCTL_BINARY) + " --url " + url;
  const std::string as_root =
      "IMD_PHONE='" + root.phone + "' IMD_PASSWORD='" + root.password + "' " + ctl;

  auto token = run_command("IMD_PASSWORD='" + root.password + "' " + ctl + " login '" + root.phone +
                           "' 2>/dev/null");
  ASSERT_EQ(token.status, 0) << token.output;
  EXPECT_EQ(h.get("/api/v1/users/me", token.output.substr(0, token.output.find('\n'))).status, 200);

  auto users = run_command(as_root + " users bob");
  ASSERT_EQ(users.status, 0) << users.output;
  EXPECT_NE(users.output.find(bob.id + "\tbobby\t" + bob.phone + "\tactive"), std::string::npos)
      << users.output;
  EXPECT_EQ(users.output.find(root.id), std::string::npos) << users.output;

  auto off = run_command(as_root + " deactivate " + bob.id);
  ASSERT_EQ(off.status, 0) << off.output;
  EXPECT_EQ(h.get("/api/v1/users/me", bob.access).status, 401);
  EXPECT_NE(run_command(as_root + " users")
                .output.find(bob.id + "\tbobby\t" + bob.phone + "\tdeactivated"),
            std::string::npos);
  ASSERT_EQ(run_command(as_root + " reactivate " + bob.id).status, 0);
  auto spaces = run_command(as_root + " spaces");
  ASSERT_EQ(spaces.status, 0) << spaces.output;
  EXPECT_NE(spaces.output.find(sc.space_id + "\t"), std::string::npos) << spaces.output;
  // delete-message: the message is a tombstone in the history. (Bob's sessions ended with
  // the deactivation: he logs in again.)
  {
    auto session = login(h, bob.phone, bob.password);
    ASSERT_EQ(session.status, 200) << session.body;
    Ws ws(server.host(), server.port(), session.str("access_token"));
    ASSERT_TRUE(ws.recv_op("synced"));
    ws.send(send_channel("x1", sc.channel_id, "regrettable"));
    auto sent = ws.recv_op("sent");
    ASSERT_TRUE(sent);
    auto del = run_command(as_root + " delete-message " + str(*sent, "id"));
    ASSERT_EQ(del.status, 0) << del.output;
    ASSERT_TRUE(ws.recv_op("deleted"));
    auto history = h.get("/api/v1/channels/" + sc.channel_id + "/messages", root.access);
    EXPECT_EQ(history.body.find("regrettable"), std::string::npos) << history.body;
    EXPECT_EQ(run_command(as_root + " delete-message 12x").status, 1);
  }
  ASSERT_EQ(run_command(as_root + " remove-member " + sc.space_id + " " + bob.id).status, 0);
  auto reset = run_command(as_root + " reset-password " + bob.id + " 2>/dev/null");
  ASSERT_EQ(reset.status, 0) << reset.output;
  const std::string password = reset.output.substr(0, reset.output.find('\n'));
  EXPECT_EQ(login(h, bob.phone, password).status, 200);

  // Refusals and mistakes: the server's error, exit status 1; bad usage, 2.
  auto refused = run_command("IMD_TOKEN='" + bob.access + "' " + ctl + " users");
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.output.find("HTTP 401"), std::string::npos) << refused.output;
  EXPECT_EQ(run_command(as_root + " deactivate ../../x").status, 1);
  EXPECT_EQ(run_command(as_root + " frobnicate").status, 2);
  EXPECT_EQ(run_command(ctl + " --url ftp://x users").status, 1);
}

}  // namespace
}  // namespace imd::test
