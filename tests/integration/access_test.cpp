// Who may do what in a space (docs/security.md "Spaces, roles and channels"), against the real
// binary over HTTP and WebSocket: invitations, discoverable spaces, roles, removal and bans
// (which end live delivery at once), private channels, the DM policy and blocks, and the
// authorization matrix: every space, channel and DM endpoint and op for each kind of user.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/client.hpp"
#include "support/server_process.hpp"
#include "support/test_images.hpp"

namespace imd::test {
namespace {

// The server admin, named by phone (auth.admins): by the suite's flags here, and in the local
// cluster's IMD_CLUSTER_ARGS (tests/cluster/CMakeLists.txt).
constexpr const char* kServerAdminPhone = "+15550000900";

class Access : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The binary's default DM policy (the support code starts servers with "anyone"). The
    // suite's requests all come from one address: the per-IP request limit is not under test.
    server_ = new ServerProcess({"--limits-dm-policy", "shared_space", "--limits-http-rate-per-s",
                                 "100000", "--limits-http-burst", "100000", "--auth-admins",
                                 kServerAdminPhone});
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  Http http() { return Http(server_->host(), server_->port()); }
  HttpResult get(const std::string& t, const Account& a) { return http().get(t, a.access); }
  HttpResult post(const std::string& t, const bj::value& body, const Account& a) {
    return http().post(t, body, a.access);
  }
  HttpResult patch(const std::string& t, const bj::value& body, const Account& a) {
    return http().patch(t, body, a.access);
  }
  HttpResult del(const std::string& t, const Account& a) {
    return http().request("DELETE", t, std::nullopt, a.access);
  }
  HttpResult put(const std::string& t, const std::string& image, const Account& a) {
    return http().request("PUT", t, image, a.access, "image/png");
  }
  // Uploads a small file (201 and its id).
  HttpResult upload(const Account& a) {
    return http().request("POST", "/api/v1/files?name=notes.txt", "just words", a.access,
                          "application/octet-stream");
  }
  Account account(const std::string& name) {
    auto h = http();
    return make_account(h, name);
  }
  // Signed in as the server admin; registered first unless the database (MariaDB, the
  // cluster's) already holds the account from an earlier run.
  Account server_admin() {
    auto h = http();
    Account a;
    a.phone = kServerAdminPhone;
    a.password = "password-server-admin";
    auto reg = h.post("/api/v1/auth/register",
                      bj::object{{"name", "root"}, {"phone", a.phone}, {"password", a.password}});
    EXPECT_TRUE(reg.status == 201 || reg.status == 409) << reg.body;
    auto session =
        h.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
    EXPECT_EQ(session.status, 200) << session.body;
    a.access = session.str("access_token");
    return a;
  }
  std::string space(const Account& owner, const std::string& name = "team") {
    auto r = post("/api/v1/spaces", bj::object{{"name", name}}, owner);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.str("id");
  }
  std::string channel(const Account& creator, const std::string& sid, const std::string& name,
                      bool is_private = false) {
    auto r = post("/api/v1/spaces/" + sid + "/channels",
                  bj::object{{"name", name}, {"private", is_private}}, creator);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.str("id");
  }
  std::string invite(const Account& by, const std::string& sid, bj::object body = {}) {
    auto r = post("/api/v1/spaces/" + sid + "/invites", body, by);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.str("code");
  }
  int accept(const std::string& code, const Account& who) {
    return post("/api/v1/invites/" + code + "/accept", bj::object{}, who).status;
  }
  void join(const Account& inviter, const std::string& sid, const Account& who) {
    ASSERT_EQ(accept(invite(inviter, sid), who), 200);
  }
  static std::vector<std::string> ids(const HttpResult& r, const char* list, const char* key) {
    std::vector<std::string> out;
    for (const auto& v : r.json.as_object().at(list).as_array()) {
      out.emplace_back(v.as_object().at(key).as_string());
    }
    return out;
  }
  static bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  std::unique_ptr<Ws> ws(const Account& a) {
    auto w = std::make_unique<Ws>(server_->host(), server_->port(), a.access);
    EXPECT_TRUE(w->recv_op("hello"));
    EXPECT_TRUE(w->recv_op("synced"));
    return w;
  }
  // Sends and returns "sent" or the error frame's code; `before` gets the frames that came
  // first.
  static std::string outcome(Ws& w, const bj::object& frame,
                             std::vector<bj::object>* before = nullptr) {
    const std::string cid(frame.at("cid").as_string());
    w.send(frame);
    auto got = w.recv_until([&](const bj::object& f) {
      const std::string op = str(f, "op");
      return (op == "sent" || op == "error") && f.contains("cid") && str(f, "cid") == cid;
    });
    if (got.empty()) return "timeout";
    const bj::object last = got.back();
    if (before) before->assign(got.begin(), got.end() - 1);
    if (!last.contains("cid") || str(last, "cid") != cid) return "timeout";
    return str(last, "op") == "sent" ? "sent" : str(last, "code");
  }

  static ServerProcess* server_;
  int cids_ = 0;
  std::string cid() { return "a" + std::to_string(++cids_); }
};
ServerProcess* Access::server_ = nullptr;

// An invitation: >= 128 random bits, URL-safe; previewed by anyone who holds it; accepted once
// per user (again: nothing consumed); used up, revoked or unknown: 404. Private spaces cannot be
// joined by id, discoverable ones can, and are listed.
TEST_F(Access, InvitationsAreTheWayIntoAPrivateSpace) {
  auto owner = account("owner"), a = account("a"), b = account("b"), c = account("c");
  const std::string sid = space(owner, "Private Team");
  EXPECT_EQ(post("/api/v1/spaces/" + sid + "/join", bj::object{}, a).status, 404);

  const std::string code = invite(owner, sid, {{"max_uses", 2}});
  EXPECT_GE(code.size(), 22u);  // 128 bits of base64url
  EXPECT_EQ(
      code.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_NE(invite(owner, sid), code);
  auto preview = get("/api/v1/invites/" + code, a);
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_EQ(str(preview.json.as_object().at("space").as_object(), "name"), "Private Team");
  EXPECT_EQ(num(preview.json.as_object(), "members"), 1u);

  ASSERT_EQ(accept(code, a), 200);
  EXPECT_EQ(get("/api/v1/spaces/" + sid, a).status, 200);
  EXPECT_EQ(accept(code, a), 200);  // a member: idempotent, no use consumed
  auto listed = get("/api/v1/spaces/" + sid + "/invites", owner);
  ASSERT_EQ(listed.status, 200) << listed.body;
  bool found = false;
  for (const auto& i : listed.json.as_object().at("invites").as_array()) {
    if (str(i.as_object(), "code") != code) continue;
    found = true;
    EXPECT_EQ(num(i.as_object(), "uses"), 1u);
    EXPECT_EQ(num(i.as_object(), "max_uses"), 2u);
  }
  EXPECT_TRUE(found) << listed.body;
  ASSERT_EQ(accept(code, b), 200);
  // Used up: gone, for preview and accept alike.
  EXPECT_EQ(accept(code, c), 404);
  EXPECT_EQ(get("/api/v1/invites/" + code, c).status, 404);
  EXPECT_EQ(get("/api/v1/spaces/" + sid, c).status, 404);

  // Revoked: gone. Unknown or malformed: the same 404.
  const std::string revoked = invite(owner, sid);
  EXPECT_EQ(del("/api/v1/spaces/" + sid + "/invites/" + revoked, a).status, 403);  // a member
  EXPECT_EQ(del("/api/v1/spaces/" + sid + "/invites/" + revoked, owner).status, 204);
  EXPECT_EQ(accept(revoked, c), 404);
  EXPECT_EQ(accept("AAAAAAAAAAAAAAAAAAAAAA", c), 404);
  EXPECT_EQ(get("/api/v1/invites/not*a*code", c).status, 404);

  // Bounds of a new invitation.
  for (bj::object bad : {bj::object{{"max_uses", 0}}, bj::object{{"max_uses", 10001}},
                         bj::object{{"expires_in_s", 59}}, bj::object{{"expires_in_s", 2592001}},
                         bj::object{{"uses", 1}}}) {
    EXPECT_EQ(post("/api/v1/spaces/" + sid + "/invites", bad, owner).status, 400)
        << bj::serialize(bad);
  }

  // Discoverable: listed, joinable by id. Only the owner decides it.
  EXPECT_EQ(patch("/api/v1/spaces/" + sid, bj::object{{"discoverable", true}}, a).status, 403);
  auto open = patch("/api/v1/spaces/" + sid, bj::object{{"discoverable", true}}, owner);
  ASSERT_EQ(open.status, 200) << open.body;
  EXPECT_TRUE(open.json.as_object().at("discoverable").as_bool());
  std::vector<std::string> found_ids;
  for (std::string after;;) {
    auto page = get("/api/v1/spaces?discoverable=1&limit=100" +
                        (after.empty() ? std::string() : "&after=" + after),
                    c);
    ASSERT_EQ(page.status, 200) << page.body;
    for (const auto& id : ids(page, "spaces", "id")) found_ids.push_back(id);
    const auto& next = page.json.as_object().at("next_after");
    if (next.is_null()) break;
    after = std::string(next.as_string());
  }
  EXPECT_TRUE(contains(found_ids, sid));
  EXPECT_EQ(post("/api/v1/spaces/" + sid + "/join", bj::object{}, c).status, 200);
}

// Roles: the owner promotes and demotes; admins invite, add, remove and ban members but not
// admins; the owner removes admins; ownership moves by transfer, after which the old owner may
// leave. Member lists show the roles.
TEST_F(Access, RolesDecideWhoManagesWhom) {
  auto owner = account("owner"), admin = account("admin"), admin2 = account("admin2"),
       m1 = account("m1"), m2 = account("m2"), stranger = account("stranger");
  const std::string sid = space(owner);
  for (const Account* a : {&admin, &admin2, &m1, &m2}) join(owner, sid, *a);
  const std::string base = "/api/v1/spaces/" + sid;
  EXPECT_EQ(patch(base + "/members/" + admin.id, bj::object{{"role", "admin"}}, m1).status, 403);
  ASSERT_EQ(patch(base + "/members/" + admin.id, bj::object{{"role", "admin"}}, owner).status, 200);
  ASSERT_EQ(patch(base + "/members/" + admin2.id, bj::object{{"role", "admin"}}, owner).status,
            200);
  EXPECT_EQ(patch(base + "/members/" + m1.id, bj::object{{"role", "admin"}}, admin).status, 403);
  EXPECT_EQ(patch(base + "/members/" + m1.id, bj::object{{"role", "king"}}, owner).status, 400);

  std::map<std::string, std::string> roles;
  auto members = get(base + "/members", m1);
  ASSERT_EQ(members.status, 200);
  for (const auto& m : members.json.as_object().at("members").as_array()) {
    roles[str(m.as_object(), "user_id")] = str(m.as_object(), "role");
  }
  EXPECT_EQ(roles[owner.id], "owner");
  EXPECT_EQ(roles[admin.id], "admin");
  EXPECT_EQ(roles[m1.id], "member");

  // Admins: invite, add, rename; remove and ban members, not admins nor the owner.
  EXPECT_EQ(post(base + "/invites", bj::object{}, m1).status, 403);
  EXPECT_EQ(post(base + "/invites", bj::object{}, admin).status, 201);
  EXPECT_EQ(patch(base, bj::object{{"name", "renamed"}}, admin).status, 200);
  EXPECT_EQ(patch(base, bj::object{{"name", "mine"}}, m1).status, 403);
  EXPECT_EQ(post(base + "/members", bj::object{{"user_id", stranger.id}}, m1).status, 403);
  EXPECT_EQ(post(base + "/members", bj::object{{"user_id", stranger.id}}, admin).status, 204);
  EXPECT_EQ(get(base, stranger).status, 200);
  EXPECT_EQ(del(base + "/members/" + m2.id, m1).status, 403);
  EXPECT_EQ(del(base + "/members/" + admin2.id, admin).status, 403);
  EXPECT_EQ(del(base + "/members/" + owner.id, admin).status, 403);
  EXPECT_EQ(post(base + "/bans", bj::object{{"user_id", admin2.id}}, admin).status, 403);
  EXPECT_EQ(del(base + "/members/" + m2.id, admin).status, 204);
  EXPECT_EQ(get(base, m2).status, 404);
  EXPECT_EQ(del(base + "/members/" + m2.id, admin).status, 404);  // no longer a member
  // The owner removes an admin.
  EXPECT_EQ(del(base + "/members/" + admin2.id, owner).status, 204);
  EXPECT_EQ(get(base, admin2).status, 404);

  // The owner leaves only after transferring; the old owner is then an admin.
  EXPECT_EQ(post(base + "/leave", bj::object{}, owner).status, 409);
  EXPECT_EQ(post(base + "/transfer", bj::object{{"user_id", m1.id}}, admin).status, 403);
  EXPECT_EQ(post(base + "/transfer", bj::object{{"user_id", m2.id}}, owner).status, 404);
  auto moved = post(base + "/transfer", bj::object{{"user_id", m1.id}}, owner);
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(moved.str("owner_id"), m1.id);
  EXPECT_EQ(patch(base, bj::object{{"discoverable", true}}, owner).status, 403);
  EXPECT_EQ(patch(base, bj::object{{"discoverable", true}}, m1).status, 200);
  EXPECT_EQ(post(base + "/leave", bj::object{}, owner).status, 204);
  EXPECT_EQ(post(base + "/leave", bj::object{}, m1).status, 409);
}

// Private channels: in no list or count of a non-member, joinable only by being added, their
// history their members' alone; the JSON says "private".
TEST_F(Access, PrivateChannelsAreTheirMembersAlone) {
  auto owner = account("owner"), m1 = account("m1"), m2 = account("m2"), outsider = account("o");
  const std::string sid = space(owner);
  join(owner, sid, m1);
  join(owner, sid, m2);
  const std::string pub = channel(owner, sid, "public");
  const std::string priv = channel(m1, sid, "secret", true);
  auto seen_by_m1 = get("/api/v1/channels/" + priv, m1);
  ASSERT_EQ(seen_by_m1.status, 200);
  EXPECT_TRUE(seen_by_m1.json.as_object().at("private").as_bool());
  EXPECT_FALSE(get("/api/v1/channels/" + pub, m2).json.as_object().at("private").as_bool());

  auto list = [&](const Account& a) {
    return ids(get("/api/v1/spaces/" + sid + "/channels", a), "channels", "id");
  };
  EXPECT_TRUE(contains(list(m1), priv));
  EXPECT_FALSE(contains(list(m2), priv));
  EXPECT_FALSE(contains(list(owner), priv));  // even the owner, while not in it
  EXPECT_TRUE(contains(list(m2), pub));
  for (const Account* a : {&m2, &owner, &outsider}) {
    EXPECT_EQ(get("/api/v1/channels/" + priv, *a).status, 404);
    EXPECT_EQ(post("/api/v1/channels/" + priv + "/join", bj::object{}, *a).status, 404);
    EXPECT_EQ(get("/api/v1/channels/" + priv + "/messages", *a).status, 404);
    EXPECT_EQ(get("/api/v1/channels/" + priv + "/members", *a).status, 404);
  }

  // Its members add members of the space; nobody else can, and nobody outside the space can be.
  auto w1 = ws(m1);
  ASSERT_EQ(outcome(*w1, send_channel(cid(), priv, "before m2")), "sent");
  const std::string add = "/api/v1/spaces/" + sid + "/channels/" + priv + "/members";
  EXPECT_EQ(post(add, bj::object{{"user_id", owner.id}}, m2).status, 404);
  EXPECT_EQ(post(add, bj::object{{"user_id", outsider.id}}, m1).status, 404);
  auto added = post(add, bj::object{{"user_id", m2.id}}, m1);
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_TRUE(contains(list(m2), priv));
  EXPECT_EQ(get("/api/v1/channels/" + priv + "/messages", m2).status, 200);
  auto w2 = ws(m2);
  ASSERT_EQ(outcome(*w2, send_channel(cid(), priv, "from m2")), "sent");
  auto got = w1->recv_until(
      [](const bj::object& f) { return str(f, "op") == "msg" && str(f, "body") == "from m2"; });
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(str(got.back(), "body"), "from m2");
  // The conversation list of a non-member never names it.
  auto convs = get("/api/v1/conversations", owner);
  EXPECT_EQ(convs.body.find(priv), std::string::npos);
}

// Removed or banned: every device at once gets "removed", no more live messages of the
// space's channels, no history, no sending; a banned user cannot come back by invitation.
TEST_F(Access, RemovalAndBanEndAccessAtOnceOnEveryDevice) {
  auto owner = account("owner"), gone = account("gone"), banned = account("banned");
  const std::string sid = space(owner);
  const std::string ch = channel(owner, sid, "general");
  for (const Account* a : {&gone, &banned}) {
    join(owner, sid, *a);
    ASSERT_EQ(post("/api/v1/channels/" + ch + "/join", bj::object{}, *a).status, 200);
  }
  auto wo = ws(owner);
  auto g1 = ws(gone);
  auto g2 = ws(gone);  // a second device
  auto b1 = ws(banned);
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "hello all")), "sent");
  for (Ws* w : {g1.get(), g2.get(), b1.get()}) {
    ASSERT_TRUE(w->recv_op("msg")) << "a member gets the channel's messages";
  }

  ASSERT_EQ(del("/api/v1/spaces/" + sid + "/members/" + gone.id, owner).status, 204);
  ASSERT_EQ(
      post("/api/v1/spaces/" + sid + "/bans", bj::object{{"user_id", banned.id}}, owner).status,
      204);
  for (Ws* w : {g1.get(), g2.get(), b1.get()}) {
    auto removed = w->recv_op("removed");
    ASSERT_TRUE(removed);
    EXPECT_EQ(str(*removed, "space"), sid);
    EXPECT_EQ(str(*removed, "reason"), w == b1.get() ? "banned" : "removed");
  }

  // When the owner has its `sent`, the message was handed to every member's connection; a
  // removed device's own round trip after that shows what reached it: no message.
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "after removal")), "sent");
  for (Ws* w : {g1.get(), g2.get(), b1.get()}) {
    std::vector<bj::object> before;
    EXPECT_EQ(outcome(*w, send_channel(cid(), ch, "still here?"), &before), "not_found");
    for (const auto& f : before) EXPECT_NE(str(f, "op"), "msg") << bj::serialize(f);
  }
  for (const Account* a : {&gone, &banned}) {
    EXPECT_EQ(get("/api/v1/channels/" + ch + "/messages", *a).status, 404);
    EXPECT_EQ(get("/api/v1/spaces/" + sid, *a).status, 404);
    auto convs = get("/api/v1/conversations", *a);
    EXPECT_EQ(convs.body.find(ch), std::string::npos);
  }

  // The removed may come back by a new invitation, the banned may not until unbanned.
  const std::string code = invite(owner, sid);
  EXPECT_EQ(accept(code, banned), 403);
  EXPECT_EQ(get("/api/v1/spaces/" + sid, banned).status, 404);
  auto bans = get("/api/v1/spaces/" + sid + "/bans", owner);
  ASSERT_EQ(bans.status, 200);
  EXPECT_EQ(ids(bans, "bans", "user_id"), std::vector<std::string>{banned.id});
  EXPECT_EQ(
      post("/api/v1/spaces/" + sid + "/members", bj::object{{"user_id", banned.id}}, owner).status,
      409);
  EXPECT_EQ(accept(code, gone), 200);
  ASSERT_EQ(del("/api/v1/spaces/" + sid + "/bans/" + banned.id, owner).status, 204);
  EXPECT_EQ(accept(code, banned), 200);
}

// A channel's lifecycle: archived (read-only, history kept, listed as archived) by its creator
// or an admin and unarchived; a member removed from it by an admin loses it on every device at
// once; deleted by an admin, it is gone for every member, with its history and files.
TEST_F(Access, ChannelsAreArchivedMembersRemovedAndChannelsDeleted) {
  auto owner = account("owner"), admin = account("admin"), m = account("m"), m2 = account("m2");
  const std::string sid = space(owner);
  for (const Account* a : {&admin, &m, &m2}) join(owner, sid, *a);
  ASSERT_EQ(
      patch("/api/v1/spaces/" + sid + "/members/" + admin.id, bj::object{{"role", "admin"}}, owner)
          .status,
      200);
  const std::string ch = channel(m2, sid, "general");  // m2 created it
  const std::string C = "/api/v1/channels/" + ch;
  for (const Account* a : {&owner, &admin, &m}) {
    ASSERT_EQ(post(C + "/join", bj::object{}, *a).status, 200);
  }
  auto wm = ws(m);
  ASSERT_EQ(outcome(*wm, send_channel(cid(), ch, "before the archive")), "sent");

  // Archive: not by a plain member who did not create it; by its creator.
  EXPECT_EQ(patch(C, bj::object{{"archived", true}}, m).status, 403);
  EXPECT_EQ(patch(C, bj::object{{"archived", "yes"}}, m2).status, 400);
  auto archived = patch(C, bj::object{{"archived", true}}, m2);
  ASSERT_EQ(archived.status, 200) << archived.body;
  EXPECT_TRUE(archived.json.as_object().at("archived").as_bool());
  auto listed = get("/api/v1/spaces/" + sid + "/channels", m);
  ASSERT_EQ(listed.status, 200);
  for (const auto& c : listed.json.as_object().at("channels").as_array()) {
    if (c.as_object().at("id").as_string() == ch) {
      EXPECT_TRUE(c.as_object().at("archived").as_bool());
    }
  }
  // Read-only: a send is refused with a clear error; history stays readable.
  wm->send(send_channel("arch1", ch, "into the archive"));
  auto refused = wm->recv_until([](const bj::object& f) {
    return str(f, "op") == "error" && f.contains("cid") && str(f, "cid") == "arch1";
  });
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(str(refused.back(), "code"), "forbidden");
  EXPECT_NE(str(refused.back(), "message").find("archived"), std::string::npos);
  auto history = get(C + "/messages", m);
  ASSERT_EQ(history.status, 200);
  EXPECT_NE(history.body.find("before the archive"), std::string::npos);
  EXPECT_EQ(history.body.find("into the archive"), std::string::npos);
  ASSERT_EQ(patch(C, bj::object{{"archived", false}}, admin).status, 200);
  EXPECT_EQ(outcome(*wm, send_channel(cid(), ch, "after the unarchive")), "sent");

  // Remove a member: not by a plain member, not the owner by an admin; m by an admin, on both
  // of m's devices at once.
  auto wm_other = ws(m);
  EXPECT_EQ(del(C + "/members/" + m.id, m2).status, 403);
  EXPECT_EQ(del(C + "/members/" + owner.id, admin).status, 403);
  EXPECT_EQ(del(C + "/members/" + m.id, admin).status, 204);
  EXPECT_EQ(del(C + "/members/" + m.id, admin).status, 404);
  for (Ws* w : {wm.get(), wm_other.get()}) {
    auto removed = w->recv_op("removed");
    ASSERT_TRUE(removed);
    EXPECT_EQ(str(*removed, "space"), sid);
    EXPECT_EQ(str(*removed, "conversation"), "channel:" + ch);
    EXPECT_EQ(str(*removed, "reason"), "removed");
  }
  auto wo = ws(owner);
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "not for m")), "sent");
  std::vector<bj::object> before;
  EXPECT_EQ(outcome(*wm, send_channel(cid(), ch, "still here?"), &before), "not_found");
  for (const auto& f : before) EXPECT_NE(str(f, "op"), "msg") << bj::serialize(f);
  EXPECT_EQ(get(C + "/messages", m).status, 404);
  EXPECT_EQ(get("/api/v1/conversations", m).body.find(ch), std::string::npos);
  EXPECT_EQ(get("/api/v1/spaces/" + sid, m).status, 200) << "still in the space";

  // Delete: not by its creator (a member), by an admin; every member's device hears it, and
  // the channel, its history and its messages are gone.
  auto wm2 = ws(m2);
  EXPECT_EQ(del(C, m2).status, 403);
  EXPECT_EQ(del(C, m).status, 403);
  ASSERT_EQ(del(C, admin).status, 204);
  for (Ws* w : {wo.get(), wm2.get()}) {
    auto removed = w->recv_op("removed");
    ASSERT_TRUE(removed);
    EXPECT_EQ(str(*removed, "conversation"), "channel:" + ch);
    EXPECT_EQ(str(*removed, "reason"), "deleted");
  }
  EXPECT_EQ(outcome(*wm2, send_channel(cid(), ch, "anyone?")), "not_found");
  for (const Account* a : {&owner, &m2}) {
    EXPECT_EQ(get(C, *a).status, 404);
    EXPECT_EQ(get(C + "/messages", *a).status, 404);
    EXPECT_EQ(get("/api/v1/conversations", *a).body.find(ch), std::string::npos);
    auto chans = get("/api/v1/spaces/" + sid + "/channels", *a);
    EXPECT_EQ(chans.body.find(ch), std::string::npos);
  }
  EXPECT_EQ(del(C, admin).status, 404);
}

// history_from_join: a member who joins after it is set reads (REST pages, a backfill from any
// cursor, search) only what came after their join; members from before keep everything.
TEST_F(Access, HistoryFromJoinShowsANewMemberOnlyWhatCameAfter) {
  auto owner = account("owner"), early = account("early"), late = account("late");
  const std::string sid = space(owner);
  join(owner, sid, early);
  join(owner, sid, late);
  const std::string ch = channel(owner, sid, "general");
  const std::string C = "/api/v1/channels/" + ch;
  ASSERT_EQ(post(C + "/join", bj::object{}, early).status, 200);
  auto wo = ws(owner);
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "old secret one")), "sent");
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "old secret two")), "sent");
  EXPECT_EQ(patch(C, bj::object{{"history_from_join", true}}, late).status, 403);
  auto set = patch(C, bj::object{{"history_from_join", true}}, owner);
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_TRUE(set.json.as_object().at("history_from_join").as_bool());
  ASSERT_EQ(post(C + "/join", bj::object{}, late).status, 200);
  auto wl = std::make_unique<Ws>(server_->host(), server_->port(), late.access);
  std::vector<std::string> bodies;
  auto collect = [&] {
    auto frames = wl->recv_until([](const bj::object& f) { return str(f, "op") == "synced"; });
    ASSERT_FALSE(frames.empty());
    ASSERT_EQ(str(frames.back(), "op"), "synced");
    for (const auto& f : frames) {
      if (str(f, "op") == "msg") bodies.push_back(str(f, "body"));
    }
  };
  collect();
  wl->send(bj::object{{"op", "sync"}, {"cursors", bj::object{{"channel:" + ch, 0}}}});
  collect();
  EXPECT_TRUE(bodies.empty());
  ASSERT_EQ(outcome(*wo, send_channel(cid(), ch, "after the join")), "sent");
  auto live = wl->recv_op("msg");
  ASSERT_TRUE(live);
  bodies.push_back(str(*live, "body"));

  auto seen = [&](const std::string& target, const Account& a) {
    auto r = get(target, a);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    for (const auto& m : r.json.as_object().at("messages").as_array()) {
      out.emplace_back(m.as_object().at("body").as_string());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(seen(C + "/messages", late), V{"after the join"});
  EXPECT_EQ(seen(C + "/messages?after_seq=0", late), V{"after the join"});
  EXPECT_TRUE(seen(C + "/messages?before_seq=3", late).empty());
  EXPECT_EQ(seen(C + "/messages", early),
            (V{"old secret one", "old secret two", "after the join"}));
  EXPECT_TRUE(seen("/api/v1/search?q=secret", late).empty());
  EXPECT_EQ(seen("/api/v1/search?q=secret", early).size(), 2u);

  // The backfill at connect, and one asked for from cursor 0 after, brought nothing from
  // before the join; the message after it came live.
  EXPECT_EQ(bodies, V{"after the join"});
}

// GET /api/v1/conversations is paged like the other lists: channels by id, then DMs by peer,
// `after` the last conversation's name; every page carries the spaces' unread roll-up.
TEST_F(Access, ConversationsArePaged) {
  auto me = account("me"), p1 = account("p1"), p2 = account("p2");
  const std::string sid = space(me);
  join(me, sid, p1);
  join(me, sid, p2);
  std::vector<std::string> expected;
  for (const char* name : {"one", "two", "three"}) {
    expected.push_back("channel:" + channel(me, sid, name));
  }
  auto wm = ws(me);
  const Account* peers[] = {&p1, &p2};
  if (std::stoull(p2.id) < std::stoull(p1.id)) std::swap(peers[0], peers[1]);
  for (const Account* p : peers) {
    ASSERT_EQ(outcome(*wm, send_dm(cid(), p->id, "hello")), "sent");
    expected.push_back("dm:" + p->id);
  }
  auto names = [](const HttpResult& r) {
    std::vector<std::string> out;
    for (const auto& c : r.json.as_object().at("conversations").as_array()) {
      out.emplace_back(c.as_object().at("conversation").as_string());
    }
    return out;
  };
  auto whole = get("/api/v1/conversations", me);
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(names(whole), expected);
  EXPECT_TRUE(whole.json.as_object().at("next_after").is_null());

  std::vector<std::string> paged;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto r = get("/api/v1/conversations?limit=2" + (after.empty() ? "" : "&after=" + after), me);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LE(names(r).size(), 2u);
    EXPECT_EQ(r.json.as_object().at("spaces").as_array().size(), 1u);
    for (auto& n : names(r)) paged.push_back(n);
    const auto& next = r.json.as_object().at("next_after");
    if (next.is_null()) break;
    after = std::string(next.as_string());
  }
  EXPECT_EQ(paged, expected);
  EXPECT_EQ(get("/api/v1/conversations?limit=0", me).status, 400);
  EXPECT_EQ(get("/api/v1/conversations?limit=101", me).status, 400);
  EXPECT_EQ(get("/api/v1/conversations?after=space:1", me).status, 400);
  // A cursor whose conversation is gone still pages on from its place.
  auto rest = get("/api/v1/conversations?after=channel:1", me);
  EXPECT_EQ(names(rest), expected);
}

// DMs: only to people one shares a space (or a DM) with; a block refuses them with a clear
// error, and is listed to its author only.
TEST_F(Access, DmPolicyAndBlocks) {
  if (server_->external()) GTEST_SKIP() << "the external server's DM policy is its own";
  auto a = account("a"), b = account("b"), stranger = account("stranger");
  auto wa = ws(a);
  EXPECT_EQ(outcome(*wa, send_dm(cid(), b.id, "hi")), "forbidden");
  const std::string sid = space(a);
  join(a, sid, b);
  EXPECT_EQ(outcome(*wa, send_dm(cid(), b.id, "hi")), "sent");
  auto wb = ws(b);
  EXPECT_EQ(outcome(*wb, send_dm(cid(), a.id, "hello")), "sent");
  EXPECT_EQ(outcome(*wb, send_dm(cid(), stranger.id, "hello")), "forbidden");

  ASSERT_EQ(post("/api/v1/users/me/blocks", bj::object{{"user_id", a.id}}, b).status, 204);
  ASSERT_EQ(post("/api/v1/users/me/blocks", bj::object{{"user_id", a.id}}, b).status, 204);
  EXPECT_EQ(post("/api/v1/users/me/blocks", bj::object{{"user_id", b.id}}, b).status, 400);
  EXPECT_EQ(post("/api/v1/users/me/blocks", bj::object{{"user_id", "987654321"}}, b).status, 404);
  const std::string refused_cid = cid();
  wa->send(send_dm(refused_cid, b.id, "are you there?"));
  auto err = wa->recv_until([&](const bj::object& f) {
    return str(f, "op") == "error" && f.contains("cid") && str(f, "cid") == refused_cid;
  });
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(str(err.back(), "code"), "forbidden");
  EXPECT_FALSE(str(err.back(), "message").empty());
  EXPECT_EQ(outcome(*wb, send_dm(cid(), a.id, "bye")), "forbidden");  // the blocker neither
  auto listed = get("/api/v1/users/me/blocks", b);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(ids(listed, "blocks", "user_id"), std::vector<std::string>{a.id});
  EXPECT_TRUE(get("/api/v1/users/me/blocks", a).json.as_object().at("blocks").as_array().empty());

  EXPECT_EQ(del("/api/v1/users/me/blocks/" + a.id, b).status, 204);
  EXPECT_EQ(del("/api/v1/users/me/blocks/" + a.id, b).status, 404);
  EXPECT_EQ(outcome(*wa, send_dm(cid(), b.id, "again")), "sent");
  // An existing DM outlives the shared space.
  ASSERT_EQ(post("/api/v1/spaces/" + sid + "/leave", bj::object{}, b).status, 204);
  EXPECT_EQ(outcome(*wa, send_dm(cid(), b.id, "still friends")), "sent");
}

// The user directory (GET /users?q=): a case-insensitive name prefix, by name and paged, over
// the people the caller may DM: under shared_space those sharing a space with them, never the
// caller, a deactivated account or a phone; under "anyone" a prefix is required.
TEST(Directory, FindsByNamePrefixOnlyPeopleTheCallerMayDm) {
  const std::string admin_phone = "+1557" + std::to_string(::getpid() % 10000) + "1000001";
  ServerProcess server({"--limits-dm-policy", "shared_space", "--auth-admins", admin_phone});
  server.start();
  if (server.external()) GTEST_SKIP() << "the external server's DM policy and admins are its own";
  Http h(server.host(), server.port());
  Account admin = make_account(h, "root", admin_phone);
  Account me = make_account(h, "Dirk"), alice = make_account(h, "Alice Liddell"),
          alison = make_account(h, "alison"), albert = make_account(h, "ALBERT"),
          bob = make_account(h, "Bob"), stranger = make_account(h, "Alistair"),
          gone = make_account(h, "Alina");
  auto made = h.post("/api/v1/spaces", bj::object{{"name", "team"}}, me.access);
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string sid = made.str("id");
  for (const Account* a : {&alice, &alison, &albert, &bob, &gone}) {
    auto inv = h.post("/api/v1/spaces/" + sid + "/invites", bj::object{}, me.access);
    ASSERT_EQ(inv.status, 201) << inv.body;
    ASSERT_EQ(
        h.post("/api/v1/invites/" + inv.str("code") + "/accept", bj::object{}, a->access).status,
        200);
  }
  ASSERT_EQ(
      h.post("/api/v1/admin/users/" + gone.id + "/deactivate", bj::object{}, admin.access).status,
      204);

  auto find = [&](const std::string& query, const Account& who) {
    return h.get("/api/v1/users?" + query, who.access);
  };
  auto ids = [](const HttpResult& r) {
    std::vector<std::string> out;
    for (const auto& u : r.json.as_object().at("users").as_array()) {
      EXPECT_FALSE(u.as_object().contains("phone"));
      out.emplace_back(u.as_object().at("id").as_string());
    }
    return out;
  };
  using V = std::vector<std::string>;
  auto ali = find("q=ali", me);
  ASSERT_EQ(ali.status, 200) << ali.body;
  EXPECT_EQ(ids(ali), (V{alice.id, alison.id}));  // not the stranger, not the deactivated
  EXPECT_EQ(ids(find("q=ALI", me)), (V{alice.id, alison.id}));
  EXPECT_EQ(ids(find("q=Alice%20L", me)), (V{alice.id}));

  // Paged in name order: the last user's id places the next page.
  auto first = find("q=al&limit=2", me);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(ids(first), (V{albert.id, alice.id}));
  EXPECT_EQ(first.str("next_after"), alice.id);
  auto second = find("q=al&limit=2&after=" + alice.id, me);
  EXPECT_EQ(ids(second), (V{alison.id}));
  EXPECT_TRUE(second.json.as_object().at("next_after").is_null());

  // No prefix: everyone the caller shares a space with; a LIKE wildcard is a plain character.
  EXPECT_EQ(ids(find("q=", me)), (V{albert.id, alice.id, alison.id, bob.id}));
  EXPECT_TRUE(ids(find("q=%25", me)).empty());
  EXPECT_TRUE(ids(find("q=_", me)).empty());
  // The stranger shares no space: nobody; the directory is also theirs to see from the space.
  EXPECT_TRUE(ids(find("q=", stranger)).empty());
  EXPECT_EQ(ids(find("q=dir", bob)), (V{me.id}));

  // Validation and authentication.
  EXPECT_EQ(find("q=" + std::string(65, 'a'), me).status, 400);
  EXPECT_EQ(find("q=%FF", me).status, 400);
  EXPECT_EQ(find("q=a&limit=0", me).status, 400);
  EXPECT_EQ(find("q=a&limit=101", me).status, 400);
  EXPECT_EQ(find("q=a&after=x", me).status, 400);
  EXPECT_EQ(find("q=a&after=987654321", me).status, 400);
  EXPECT_EQ(h.get("/api/v1/users?q=a").status, 401);

  // Leaving the space leaves the directory.
  ASSERT_EQ(h.post("/api/v1/spaces/" + sid + "/leave", bj::object{}, alison.access).status, 204);
  EXPECT_EQ(ids(find("q=ali", me)), (V{alice.id}));
}

// Under "anyone", a prefix finds any user; without one, only the people sharing a space.
TEST(Directory, UnderTheAnyonePolicyAPrefixFindsAnyone) {
  ServerProcess server;  // the suites' "anyone"
  server.start();
  if (server.external()) GTEST_SKIP() << "the external server's DM policy is its own";
  Http h(server.host(), server.port());
  const std::string tag = "Zq" + std::to_string(::getpid());
  Account me = make_account(h, "me"), other = make_account(h, tag + " Other"),
          mate = make_account(h, tag + " Mate");
  auto made = h.post("/api/v1/spaces", bj::object{{"name", "pair"}}, me.access);
  ASSERT_EQ(made.status, 201) << made.body;
  auto inv = h.post("/api/v1/spaces/" + made.str("id") + "/invites", bj::object{}, me.access);
  ASSERT_EQ(inv.status, 201) << inv.body;
  ASSERT_EQ(
      h.post("/api/v1/invites/" + inv.str("code") + "/accept", bj::object{}, mate.access).status,
      200);
  auto ids = [](const HttpResult& r) {
    std::vector<std::string> out;
    for (const auto& u : r.json.as_object().at("users").as_array()) {
      out.emplace_back(u.as_object().at("id").as_string());
    }
    return out;
  };
  using V = std::vector<std::string>;
  auto all = h.get("/api/v1/users?q=", me.access);
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(ids(all), (V{mate.id}));
  auto found = h.get("/api/v1/users?q=" + tag, me.access);
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(ids(found), (V{mate.id, other.id}));  // "… Mate" before "… Other"
}

// --- the matrix -------------------------------------------------------------------------------

// Each kind of user of one space, and what they hold.
enum Who {
  kOutsider,
  kInvited,
  kMember,
  kAdmin,
  kOwner,
  kRemoved,
  kBanned,
  kDeactivated,
  kWhoCount
};
const char* const kWhoName[] = {"outsider", "invited", "member", "admin",
                                "owner",    "removed", "banned", "deactivated"};

struct Row {
  std::string what;  // METHOD path (S: space, P: public channel, V: private channel, ...)
  int expect[kWhoCount];
};

// Every space, channel, DM, message, file, avatar, search, invite and presence endpoint and
// every WebSocket op, with the answer each kind of user gets. "member", "admin" and
// "deactivated" joined the public channel P ("deactivated" before a server admin deactivated
// them, the others by its join row, which comes first) but are not in the private channel V,
// which the owner created. p and v are the owner's messages in P and V, with a file each.
// Rows that change membership for good (remove, ban, transfer) have their own tests above;
// here they are tried only where they must be refused; leaving and accepting come last.
// A list or search row answers 200 when the thing is in it, 404 when it is not (the list
// itself answers 200). WS rows: 200 = done ("sent", the change frame, no error), error codes
// as HTTP statuses; 401 = the server closed the connection.
const std::vector<Row>& matrix() {
  //                                                      out  inv  mem  adm  own  rem  ban  dea
  static const std::vector<Row> rows = {
      {"WS connect", {200, 200, 200, 200, 200, 200, 200, 401}},
      {"GET /users/me", {200, 200, 200, 200, 200, 200, 200, 401}},
      {"POST /ws/ticket", {201, 201, 201, 201, 201, 201, 201, 401}},
      {"GET /users/owner", {200, 200, 200, 200, 200, 200, 200, 401}},
      {"GET /spaces/S", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /spaces lists S", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /spaces/S/members", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /spaces/S/channels", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /spaces/S/avatar", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"PUT /spaces/S/avatar", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"PATCH /spaces/S name", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"PATCH /spaces/S discoverable=false", {404, 404, 403, 403, 200, 404, 404, 401}},
      {"POST /spaces/S/join", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /spaces/S/invites", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"POST /spaces/S/invites", {404, 404, 403, 201, 201, 404, 404, 401}},
      {"DELETE /spaces/S/invites/X", {404, 404, 403, 404, 404, 404, 404, 401}},
      {"GET /spaces/S/bans", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"POST /spaces/S/members owner", {404, 404, 403, 204, 204, 404, 404, 401}},
      {"PATCH /spaces/S/members/owner role=member", {404, 404, 403, 403, 409, 404, 404, 401}},
      {"DELETE /spaces/S/members/owner", {404, 404, 403, 403, 409, 404, 404, 401}},
      {"POST /spaces/S/bans owner", {404, 404, 403, 403, 400, 404, 404, 401}},
      {"DELETE /spaces/S/bans/outsider", {404, 404, 403, 404, 404, 404, 404, 401}},
      {"POST /spaces/S/transfer owner", {404, 404, 403, 403, 200, 404, 404, 401}},
      {"POST /spaces/S/channels", {404, 404, 201, 201, 201, 404, 404, 401}},
      {"GET /presence owner", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS presence_sub owner", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"POST /files", {201, 201, 201, 201, 201, 201, 201, 401}},
      {"GET /admin/users", {403, 403, 403, 403, 403, 403, 403, 401}},
      {"GET /admin/spaces", {403, 403, 403, 403, 403, 403, 403, 401}},
      {"POST /admin/users/owner/deactivate", {403, 403, 403, 403, 403, 403, 403, 401}},
      {"DELETE /admin/spaces/S/members/member", {403, 403, 403, 403, 403, 403, 403, 401}},
      {"DELETE /admin/messages/p", {403, 403, 403, 403, 403, 403, 403, 401}},
      {"POST /channels/P/join", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /channels/P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /conversations lists P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /channels/P/members", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /channels/P/avatar", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"PUT /channels/P/avatar", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"PATCH /channels/P name", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"GET /channels/P/messages", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /messages/p", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /files/p", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"GET /search finds p", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"POST /spaces/S/channels/P/members owner", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS send P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS edit p", {404, 404, 403, 403, 200, 404, 404, 401}},
      {"WS react new P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS unreact new P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS delete new P", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"WS typing P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS read P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS ack P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"WS sync backfills P", {404, 404, 200, 200, 200, 404, 404, 401}},
      {"PATCH /channels/P archived=false", {404, 404, 403, 200, 200, 404, 404, 401}},
      {"DELETE /channels/new P", {404, 404, 403, 204, 204, 404, 404, 401}},
      {"GET /channels/V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"POST /channels/V/join", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /conversations lists V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /channels/V/members", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /channels/V/avatar", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"PUT /channels/V/avatar", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"PATCH /channels/V name", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /channels/V/messages", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /messages/v", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /files/v", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"GET /search finds v", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"POST /spaces/S/channels/V/members owner", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS send V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS edit v", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS react new V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS unreact new V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS delete new V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS typing V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS read V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS ack V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"WS sync backfills V", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"PATCH /channels/V archived=false", {404, 404, 404, 404, 200, 404, 404, 401}},
      {"DELETE /channels/new V", {404, 404, 404, 404, 204, 404, 404, 401}},
      {"GET /invites/C", {200, 200, 200, 200, 200, 200, 200, 401}},
      {"GET /dms/owner/messages", {200, 200, 200, 200, 400, 200, 200, 401}},
      {"WS dm owner", {403, 403, 200, 200, 400, 403, 403, 401}},
      {"POST /users/me/blocks owner", {204, 204, 204, 204, 400, 204, 204, 401}},
      {"DELETE /users/me/blocks/owner", {204, 204, 204, 204, 404, 204, 204, 401}},
      // The owner leaves P and V here (removing oneself is leaving), then the others.
      {"DELETE /channels/P/members/owner", {404, 404, 403, 403, 204, 404, 404, 401}},
      {"DELETE /channels/V/members/owner", {404, 404, 404, 404, 204, 404, 404, 401}},
      // Not in P any more, the owner still sees it: 403; V is then out of their sight.
      {"POST /channels/P/leave", {404, 404, 204, 204, 403, 404, 404, 401}},
      {"POST /channels/V/leave", {404, 404, 404, 404, 404, 404, 404, 401}},
      // Whoever holds the code joins, but the banned; then every member but the owner leaves.
      {"POST /invites/C/accept", {200, 200, 200, 200, 200, 200, 403, 401}},
      {"POST /spaces/S/leave", {204, 204, 204, 204, 409, 204, 404, 401}},
  };
  return rows;
}

// A WebSocket answer as an HTTP status (see matrix()); 0: none of these.
int status_of(const std::string& answer) {
  static const std::map<std::string, int> kStatus = {{"sent", 200},
                                                     {"ok", 200},
                                                     {"not_found", 404},
                                                     {"forbidden", 403},
                                                     {"closed", 401},
                                                     {"unauthenticated", 401},
                                                     {"invalid_argument", 400}};
  const auto it = kStatus.find(answer);
  return it == kStatus.end() ? 0 : it->second;
}

// An op whose success has no answer of its own, then a ping: the session reads its next frame
// only after the op is done, so an error for the op comes before the pong. "ok" or the code.
std::string quiet_outcome(Ws& w, const bj::object& frame) {
  static std::atomic<int> pings{0};
  const std::string t = "after-" + std::to_string(++pings);
  const std::string op(frame.at("op").as_string());
  w.send(frame);
  w.send(bj::object{{"op", "ping"}, {"t", t}});
  auto got =
      w.recv_until([&](const bj::object& f) { return str(f, "op") == "pong" && str(f, "t") == t; });
  if (got.empty() || str(got.back(), "op") != "pong") return "timeout";
  for (const auto& f : got) {
    if (str(f, "op") == "error" && str(f, "ref") == op) return str(f, "code");
  }
  return "ok";
}

// A change of message `frame.id` (edit, react, delete): "ok" once its change frame `done`
// came back to this connection, else the code of the error that names the message.
std::string change_outcome(Ws& w, const bj::object& frame, const std::string& done) {
  const std::string id(frame.at("id").as_string());
  const std::string op(frame.at("op").as_string());
  w.send(frame);
  auto got = w.recv_until([&](const bj::object& f) {
    const std::string o = str(f, "op");
    return (o == done || (o == "error" && str(f, "ref") == op)) && str(f, "id") == id;
  });
  if (got.empty() || str(got.back(), "id") != id) return "timeout";
  return str(got.back(), "op") == "error" ? str(got.back(), "code") : "ok";
}

TEST_F(Access, AuthorizationMatrix) {
  // First: standalone, the first account is a server admin too.
  const Account root = server_admin();
  std::vector<Account> who;
  for (int w = 0; w < kWhoCount; ++w) who.push_back(account(kWhoName[w]));
  const Account& owner = who[kOwner];
  const std::string sid = space(owner, "matrix");
  for (Who w : {kMember, kAdmin, kRemoved, kBanned, kDeactivated}) join(owner, sid, who[w]);
  ASSERT_EQ(patch("/api/v1/spaces/" + sid + "/members/" + who[kAdmin].id,
                  bj::object{{"role", "admin"}}, owner)
                .status,
            200);
  const std::string code = invite(owner, sid);  // what "invited" holds (and everyone may see)
  ASSERT_EQ(del("/api/v1/spaces/" + sid + "/members/" + who[kRemoved].id, owner).status, 204);
  ASSERT_EQ(post("/api/v1/spaces/" + sid + "/bans", bj::object{{"user_id", who[kBanned].id}}, owner)
                .status,
            204);
  const std::string pub = channel(owner, sid, "public");
  const std::string priv = channel(owner, sid, "private", true);
  ASSERT_EQ(post("/api/v1/channels/" + pub + "/join", bj::object{}, who[kDeactivated]).status, 200);
  const std::string S = "/api/v1/spaces/" + sid;
  const std::string png = png_halves(16, 16);
  for (const std::string& target : {S, "/api/v1/channels/" + pub, "/api/v1/channels/" + priv}) {
    ASSERT_EQ(put(target + "/avatar", png, owner).status, 200);
  }
  std::vector<std::unique_ptr<Ws>> sockets;
  for (const auto& a : who) sockets.push_back(ws(a));
  Ws& mine = *sockets[kOwner];
  // The owner's message in a channel with a file, and its id; `body` is a word to search.
  auto post_message = [&](const std::string& ch, const std::string& body, bool with_file) {
    const std::string c = cid();
    bj::object f = send_channel(c, ch, body);
    const std::string file = with_file ? upload(owner).str("id") : std::string();
    if (with_file) {
      f["type"] = "file";
      f["file"] = file;
    }
    mine.send(f);
    auto got = mine.recv_until([&](const bj::object& fr) {
      return (str(fr, "op") == "sent" || str(fr, "op") == "error") && str(fr, "cid") == c;
    });
    EXPECT_TRUE(!got.empty() && str(got.back(), "op") == "sent") << body;
    return std::pair{got.empty() ? std::string() : str(got.back(), "id"), file};
  };
  const std::pair<std::string, std::string> p = post_message(pub, "pinecone", true);
  const std::pair<std::string, std::string> v = post_message(priv, "violin", true);
  const std::string& msg_p = p.first;

  // A server admin deactivates "deactivated": their socket closes (in a cluster, once the
  // gateway that holds it polled the change: auth.account_poll_ms).
  ASSERT_EQ(post("/api/v1/admin/users/" + who[kDeactivated].id + "/deactivate", bj::object{}, root)
                .status,
            204);
  EXPECT_TRUE(sockets[kDeactivated]->wait_closed(std::chrono::seconds(30)));

  auto run = [&](const std::string& what, int w) -> int {
    const Account& a = who[w];
    Ws& sock = *sockets[w];
    const bool ws_row = what.rfind("WS ", 0) == 0;
    if (ws_row && what != "WS connect" && sock.closed()) return status_of("closed");
    if (what == "WS connect") {
      try {
        ws(a);
        return 200;
      } catch (const std::exception&) {
        return 401;
      }
    }
    if (what == "GET /users/me") return get("/api/v1/users/me", a).status;
    if (what == "POST /ws/ticket") return post("/api/v1/ws/ticket", bj::object{}, a).status;
    if (what == "GET /users/owner") return get("/api/v1/users/" + owner.id, a).status;
    if (what == "GET /spaces/S") return get(S, a).status;
    if (what == "GET /spaces lists S") {
      auto r = get("/api/v1/spaces?limit=100", a);
      if (r.status != 200) return r.status;
      return contains(ids(r, "spaces", "id"), sid) ? 200 : 404;
    }
    if (what == "GET /spaces/S/members") return get(S + "/members", a).status;
    if (what == "GET /spaces/S/channels") return get(S + "/channels", a).status;
    if (what == "GET /spaces/S/avatar") return get(S + "/avatar", a).status;
    if (what == "PUT /spaces/S/avatar") return put(S + "/avatar", png, a).status;
    if (what == "PATCH /spaces/S name") return patch(S, bj::object{{"name", "m"}}, a).status;
    if (what == "PATCH /spaces/S discoverable=false") {
      return patch(S, bj::object{{"discoverable", false}}, a).status;
    }
    if (what == "POST /spaces/S/join") return post(S + "/join", bj::object{}, a).status;
    if (what == "GET /spaces/S/invites") return get(S + "/invites", a).status;
    if (what == "POST /spaces/S/invites") return post(S + "/invites", bj::object{}, a).status;
    if (what == "DELETE /spaces/S/invites/X") {
      return del(S + "/invites/NoSuchInvitationCode00", a).status;
    }
    if (what == "GET /spaces/S/bans") return get(S + "/bans", a).status;
    if (what == "POST /spaces/S/members owner") {
      return post(S + "/members", bj::object{{"user_id", owner.id}}, a).status;
    }
    if (what == "PATCH /spaces/S/members/owner role=member") {
      return patch(S + "/members/" + owner.id, bj::object{{"role", "member"}}, a).status;
    }
    if (what == "DELETE /spaces/S/members/owner") return del(S + "/members/" + owner.id, a).status;
    if (what == "POST /spaces/S/bans owner") {
      return post(S + "/bans", bj::object{{"user_id", owner.id}}, a).status;
    }
    if (what == "DELETE /spaces/S/bans/outsider") {
      return del(S + "/bans/" + who[kOutsider].id, a).status;
    }
    if (what == "POST /spaces/S/transfer owner") {
      return post(S + "/transfer", bj::object{{"user_id", owner.id}}, a).status;
    }
    if (what == "POST /spaces/S/channels") {
      return post(S + "/channels", bj::object{{"name", "by-" + std::string(kWhoName[w])}}, a)
          .status;
    }
    if (what == "GET /presence owner") {
      auto r = get("/api/v1/presence?ids=" + owner.id, a);
      if (r.status != 200) return r.status;
      return r.body.find(owner.id) != std::string::npos ? 200 : 404;
    }
    if (what == "WS presence_sub owner") {
      sock.send(bj::object{{"op", "presence_sub"}, {"users", bj::array{bj::value(owner.id)}}});
      auto got = sock.recv_until([](const bj::object& f) {
        return str(f, "op") == "presence_sub" ||
               (str(f, "op") == "error" && str(f, "ref") == "presence_sub");
      });
      if (got.empty() || str(got.back(), "op") == "error") {
        return got.empty() ? 0 : status_of(str(got.back(), "code"));
      }
      return bj::serialize(got.back().at("presence")).find(owner.id) != std::string::npos ? 200
                                                                                          : 404;
    }
    if (what == "POST /files") return upload(a).status;
    if (what == "GET /admin/users") return get("/api/v1/admin/users", a).status;
    if (what == "GET /admin/spaces") return get("/api/v1/admin/spaces", a).status;
    if (what == "POST /admin/users/owner/deactivate") {
      return post("/api/v1/admin/users/" + owner.id + "/deactivate", bj::object{}, a).status;
    }
    if (what == "DELETE /admin/spaces/S/members/member") {
      return del("/api/v1/admin/spaces/" + sid + "/members/" + who[kMember].id, a).status;
    }
    if (what == "DELETE /admin/messages/p") return del("/api/v1/admin/messages/" + msg_p, a).status;
    for (const auto& [letter, id, msg, file] :
         {std::tuple{'P', pub, p.first, p.second}, std::tuple{'V', priv, v.first, v.second}}) {
      const std::string c = "/api/v1/channels/" + id;
      const std::string l(1, letter);
      const std::string m(1, static_cast<char>(std::tolower(letter)));
      const std::string conv = "channel:" + id;
      if (what == "POST /channels/" + l + "/join") return post(c + "/join", bj::object{}, a).status;
      if (what == "GET /channels/" + l) return get(c, a).status;
      if (what == "GET /conversations lists " + l) {
        auto r = get("/api/v1/conversations", a);
        if (r.status != 200) return r.status;
        return contains(ids(r, "conversations", "conversation"), conv) ? 200 : 404;
      }
      if (what == "GET /channels/" + l + "/members") return get(c + "/members", a).status;
      if (what == "GET /channels/" + l + "/avatar") return get(c + "/avatar", a).status;
      if (what == "PUT /channels/" + l + "/avatar") return put(c + "/avatar", png, a).status;
      if (what == "PATCH /channels/" + l + " name") {
        return patch(c, bj::object{{"name", "renamed"}}, a).status;
      }
      if (what == "GET /channels/" + l + "/messages") return get(c + "/messages", a).status;
      if (what == "GET /messages/" + m) return get("/api/v1/messages/" + msg, a).status;
      if (what == "GET /files/" + m) return get("/api/v1/files/" + file, a).status;
      if (what == "GET /search finds " + m) {
        auto r = get(std::string("/api/v1/search?q=") + (letter == 'P' ? "pinecone" : "violin"), a);
        if (r.status != 200) return r.status;
        return r.body.find(msg) != std::string::npos ? 200 : 404;
      }
      if (what == "POST /spaces/S/channels/" + l + "/members owner") {
        return post(S + "/channels/" + id + "/members", bj::object{{"user_id", owner.id}}, a)
            .status;
      }
      if (what == "PATCH /channels/" + l + " archived=false") {
        return patch(c, bj::object{{"archived", false}}, a).status;
      }
      // The owner removing themselves is leaving; no row after this one uses P or V but P's
      // leave.
      if (what == "DELETE /channels/" + l + "/members/owner") {
        return del(c + "/members/" + owner.id, a).status;
      }
      if (what == "POST /channels/" + l + "/leave")
        return post(c + "/leave", bj::object{}, a).status;
      if (what == "DELETE /channels/new " + l) {
        const std::string fresh = channel(owner, sid, "doomed", letter == 'V');
        if (w == kMember || w == kAdmin) {
          EXPECT_EQ(post("/api/v1/channels/" + fresh + "/join", bj::object{}, a).status,
                    letter == 'P' ? 200 : 404);
        }
        return del("/api/v1/channels/" + fresh, a).status;
      }
      if (what == "WS send " + l) return status_of(outcome(sock, send_channel(cid(), id, "hi")));
      if (what == "WS edit " + m) {
        return status_of(change_outcome(
            sock, bj::object{{"op", "edit"}, {"id", msg}, {"body", "edited by " + a.name}},
            "edited"));
      }
      if (what == "WS react new " + l) {
        const std::string fresh = post_message(id, "react to me", false).first;
        return status_of(change_outcome(
            sock, bj::object{{"op", "react"}, {"id", fresh}, {"emoji", "+1"}, {"on", true}},
            "reaction"));
      }
      if (what == "WS delete new " + l) {
        const std::string fresh = post_message(id, "delete me", false).first;
        return status_of(
            change_outcome(sock, bj::object{{"op", "delete"}, {"id", fresh}}, "deleted"));
      }
      if (what == "WS typing " + l) {
        return status_of(quiet_outcome(sock, bj::object{{"op", "typing"}, {"conversation", conv}}));
      }
      if (what == "WS read " + l || what == "WS ack " + l) {
        const std::string op = what.substr(3, what.find(' ', 3) - 3);
        return status_of(
            quiet_outcome(sock, bj::object{{"op", op}, {"conversation", conv}, {"seq", 1}}));
      }
      // On a connection of its own: this one's backfills skip what it was sent live.
      if (what == "WS sync backfills " + l) {
        Ws fresh(server_->host(), server_->port(), a.access);
        bool backfilled = false;
        auto until_synced = [&] {
          auto got = fresh.recv_until([&](const bj::object& f) {
            if (str(f, "op") == "msg" && str(f, "conversation") == conv) backfilled = true;
            return str(f, "op") == "synced" || (str(f, "op") == "error" && str(f, "ref") == "sync");
          });
          return got.empty()                        ? std::string("timeout")
                 : str(got.back(), "op") == "error" ? str(got.back(), "code")
                                                    : std::string("ok");
        };
        if (const std::string r = until_synced(); r != "ok") return status_of(r);
        fresh.send(bj::object{{"op", "sync"}, {"cursors", bj::object{{conv, 0}}}});
        if (const std::string r = until_synced(); r != "ok") return status_of(r);
        return backfilled ? 200 : 404;
      }
      if (what == "WS unreact new " + l) {
        const std::string fresh = post_message(id, "unreact", false).first;
        bj::object frame{{"op", "react"}, {"id", fresh}, {"emoji", "+1"}, {"on", true}};
        if (const std::string r = change_outcome(sock, frame, "reaction"); r != "ok") {
          return status_of(r);
        }
        frame["on"] = false;
        return status_of(change_outcome(sock, frame, "reaction"));
      }
    }
    if (what == "GET /invites/C") return get("/api/v1/invites/" + code, a).status;
    if (what == "POST /invites/C/accept") return accept(code, a);
    if (what == "POST /spaces/S/leave") return post(S + "/leave", bj::object{}, a).status;
    if (what == "GET /dms/owner/messages") {
      return get("/api/v1/dms/" + owner.id + "/messages", a).status;
    }
    if (what == "WS dm owner") return status_of(outcome(sock, send_dm(cid(), owner.id, "hi")));
    if (what == "POST /users/me/blocks owner") {
      return post("/api/v1/users/me/blocks", bj::object{{"user_id", owner.id}}, a).status;
    }
    if (what == "DELETE /users/me/blocks/owner") {
      return del("/api/v1/users/me/blocks/" + owner.id, a).status;
    }
    ADD_FAILURE() << "no runner for row " << what;
    return 0;
  };
  for (const auto& row : matrix()) {
    // An external server (the local cluster) has a DM policy of its own.
    if (server_->external() && row.what.rfind("WS dm", 0) == 0) continue;
    for (int w = 0; w < kWhoCount; ++w) {
      EXPECT_EQ(run(row.what, w), row.expect[w]) << row.what << " as " << kWhoName[w];
    }
  }
}

}  // namespace
}  // namespace imd::test
