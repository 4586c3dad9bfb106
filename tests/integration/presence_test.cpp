// Presence against the real binary with real WebSocket clients (docs/protocol.md, "Presence"):
// all devices folded, idle and away, the offline grace, subscriptions bounded to what a client
// shows and to the users it may see, and the REST read for a first paint.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

bool is_op(const bj::object& f, const char* op) {
  return str(f, "op") == op;
}

class Presence : public ::testing::Test {
 protected:
  // A grace long enough that a reconnect on a loaded machine falls inside it.
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--ws-presence-grace-ms", std::to_string(kGraceMs)});
    server_->start();
  }
  Http http() { return Http(server_->host(), server_->port()); }
  std::unique_ptr<Ws> connect(const Account& a) {
    auto ws = std::make_unique<Ws>(server_->host(), server_->port(), a.access);
    EXPECT_TRUE(ws->recv_op("synced")) << "no synced";
    return ws;
  }
  // Subscribes `ws` to `ids` and returns the answer's presence map.
  static bj::object subscribe(Ws& ws, const std::vector<std::string>& ids) {
    bj::array a;
    for (const auto& id : ids) a.emplace_back(id);
    ws.send(bj::object{{"op", "presence_sub"}, {"users", std::move(a)}});
    auto r = ws.recv_op("presence_sub");
    EXPECT_TRUE(r) << "no presence_sub answer";
    return r ? r->at("presence").as_object() : bj::object{};
  }
  // The next presence frame about `user`: its status ("" when none came).
  static std::string next_status(Ws& ws, const std::string& user) {
    for (;;) {
      auto f = ws.recv_op("presence", std::chrono::seconds(10));
      if (!f) return "";
      if (str(*f, "user") == user) return str(*f, "status");
    }
  }
  // The frames `ws` gets before the answer to a ping: what was queued for it until now.
  static std::vector<bj::object> drain(Ws& ws) {
    ws.send(bj::object{{"op", "ping"}});
    return ws.recv_until([](const bj::object& f) { return is_op(f, "pong"); });
  }

  static constexpr int kGraceMs = 3000;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(Presence, AllDevicesFoldedIdleAwayAndOfflineAfterTheGrace) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  make_space_channel(h, a, {&b});
  auto wb = connect(b);
  auto first = subscribe(*wb, {a.id});
  EXPECT_EQ(first.at(a.id).as_string(), "offline");

  auto a1 = connect(a);
  EXPECT_EQ(next_status(*wb, a.id), "online");
  // The only device goes idle: away. A second, active device: online again.
  a1->send(bj::object{{"op", "idle"}, {"idle", true}});
  EXPECT_EQ(next_status(*wb, a.id), "away");
  auto a2 = connect(a);
  EXPECT_EQ(next_status(*wb, a.id), "online");
  a2->send(bj::object{{"op", "idle"}, {"idle", true}});
  EXPECT_EQ(next_status(*wb, a.id), "away");
  a2->send(bj::object{{"op", "idle"}, {"idle", false}});
  EXPECT_EQ(next_status(*wb, a.id), "online");
  // Away set explicitly holds over active devices until cleared.
  a2->send(bj::object{{"op", "away"}, {"away", true}});
  EXPECT_EQ(next_status(*wb, a.id), "away");
  a2->send(bj::object{{"op", "away"}, {"away", false}});
  EXPECT_EQ(next_status(*wb, a.id), "online");
  // The active device leaves: the idle one is left, so away; the REST read agrees.
  a2.reset();
  EXPECT_EQ(next_status(*wb, a.id), "away");
  auto rest = h.get("/api/v1/presence?ids=" + a.id, b.access);
  ASSERT_EQ(rest.status, 200) << rest.body;
  EXPECT_EQ(rest.json.at("presence").at(a.id).as_string(), "away");

  // The last device closes and a new, active one opens within the grace: bob hears online,
  // never offline in between (no flapping).
  a1.reset();
  auto a3 = connect(a);
  EXPECT_EQ(next_status(*wb, a.id), "online");
  // It closes for good: offline after the grace, once.
  a3.reset();
  EXPECT_EQ(next_status(*wb, a.id), "offline");
  for (const auto& f : drain(*wb)) EXPECT_FALSE(is_op(f, "presence")) << f;
  rest = h.get("/api/v1/presence?ids=" + a.id, b.access);
  EXPECT_EQ(rest.json.at("presence").at(a.id).as_string(), "offline");
}

TEST_F(Presence, OnlySubscribersHearAndOnlyOfUsersTheyMaySee) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto out = make_account(h, "outsider");
  make_space_channel(h, a, {&b, &c});
  auto wb = connect(b), wc = connect(c), wo = connect(out);
  // bob watches alice; carol shares the space but watches nobody; the outsider shares nothing:
  // alice is left out of their answer and they hear nothing of her.
  auto bob_view = subscribe(*wb, {a.id, out.id});
  EXPECT_TRUE(bob_view.contains(a.id));
  EXPECT_FALSE(bob_view.contains(out.id));
  auto outsider_view = subscribe(*wo, {a.id, b.id, out.id});
  EXPECT_FALSE(outsider_view.contains(a.id));
  EXPECT_FALSE(outsider_view.contains(b.id));
  EXPECT_EQ(outsider_view.at(out.id).as_string(), "online");  // oneself
  auto wa = connect(a);
  EXPECT_EQ(next_status(*wb, a.id), "online");
  for (Ws* ws : {wc.get(), wo.get()}) {
    for (const auto& f : drain(*ws)) EXPECT_FALSE(is_op(f, "presence")) << f;
  }
  // The REST read leaves out whom the caller may not see.
  auto seen = h.get("/api/v1/presence?ids=" + a.id + "," + out.id, c.access);
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(seen.json.at("presence").at(a.id).as_string(), "online");
  EXPECT_FALSE(seen.json.at("presence").as_object().contains(out.id));
  EXPECT_FALSE(h.get("/api/v1/presence?ids=" + a.id, out.access)
                   .json.at("presence")
                   .as_object()
                   .contains(a.id));

  // A new subscription replaces the old one: bob stops hearing of alice, carol starts.
  EXPECT_TRUE(subscribe(*wb, {c.id}).contains(c.id));
  EXPECT_EQ(subscribe(*wc, {a.id}).at(a.id).as_string(), "online");
  wa->send(bj::object{{"op", "away"}, {"away", true}});
  EXPECT_EQ(next_status(*wc, a.id), "away");
  // The change went out in one push: had bob still been watching, his frame would be queued.
  for (const auto& f : drain(*wb)) {
    EXPECT_FALSE(is_op(f, "presence") && str(f, "user") == a.id) << f;
  }
}

// A watcher removed from the only space it shared with a user stops hearing of them: its watch
// list is checked again when the `removed` frame reaches its connection.
TEST_F(Presence, AWatcherRemovedFromTheSharedSpaceStopsHearing) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto sc = make_space_channel(h, a, {&b, &c});
  auto wb = connect(b), wc = connect(c);
  EXPECT_TRUE(subscribe(*wb, {a.id}).contains(a.id));
  EXPECT_TRUE(subscribe(*wc, {a.id}).contains(a.id));
  auto wa = connect(a);
  EXPECT_EQ(next_status(*wb, a.id), "online");
  EXPECT_EQ(next_status(*wc, a.id), "online");

  ASSERT_EQ(h.request("DELETE", "/api/v1/spaces/" + sc.space_id + "/members/" + b.id, std::nullopt,
                      a.access)
                .status,
            204);
  ASSERT_TRUE(wb->recv_op("removed"));
  // The check runs on the server's pool after the frame: a change may still reach bob while it
  // runs, so alice changes status until carol (still a member) hears one that bob does not.
  bool away = false, stopped = false;
  for (int attempt = 0; attempt < 5 && !stopped; ++attempt) {
    away = !away;
    wa->send(bj::object{{"op", "away"}, {"away", away}});
    ASSERT_EQ(next_status(*wc, a.id), away ? "away" : "online");
    stopped = true;
    for (const auto& f : drain(*wb)) {
      if (is_op(f, "presence") && str(f, "user") == a.id) stopped = false;
    }
    if (!stopped) std::this_thread::sleep_for(std::chrono::milliseconds(600));  // 2/s limit
  }
  EXPECT_TRUE(stopped) << "bob still hears of alice after his removal";
}

TEST_F(Presence, BadInputIsRefused) {
  Http h = http();
  auto a = make_account(h, "alice");
  auto wa = connect(a);
  auto refused = [&](const bj::object& frame, const char* ref) {
    wa->send(frame);
    auto e = wa->recv_op("error");
    ASSERT_TRUE(e) << frame;
    EXPECT_EQ(str(*e, "code"), "invalid_argument") << frame;
    EXPECT_EQ(str(*e, "ref"), ref);
  };
  bj::array many;
  for (int i = 1; i <= 501; ++i) many.emplace_back(std::to_string(i));
  refused({{"op", "presence_sub"}, {"users", many}}, "presence_sub");
  refused({{"op", "presence_sub"}, {"users", "1,2"}}, "presence_sub");
  refused({{"op", "presence_sub"}, {"users", bj::array{"x"}}}, "presence_sub");
  refused({{"op", "presence_sub"}, {"users", bj::array{1}}}, "presence_sub");
  refused({{"op", "idle"}, {"idle", "yes"}}, "idle");
  refused({{"op", "away"}}, "away");
  // Past the per-connection rate: too_many_requests.
  bool limited = false;
  for (int i = 0; i < 12; ++i) wa->send(bj::object{{"op", "away"}, {"away", false}});
  for (const auto& f : drain(*wa)) {
    if (is_op(f, "error") && str(f, "code") == "too_many_requests") limited = true;
  }
  EXPECT_TRUE(limited);

  std::string ids;
  for (int i = 1; i <= 501; ++i) ids += (i > 1 ? "," : "") + std::to_string(i);
  EXPECT_EQ(h.get("/api/v1/presence?ids=" + ids, a.access).status, 400);
  EXPECT_EQ(h.get("/api/v1/presence?ids=1,,2", a.access).status, 400);
  EXPECT_EQ(h.get("/api/v1/presence?ids=abc", a.access).status, 400);
  EXPECT_EQ(h.get("/api/v1/presence", a.access).status, 400);
  EXPECT_EQ(h.get("/api/v1/presence?ids=" + a.id).status, 401);
}

}  // namespace
}  // namespace imd::test
