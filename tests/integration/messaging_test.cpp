// Real-time messaging over real WebSocket connections against the real binary:
// delivery, offline inbox, resume, ordering, idempotency, unread counts, limits, crashes.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;

bool is_op(const bj::object& f, const char* op) {
  return str(f, "op") == op;
}

class Messaging : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(std::vector<std::string> flags) {
    server_ = std::make_unique<ServerProcess>(std::move(flags));
    server_->start();
  }
  Http http() { return Http(server_->host(), server_->port()); }
  std::unique_ptr<Ws> connect(const Account& a) {
    auto ws = std::make_unique<Ws>(server_->host(), server_->port(), a.access);
    auto hello = ws->recv_op("hello");
    EXPECT_TRUE(hello) << "no hello";
    return ws;
  }
  // Connects and waits for the initial backfill to finish; returns the backfilled messages.
  std::unique_ptr<Ws> connect_synced(const Account& a,
                                     std::vector<bj::object>* backfill = nullptr) {
    auto ws = connect(a);
    auto frames = ws->recv_until([](const bj::object& f) { return is_op(f, "synced"); });
    EXPECT_TRUE(!frames.empty() && is_op(frames.back(), "synced")) << "no synced";
    if (backfill) {
      for (auto& f : frames)
        if (is_op(f, "msg")) backfill->push_back(f);
    }
    return ws;
  }
  // A space owned by `owner` with one channel that every account in `members` joined.
  std::string make_channel(const Account& owner, const std::vector<const Account*>& members) {
    Http h = http();
    auto sc = make_space_channel(h, owner, members);
    space_id_ = sc.space_id;
    return sc.channel_id;
  }
  bj::object conversation(const Account& a, const std::string& name) {
    auto r = http().get("/api/v1/conversations", a.access);
    EXPECT_EQ(r.status, 200) << r.body;
    for (const auto& c : r.json.as_object().at("conversations").as_array()) {
      if (str(c.as_object(), "conversation") == name) return c.as_object();
    }
    ADD_FAILURE() << "no conversation " << name << " in " << r.body;
    return {};
  }
  // Waits until the Store holds `a`'s delivery cursor of `conv` at `seq` or beyond. One process
  // writes the ACKs it gathered before a resync; in a cluster the next connection may reach
  // another gateway, which sees them once the first one has written them (every
  // ws.ack_flush_ms, 50 ms, and at once when the connection closes): sooner, the messages would
  // come again (clients drop them by seq).
  void wait_acked(const Account& a, const std::string& conv, std::uint64_t seq) {
    for (int i = 0; i < 200; ++i) {
      if (num(conversation(a, conv), "ack_seq") >= seq) return;
      std::this_thread::sleep_for(25ms);
    }
    ADD_FAILURE() << conv << " of " << a.id << " never reached ack_seq " << seq;
  }
  std::uint64_t space_unread(const Account& a, const std::string& space) {
    auto r = http().get("/api/v1/conversations", a.access);
    for (const auto& s : r.json.as_object().at("spaces").as_array()) {
      if (str(s.as_object(), "space_id") == space) return num(s.as_object(), "unread");
    }
    ADD_FAILURE() << "no space " << space;
    return 0;
  }

  std::unique_ptr<ServerProcess> server_;
  std::string space_id_;
};

TEST_F(Messaging, DirectMessageToAnOnlineUser) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a), wb = connect_synced(b);
  wa->send(send_dm("c1", b.id, "hi bob"));
  auto sent = wa->recv_op("sent");
  ASSERT_TRUE(sent);
  EXPECT_EQ(str(*sent, "cid"), "c1");
  EXPECT_EQ(num(*sent, "seq"), 1u);
  EXPECT_EQ(str(*sent, "conversation"), "dm:" + b.id);
  EXPECT_FALSE(str(*sent, "id").empty());
  auto msg = wb->recv_op("msg");
  ASSERT_TRUE(msg);
  EXPECT_EQ(str(*msg, "body"), "hi bob");
  EXPECT_EQ(str(*msg, "from"), a.id);
  EXPECT_EQ(str(*msg, "conversation"), "dm:" + a.id);
  EXPECT_EQ(str(*msg, "id"), str(*sent, "id"));
  EXPECT_EQ(num(*msg, "created_at"), num(*sent, "created_at"));
  EXPECT_GT(num(*sent, "created_at"), 0u);
  EXPECT_EQ(num(*msg, "seq"), 1u);
  EXPECT_EQ(msg->count("cid"), 0u);  // a client id is the sender's business

  // Roaming: both participants read it over REST; an outsider may not.
  auto c = make_account(h, "carol");
  auto hist = h.get("/api/v1/dms/" + a.id + "/messages", b.access);
  ASSERT_EQ(hist.status, 200) << hist.body;
  ASSERT_EQ(hist.json.as_object().at("messages").as_array().size(), 1u);
  EXPECT_EQ(h.get("/api/v1/dms/" + b.id + "/messages", a.access).status, 200);
  EXPECT_EQ(h.get("/api/v1/dms/" + a.id + "/messages", c.access)
                .json.as_object()
                .at("messages")
                .as_array()
                .size(),
            0u);  // carol's own (empty) DM with alice
}

TEST_F(Messaging, OfflineRecipientGetsTheInboxOnConnectAndAckEmptiesIt) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a);
  for (int i = 1; i <= 5; ++i) {
    wa->send(send_dm("m" + std::to_string(i), b.id, "msg " + std::to_string(i)));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  std::vector<bj::object> backfill;
  auto wb = connect_synced(b, &backfill);
  ASSERT_EQ(backfill.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(num(backfill[i], "seq"), i + 1);
  // Not acked: a reconnect delivers them again.
  wb.reset();
  backfill.clear();
  wb = connect_synced(b, &backfill);
  EXPECT_EQ(backfill.size(), 5u);
  wb->send(bj::object{{"op", "ack"}, {"conversation", "dm:" + a.id}, {"seq", 3}});
  wb->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wb->recv_op("pong"));  // ops of one connection run in order
  wait_acked(b, "dm:" + a.id, 3);
  wb.reset();
  backfill.clear();
  wb = connect_synced(b, &backfill);
  ASSERT_EQ(backfill.size(), 2u);
  EXPECT_EQ(num(backfill[0], "seq"), 4u);
  EXPECT_EQ(num(backfill[1], "seq"), 5u);
}

// The inbox is bounded (redis.inbox_max; the SQLite one is not): an offline user who receives
// more DMs than the bound still gets every one on connect, in order: the resume notices the
// overflow and serves their DMs from the Store by delivery cursor instead of from the inbox,
// and keeps doing so until what the inbox dropped has been ACKed.
TEST_F(Messaging, AnOverflowingInboxStillDeliversEveryMessageInOrder) {
  start({"--redis-inbox-max", "3"});
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto wa = connect_synced(a), wc = connect_synced(c);
  for (int i = 1; i <= 10; ++i) {
    wa->send(send_dm("o" + std::to_string(i), b.id, "to bob " + std::to_string(i)));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  for (int i = 1; i <= 2; ++i) {
    wc->send(send_dm("p" + std::to_string(i), b.id, "carol " + std::to_string(i)));
    ASSERT_TRUE(wc->recv_op("sent"));
  }
  auto expect_all = [&](const std::vector<bj::object>& backfill) {
    std::map<std::string, std::vector<std::uint64_t>> seqs;
    for (const auto& m : backfill) seqs[str(m, "conversation")].push_back(num(m, "seq"));
    EXPECT_EQ(seqs["dm:" + a.id], (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(seqs["dm:" + c.id], (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(backfill.size(), 12u);
  };
  std::vector<bj::object> backfill;
  auto wb = connect_synced(b, &backfill);
  expect_all(backfill);
  ASSERT_FALSE(backfill.empty());
  EXPECT_EQ(str(backfill.front(), "body"), "to bob 1");

  // Not ACKed: the dropped messages are still owed, so the next connect serves them again.
  wb.reset();
  backfill.clear();
  wb = connect_synced(b, &backfill);
  expect_all(backfill);
  wb->send(bj::object{{"op", "ack"}, {"conversation", "dm:" + a.id}, {"seq", 10}});
  wb->send(bj::object{{"op", "ack"}, {"conversation", "dm:" + c.id}, {"seq", 2}});
  wb->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wb->recv_op("pong"));
  wait_acked(b, "dm:" + a.id, 10);
  wait_acked(b, "dm:" + c.id, 2);
  wb.reset();
  backfill.clear();
  wb = connect_synced(b, &backfill);
  EXPECT_TRUE(backfill.empty());  // everything ACKed; the overflow is handled

  // Back to the inbox: a later offline message arrives as usual.
  wb.reset();
  wa->send(send_dm("o11", b.id, "to bob 11"));
  ASSERT_TRUE(wa->recv_op("sent"));
  backfill.clear();
  wb = connect_synced(b, &backfill);
  ASSERT_EQ(backfill.size(), 1u);
  EXPECT_EQ(num(backfill[0], "seq"), 11u);
}

TEST_F(Messaging, ChannelWithOnlineAndOfflineMembers) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  std::string ch = make_channel(a, {&b, &c});
  auto wa = connect_synced(a), wb = connect_synced(b);
  for (int i = 1; i <= 3; ++i) {
    wa->send(send_channel("c" + std::to_string(i), ch, "hello " + std::to_string(i)));
    auto sent = wa->recv_op("sent");
    ASSERT_TRUE(sent);
    EXPECT_EQ(num(*sent, "seq"), static_cast<std::uint64_t>(i));
    EXPECT_EQ(str(*sent, "conversation"), "channel:" + ch);
  }
  for (int i = 1; i <= 3; ++i) {
    auto m = wb->recv_op("msg");
    ASSERT_TRUE(m);
    EXPECT_EQ(num(*m, "seq"), static_cast<std::uint64_t>(i));
    EXPECT_EQ(str(*m, "channel"), ch);
  }
  std::vector<bj::object> backfill;
  auto wc = connect_synced(c, &backfill);
  ASSERT_EQ(backfill.size(), 3u);
  EXPECT_EQ(str(backfill[2], "body"), "hello 3");
  // Delivery ACK moves carol's cursor: the next connection gets nothing again.
  wc->send(bj::object{{"op", "ack"}, {"conversation", "channel:" + ch}, {"seq", 3}});
  wc->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wc->recv_op("pong"));
  wait_acked(c, "channel:" + ch, 3);
  wc.reset();
  backfill.clear();
  wc = connect_synced(c, &backfill);
  EXPECT_TRUE(backfill.empty());
  auto hist = h.get("/api/v1/channels/" + ch + "/messages?limit=2", c.access);
  ASSERT_EQ(hist.status, 200);
  auto& msgs = hist.json.as_object().at("messages").as_array();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(num(msgs[0].as_object(), "seq"), 2u);
  auto older = h.get("/api/v1/channels/" + ch + "/messages?before_seq=2", c.access);
  ASSERT_EQ(older.json.as_object().at("messages").as_array().size(), 1u);
  auto newer = h.get("/api/v1/channels/" + ch + "/messages?after_seq=1&limit=100", c.access);
  ASSERT_EQ(newer.json.as_object().at("messages").as_array().size(), 2u);
}

TEST_F(Messaging, HistoryPagesAnsweredFromMemoryKeepTheirAccessChecks) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  std::string ch = make_channel(a, {&b, &c});
  auto wa = connect_synced(a);
  for (int i = 1; i <= 5; ++i) {
    wa->send(send_channel("h" + std::to_string(i), ch, "page " + std::to_string(i)));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  const std::string page = "/api/v1/channels/" + ch + "/messages?after_seq=0&limit=5";
  // The first read comes from the store, the repeats from remembered rows: the same body.
  auto first = h.get(page, b.access);
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json.as_object().at("messages").as_array().size(), 5u);
  for (int i = 0; i < 3; ++i) {
    auto again = h.get(page, b.access);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.body, first.body);
  }
  auto older = h.get("/api/v1/channels/" + ch + "/messages?before_seq=6&limit=5", c.access);
  EXPECT_EQ(older.body, first.body);
  // Whoever may not read the channel still may not, cached rows or not.
  auto out = make_account(h, "outsider");
  EXPECT_EQ(h.get(page, out.access).status, 404);
  ASSERT_EQ(h.post("/api/v1/channels/" + ch + "/leave", bj::object{}, b.access).status, 204);
  auto left = h.get(page, b.access);
  EXPECT_EQ(left.status, 404) << left.body;
  EXPECT_EQ(h.get(page, c.access).body, first.body);
  EXPECT_EQ(h.get(page).status, 401);
}

TEST_F(Messaging, EveryDeviceOfAUserGetsEveryPush) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto a1 = connect_synced(a), a2 = connect_synced(a);
  auto b1 = connect_synced(b), b2 = connect_synced(b);
  a1->send(send_dm("x1", b.id, "to both devices"));
  ASSERT_TRUE(a1->recv_op("sent"));
  for (auto* w : {b1.get(), b2.get()}) {
    auto m = w->recv_op("msg");
    ASSERT_TRUE(m);
    EXPECT_EQ(str(*m, "body"), "to both devices");
  }
  auto mine = a2->recv_op("msg");  // the sender's other device sees it, with its cid
  ASSERT_TRUE(mine);
  EXPECT_EQ(str(*mine, "conversation"), "dm:" + b.id);
  EXPECT_EQ(str(*mine, "cid"), "x1");
}

TEST_F(Messaging, RepeatedCidIsStoredAndPushedOnce) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a), wb = connect_synced(b);
  wa->send(send_dm("same", b.id, "once"));
  auto s1 = wa->recv_op("sent");
  wa->send(send_dm("same", b.id, "once"));
  auto s2 = wa->recv_op("sent");
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(str(*s1, "id"), str(*s2, "id"));
  EXPECT_EQ(num(*s1, "seq"), num(*s2, "seq"));
  ASSERT_TRUE(wb->recv_op("msg"));
  EXPECT_FALSE(wb->recv_op("msg", 500ms));
  auto hist = h.get("/api/v1/dms/" + a.id + "/messages", b.access);
  EXPECT_EQ(hist.json.as_object().at("messages").as_array().size(), 1u);
}

class ConcurrentSenders : public Messaging, public ::testing::WithParamInterface<bool> {};

// Run with and without batch frames: the order and completeness must not depend on framing.
TEST_P(ConcurrentSenders, IntoOneChannelAreOrderedWithoutGaps) {
  const bool batch = GetParam();
  start({"--limits-ws-rate-per-s", "100000", "--limits-ws-burst", "100000"});
  Http h = http();
  std::vector<Account> senders;
  for (int i = 0; i < 4; ++i) senders.push_back(make_account(h, "s" + std::to_string(i)));
  auto r1 = make_account(h, "r1"), r2 = make_account(h, "r2");
  std::vector<const Account*> members = {&senders[1], &senders[2], &senders[3], &r1, &r2};
  std::string ch = make_channel(senders[0], members);
  auto w1 = std::make_unique<Ws>(server_->host(), server_->port(), r1.access, batch);
  auto w2 = std::make_unique<Ws>(server_->host(), server_->port(), r2.access, batch);
  for (auto* w : {w1.get(), w2.get()}) ASSERT_TRUE(w->recv_op("synced"));
  constexpr int kPer = 500;
  std::vector<std::thread> threads;
  std::atomic<int> acked{0};
  for (int s = 0; s < 4; ++s) {
    threads.emplace_back([&, s] {
      auto ws = connect_synced(senders[s]);
      for (int i = 0; i < kPer; ++i) {
        ws->send(send_channel("s" + std::to_string(s) + "-" + std::to_string(i), ch, "m"));
      }
      std::set<std::string> cids;
      while (cids.size() < kPer) {
        auto f = ws->recv(10s);
        if (!f) break;
        if (is_op(*f, "sent")) cids.insert(str(*f, "cid"));
        if (is_op(*f, "error")) ADD_FAILURE() << bj::serialize(*f);
      }
      acked += static_cast<int>(cids.size());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acked.load(), 4 * kPer);
  for (auto* w : {w1.get(), w2.get()}) {
    std::uint64_t expect = 1;
    while (expect <= 4 * kPer) {
      auto f = w->recv(10s);
      ASSERT_TRUE(f) << "stopped at seq " << expect;
      if (!is_op(*f, "msg")) continue;
      ASSERT_EQ(num(*f, "seq"), expect);
      ++expect;
    }
    EXPECT_FALSE(w->recv_op("msg", 300ms));
  }
  if (!batch) EXPECT_EQ(w1->batches() + w2->batches(), 0u);
  RecordProperty("batches", static_cast<int>(w1->batches() + w2->batches()));
}

INSTANTIATE_TEST_SUITE_P(Framing, ConcurrentSenders, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Batched" : "Single"; });

TEST_F(Messaging, ReconnectDuringLiveTrafficLosesNothingAndKeepsOrder) {
  start({"--limits-ws-rate-per-s", "100000", "--limits-ws-burst", "100000"});
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  constexpr int kTotal = 1500;
  std::atomic<bool> done{false};
  std::thread sender([&] {
    auto wa = connect_synced(a);
    for (int i = 0; i < kTotal; ++i) {
      wa->send(send_channel("r" + std::to_string(i), ch, "live " + std::to_string(i)));
      if (i % 50 == 0) std::this_thread::sleep_for(5ms);
    }
    int sent = 0;
    while (sent < kTotal) {
      auto f = wa->recv(10s);
      if (!f) break;
      if (is_op(*f, "sent")) ++sent;
    }
    EXPECT_EQ(sent, kTotal);
    done = true;
  });
  // A failed ASSERT below returns early: join the sender (it stops by itself) rather than
  // terminate with a joinable thread.
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{sender};
  // First connection: take ~300 messages, ACK what we got, drop the connection.
  std::uint64_t last = 0;
  {
    // The sender may already be running: what the backfill brings counts too.
    std::vector<bj::object> backfill;
    auto wb = connect_synced(b, &backfill);
    for (const auto& f : backfill) {
      ASSERT_EQ(num(f, "seq"), last + 1);
      last = num(f, "seq");
    }
    while (last < 300) {
      auto f = wb->recv(10s);
      ASSERT_TRUE(f);
      if (!is_op(*f, "msg")) continue;
      ASSERT_EQ(num(*f, "seq"), last + 1);
      last = num(*f, "seq");
    }
    wb->send(bj::object{{"op", "ack"}, {"conversation", "channel:" + ch}, {"seq", last}});
    wb->send(bj::object{{"op", "ping"}});
    ASSERT_TRUE(wb->recv_op("pong"));
    wait_acked(b, "channel:" + ch, last);
  }
  // Second connection while the sender keeps going: backfill then live, one unbroken run.
  auto wb = connect(b);
  bool synced = false;
  while (last < kTotal) {
    auto f = wb->recv(10s);
    ASSERT_TRUE(f) << "stopped after seq " << last;
    if (is_op(*f, "synced")) synced = true;
    if (!is_op(*f, "msg")) continue;
    ASSERT_EQ(num(*f, "seq"), last + 1) << "gap or duplicate (synced=" << synced << ")";
    last = num(*f, "seq");
  }
  sender.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(wb->recv_op("msg", 300ms));
}

TEST_F(Messaging, SyncWithClientCursorsSendsOnlyWhatIsMissing) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a);
  for (int i = 1; i <= 6; ++i) {
    wa->send(send_dm("k" + std::to_string(i), b.id, "n" + std::to_string(i)));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  auto wb = connect_synced(b);  // gets 1..6 from the inbox (not acked)
  // A second device of bob that already holds 1..4 asks with its cursor.
  auto wb2 = connect(b);
  wb2->send(bj::object{{"op", "sync"}, {"cursors", bj::object{{"dm:" + a.id, 4}}}});
  std::vector<std::uint64_t> seqs;
  int synced = 0;
  while (synced < 2) {
    auto f = wb2->recv(5s);
    ASSERT_TRUE(f);
    if (is_op(*f, "synced")) ++synced;
    if (is_op(*f, "msg")) seqs.push_back(num(*f, "seq"));
  }
  // The automatic sync on connect sends 1..6; the explicit one adds nothing already sent.
  ASSERT_EQ(seqs.size(), 6u);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
}

TEST_F(Messaging, UnreadCountsReadMarkersAcrossDevicesAndSpaceRollUp) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  auto wa = connect_synced(a);
  for (int i = 1; i <= 3; ++i) {
    wa->send(send_channel("u" + std::to_string(i), ch, "unread " + std::to_string(i)));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  wa->send(send_dm("d1", b.id, "psst"));
  ASSERT_TRUE(wa->recv_op("sent"));

  auto conv = conversation(b, "channel:" + ch);
  EXPECT_EQ(num(conv, "unread"), 3u);
  EXPECT_EQ(num(conv, "last_seq"), 3u);
  EXPECT_EQ(num(conv, "read_seq"), 0u);
  EXPECT_EQ(str(conv.at("last_message").as_object(), "body"), "unread 3");
  EXPECT_EQ(space_unread(b, space_id_), 3u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "unread"), 1u);
  // The sender's own messages are not unread for her.
  EXPECT_EQ(num(conversation(a, "channel:" + ch), "unread"), 0u);

  auto b1 = connect_synced(b), b2 = connect_synced(b);
  b1->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 2}});
  auto marker = b2->recv_op("read");
  ASSERT_TRUE(marker);
  EXPECT_EQ(str(*marker, "conversation"), "channel:" + ch);
  EXPECT_EQ(num(*marker, "seq"), 2u);
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "unread"), 1u);
  EXPECT_EQ(space_unread(b, space_id_), 1u);
  // Backwards does not move it; beyond the end clamps to the last message.
  b1->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 1}});
  b1->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 99}});
  auto m2 =
      b2->recv_until([](const bj::object& f) { return is_op(f, "read") && num(f, "seq") == 3; });
  ASSERT_FALSE(m2.empty());
  EXPECT_EQ(num(m2.back(), "seq"), 3u);
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "unread"), 0u);
  EXPECT_EQ(space_unread(b, space_id_), 0u);
  b1->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 1}});
  ASSERT_TRUE(b2->recv_op("read"));
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "unread"), 0u);
}

// --- changes of stored messages: edit and delete (docs/protocol.md "Changes")

bj::object edit_op(const std::string& id, const std::string& body) {
  return {{"op", "edit"}, {"id", id}, {"body", body}};
}
bj::object delete_op(const std::string& id) {
  return {{"op", "delete"}, {"id", id}};
}
bool is_change(const bj::object& f) {
  return is_op(f, "edited") || is_op(f, "deleted") || is_op(f, "reaction");
}

// A client's copy of conversations, kept as docs/protocol.md says: a `msg` or a change frame
// replaces the held message when it is new or its rev is higher; the change cursor of a
// conversation is the highest rev of a change frame.
struct Replica {
  std::map<std::string, std::map<std::uint64_t, bj::object>> convs;
  std::map<std::string, std::uint64_t> revs;
  int applied = 0;
  void apply(const bj::object& f) {
    if (!is_op(f, "msg") && !is_change(f)) return;
    auto& held = convs[str(f, "conversation")][num(f, "seq")];
    const std::uint64_t rev = f.contains("rev") ? num(f, "rev") : 0;
    if (is_change(f)) {
      auto& cursor = revs[str(f, "conversation")];
      cursor = std::max(cursor, rev);
    }
    if (!held.empty() && (held.contains("rev") ? num(held, "rev") : 0) >= rev) return;
    held = f;
    held.erase("op");
    ++applied;
  }
};

// What a message looks like for a comparison: the fields a change may touch.
std::string state_of(const bj::object& m) {
  std::string s = str(m, "id") + "|" + std::to_string(num(m, "seq")) + "|";
  s += m.contains("deleted") ? "deleted" : str(m, "body");
  if (m.contains("edited_at")) s += "|edited " + std::to_string(num(m, "edited_at"));
  if (m.contains("rev")) s += "|rev " + std::to_string(num(m, "rev"));
  return s;
}

TEST_F(Messaging, EditAndDeleteReachEveryDeviceAndHistoryShowsTheCurrentState) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  auto a1 = connect_synced(a), a2 = connect_synced(a), wb = connect_synced(b);
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    a1->send(send_channel("e" + std::to_string(i), ch, "text " + std::to_string(i)));
    auto sent = a1->recv_op("sent");
    ASSERT_TRUE(sent);
    ids.push_back(str(*sent, "id"));
  }
  // A page read before the changes (remembered by a standalone process) ...
  auto before = h.get("/api/v1/channels/" + ch + "/messages?before_seq=3&limit=2", b.access);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(str(before.json.as_object().at("messages").as_array()[1].as_object(), "body"),
            "text 2");
  a1->send(edit_op(ids[0], "text 1, edited"));
  a1->send(delete_op(ids[1]));
  // Every device of every member, the editing one too (that is its answer), in rev order.
  for (Ws* ws : {a1.get(), a2.get(), wb.get()}) {
    auto frames = ws->recv_until([](const bj::object& f) { return is_op(f, "deleted"); });
    std::vector<bj::object> changes;
    for (auto& f : frames) {
      if (is_change(f)) changes.push_back(f);
    }
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_TRUE(is_op(changes[0], "edited"));
    EXPECT_EQ(str(changes[0], "id"), ids[0]);
    EXPECT_EQ(str(changes[0], "conversation"), "channel:" + ch);
    EXPECT_EQ(num(changes[0], "seq"), 1u);
    EXPECT_EQ(num(changes[0], "rev"), 1u);
    EXPECT_EQ(str(changes[0], "body"), "text 1, edited");
    EXPECT_GT(num(changes[0], "edited_at"), 0u);
    EXPECT_EQ(str(changes[1], "id"), ids[1]);
    EXPECT_EQ(num(changes[1], "seq"), 2u);
    EXPECT_EQ(num(changes[1], "rev"), 2u);
    EXPECT_TRUE(changes[1].at("deleted").as_bool());
    EXPECT_FALSE(changes[1].contains("body"));
  }

  // History pages show the current state; the tombstone keeps its seq.
  auto hist = h.get("/api/v1/channels/" + ch + "/messages", b.access);
  ASSERT_EQ(hist.status, 200) << hist.body;
  const auto& msgs = hist.json.as_object().at("messages").as_array();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(str(msgs[0].as_object(), "body"), "text 1, edited");
  EXPECT_GT(num(msgs[0].as_object(), "edited_at"), 0u);
  EXPECT_EQ(num(msgs[1].as_object(), "seq"), 2u);
  EXPECT_TRUE(msgs[1].as_object().at("deleted").as_bool());
  EXPECT_FALSE(msgs[1].as_object().contains("body"));
  EXPECT_EQ(str(msgs[2].as_object(), "body"), "text 3");
  EXPECT_FALSE(msgs[2].as_object().contains("edited_at"));
  // ... and read again (answered from memory where it can be) is current too.
  auto older = h.get("/api/v1/channels/" + ch + "/messages?before_seq=3&limit=2", b.access);
  ASSERT_EQ(older.status, 200) << older.body;
  EXPECT_TRUE(
      older.json.as_object().at("messages").as_array()[1].as_object().at("deleted").as_bool());
  auto conv = conversation(b, "channel:" + ch);
  EXPECT_EQ(num(conv, "last_rev"), 2u);
  EXPECT_EQ(num(conv, "unread"), 3u);  // a change is not a new message

  // A DM works the same way, and its rev counts on its own.
  a1->send(send_dm("dm1", b.id, "hello"));
  auto sent = a1->recv_op("sent");
  ASSERT_TRUE(sent);
  a2->send(edit_op(str(*sent, "id"), "hello, edited"));
  auto edited = wb->recv_op("edited");
  ASSERT_TRUE(edited);
  EXPECT_EQ(str(*edited, "conversation"), "dm:" + a.id);
  EXPECT_EQ(num(*edited, "rev"), 1u);
  EXPECT_EQ(str(*edited, "body"), "hello, edited");
  auto mine = a1->recv_op("edited");
  ASSERT_TRUE(mine);
  EXPECT_EQ(str(*mine, "conversation"), "dm:" + b.id);
}

TEST_F(Messaging, ChangesOfOthersOfMissingOrOfDeletedMessagesAreRefused) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), m = make_account(h, "mallory");
  std::string ch = make_channel(a, {&b});
  auto wa = connect_synced(a), wb = connect_synced(b), wm = connect_synced(m);
  wa->send(send_channel("r1", ch, "alice's"));
  auto sent = wa->recv_op("sent");
  ASSERT_TRUE(sent);
  const std::string id = str(*sent, "id");
  auto refused = [](Ws& ws, const bj::object& op) {
    ws.send(op);
    auto err = ws.recv_op("error");
    EXPECT_TRUE(err) << "no error for " << bj::serialize(op);
    return err ? *err : bj::object{};
  };
  auto err = refused(*wb, edit_op(id, "bob's now"));
  EXPECT_EQ(str(err, "code"), "forbidden");
  EXPECT_EQ(str(err, "ref"), "edit");
  EXPECT_EQ(str(err, "id"), id);
  EXPECT_EQ(str(refused(*wb, delete_op(id)), "code"), "forbidden");
  // Someone who cannot read the channel learns nothing: not_found, as for no message at all.
  EXPECT_EQ(str(refused(*wm, edit_op(id, "x")), "code"), "not_found");
  EXPECT_EQ(str(refused(*wm, delete_op(id)), "code"), "not_found");
  EXPECT_EQ(str(refused(*wa, edit_op("123456789", "x")), "code"), "not_found");
  // Over limits.max_message_bytes (16 KiB by default; a cluster ignores per-test flags).
  EXPECT_EQ(str(refused(*wa, edit_op(id, std::string(16 * 1024 + 1, 'x'))), "code"),
            "payload_too_large");
  EXPECT_EQ(str(refused(*wa, edit_op(id, "")), "code"), "invalid_argument");
  EXPECT_EQ(str(refused(*wa, bj::object{{"op", "edit"}, {"id", id}}), "code"), "invalid_argument");
  EXPECT_EQ(str(refused(*wa, bj::object{{"op", "delete"}}), "code"), "invalid_argument");
  EXPECT_EQ(str(refused(*wa, bj::object{{"op", "delete"}, {"id", "abc"}}), "code"),
            "invalid_argument");
  wa->send(delete_op(id));
  ASSERT_TRUE(wa->recv_op("deleted"));
  err = refused(*wa, edit_op(id, "resurrected"));
  EXPECT_EQ(str(err, "code"), "not_found");
  EXPECT_EQ(str(refused(*wa, delete_op(id)), "code"), "not_found");
  // Nothing but the one delete reached bob.
  auto frames = wb->recv_until([](const bj::object& f) { return is_op(f, "deleted"); });
  int changes = 0;
  for (auto& f : frames) changes += is_change(f) ? 1 : 0;
  EXPECT_EQ(changes, 1);
  wb->send(bj::object{{"op", "ping"}});
  for (auto& f : wb->recv_until([](const bj::object& f) { return is_op(f, "pong"); })) {
    EXPECT_FALSE(is_change(f)) << bj::serialize(f);
  }
}

// Moderators: an owner or admin of a space deletes anyone's message in its channels with the same
// `delete` (everyone gets `deleted`, history keeps the tombstone); they may not edit it; a plain
// member may not delete; a DM is never moderated; a demoted admin is a plain member at once.
TEST_F(Messaging, SpaceOwnersAndAdminsDeleteAnyonesChannelMessage) {
  Http h = http();
  auto owner = make_account(h, "owner"), admin = make_account(h, "admin");
  auto carol = make_account(h, "carol");
  std::string ch = make_channel(owner, {&admin, &carol});
  auto role = [&](const Account& who, const char* r) {
    auto res = h.patch("/api/v1/spaces/" + space_id_ + "/members/" + who.id,
                       bj::object{{"role", r}}, owner.access);
    ASSERT_EQ(res.status, 200) << res.body;
  };
  role(admin, "admin");
  auto wo = connect_synced(owner), wa = connect_synced(admin), wc = connect_synced(carol);
  auto post = [&](Ws& ws, const std::string& cid, const bj::object& frame) {
    ws.send(frame);
    auto sent = ws.recv_op("sent");
    EXPECT_TRUE(sent) << cid;
    return sent ? str(*sent, "id") : std::string();
  };
  // The answer to a change: its error, or the change frame of that message.
  auto answer = [](Ws& ws, const bj::object& op) {
    ws.send(op);
    const std::string id = str(op, "id");
    auto f = ws.recv_until([&](const bj::object& f) {
      return (is_op(f, "error") || is_change(f)) && str(f, "id") == id;
    });
    return f.empty() ? bj::object{} : f.back();
  };
  const std::string c1 = post(*wc, "c1", send_channel("c1", ch, "carol one"));
  const std::string c2 = post(*wc, "c2", send_channel("c2", ch, "carol two"));
  const std::string o1 = post(*wo, "o1", send_channel("o1", ch, "owner's"));
  const std::string dm = post(*wc, "d1", send_dm("d1", owner.id, "private"));

  // The admin deletes carol's message: every member's devices get `deleted`, carol's too.
  auto del = answer(*wa, delete_op(c1));
  EXPECT_EQ(str(del, "op"), "deleted") << bj::serialize(del);
  for (Ws* ws : {wc.get(), wo.get()}) {
    auto f = ws->recv_until([&](const bj::object& f) { return is_op(f, "deleted"); });
    ASSERT_FALSE(f.empty());
    EXPECT_EQ(str(f.back(), "id"), c1);
  }
  // The owner deletes carol's other one; and may not edit it first.
  EXPECT_EQ(str(answer(*wo, edit_op(c2, "owner's words")), "code"), "forbidden");
  EXPECT_EQ(str(answer(*wo, delete_op(c2)), "op"), "deleted");
  // A plain member may not delete the owner's; a DM is not moderated (the owner is in it).
  EXPECT_EQ(str(answer(*wc, delete_op(o1)), "code"), "forbidden");
  EXPECT_EQ(str(answer(*wo, delete_op(dm)), "code"), "forbidden");
  // Demoted: forbidden from then on.
  role(admin, "member");
  EXPECT_EQ(str(answer(*wa, delete_op(o1)), "code"), "forbidden");
  // History: both of carol's are tombstones without their bodies, the owner's is there.
  auto hist = h.get("/api/v1/channels/" + ch + "/messages?limit=10", carol.access);
  ASSERT_EQ(hist.status, 200) << hist.body;
  std::map<std::string, bj::object> by_id;
  for (const auto& m : hist.json.at("messages").as_array())
    by_id[str(m.as_object(), "id")] = m.as_object();
  for (const auto& id : {c1, c2}) {
    EXPECT_TRUE(by_id.at(id).contains("deleted")) << id;
    EXPECT_FALSE(by_id.at(id).contains("body")) << id;
  }
  EXPECT_EQ(str(by_id.at(o1), "body"), "owner's");
}

// Two devices of bob: one stays online, the other is offline while messages are edited and
// deleted (alice's and bob's own), then resumes with its cursors. It ends with the same state
// as history, gets each change once, and a repeated sync brings nothing.
TEST_F(Messaging, AnOfflineDeviceCatchesUpOnEditsAndDeletesThroughSync) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  const std::string dm = "dm:" + a.id, chan = "channel:" + ch;
  auto wa = connect_synced(a);
  std::map<std::string, std::string> id;  // by cid
  auto send_ok = [&](Ws& ws, const bj::object& op) {
    ws.send(op);
    auto sent = ws.recv_op("sent");
    ASSERT_TRUE(sent) << "no sent for " << bj::serialize(op);
    id[str(op, "cid")] = str(*sent, "id");
  };
  for (int i = 1; i <= 3; ++i) {
    send_ok(*wa, send_dm("d" + std::to_string(i), b.id, "dm " + std::to_string(i)));
    send_ok(*wa, send_channel("c" + std::to_string(i), ch, "ch " + std::to_string(i)));
  }

  // Device 2 of bob gets everything, writes in the channel, ACKs, goes away.
  Replica b2_state;
  {
    std::vector<bj::object> backfill;
    auto b2 = connect_synced(b, &backfill);
    ASSERT_EQ(backfill.size(), 6u);
    for (auto& f : backfill) b2_state.apply(f);
    send_ok(*b2, send_channel("c4", ch, "bob's"));
    // Its own message: the device holds what it sent (as history shows it).
    auto page = h.get("/api/v1/channels/" + ch + "/messages?after_seq=3", b.access);
    ASSERT_EQ(page.status, 200) << page.body;
    auto own = page.json.as_object().at("messages").as_array().at(0).as_object();
    own["op"] = "msg";
    b2_state.apply(own);
    b2->send(bj::object{{"op", "ack"}, {"conversation", dm}, {"seq", 3}});
    b2->send(bj::object{{"op", "ack"}, {"conversation", chan}, {"seq", 4}});
    b2->send(bj::object{{"op", "ping"}});
    ASSERT_TRUE(b2->recv_op("pong"));
    wait_acked(b, dm, 3);
    wait_acked(b, chan, 4);
  }

  // Meanwhile: a new DM (not ACKed: it stays in bob's inbox), then changes by alice and by
  // bob's online device, which sees each of them.
  auto b1 = connect_synced(b);
  send_ok(*wa, send_dm("d4", b.id, "dm 4"));
  ASSERT_TRUE(b1->recv_op("msg"));
  wa->send(edit_op(id["d1"], "dm 1, edited"));
  wa->send(delete_op(id["d2"]));
  wa->send(edit_op(id["d4"], "dm 4, edited"));
  wa->send(edit_op(id["c3"], "ch 3, edited"));
  wa->send(delete_op(id["c1"]));
  int seen = 0;
  b1->recv_until([&](const bj::object& f) { return is_change(f) && ++seen == 5; });
  ASSERT_EQ(seen, 5);
  b1->send(edit_op(id["c4"], "bob's, edited"));  // after alice's: rev 3 of the channel
  ASSERT_TRUE(b1->recv_op("edited"));

  // Device 2 comes back and syncs with what it holds: messages up to its cursors, no change.
  auto b2 = connect(b);
  b2->send(bj::object{{"op", "sync"},
                      {"cursors", bj::object{{dm, 3}, {chan, 4}}},
                      {"changes", bj::object{{dm, 0}, {chan, 0}}}});
  std::vector<bj::object> got;
  for (int synced = 0; synced < 2;) {
    auto f = b2->recv(10s);
    ASSERT_TRUE(f) << "no second synced";
    if (is_op(*f, "synced")) ++synced;
    if (is_op(*f, "msg") || is_change(*f)) got.push_back(*f);
  }
  // d4 comes as a message, as it is now; the rest as changes, each once, in rev order.
  std::vector<std::string> seen_ops;
  for (auto& f : got) {
    seen_ops.push_back(str(f, "op") + " " + str(f, "conversation") + " " +
                       std::to_string(num(f, "seq")) +
                       (f.contains("rev") ? " rev " + std::to_string(num(f, "rev")) : ""));
  }
  std::multiset<std::string> expected{
      "msg " + dm + " 4 rev 3",      "edited " + dm + " 1 rev 1",    "deleted " + dm + " 2 rev 2",
      "edited " + chan + " 3 rev 1", "deleted " + chan + " 1 rev 2", "edited " + chan + " 4 rev 3"};
  EXPECT_EQ(std::multiset<std::string>(seen_ops.begin(), seen_ops.end()), expected);
  std::map<std::string, std::uint64_t> last_rev;
  for (auto& f : got) {
    if (!is_change(f)) continue;
    EXPECT_GT(num(f, "rev"), last_rev[str(f, "conversation")]) << "changes out of order";
    last_rev[str(f, "conversation")] = num(f, "rev");
  }
  for (auto& f : got) b2_state.apply(f);
  for (auto& f : got) {
    if (is_op(f, "msg")) {
      EXPECT_EQ(str(f, "body"), "dm 4, edited");
    }
  }

  // Its copy is the server's: every message of both conversations as history shows it.
  for (const auto& [conv, path] : {std::pair{dm, "/api/v1/dms/" + a.id + "/messages"},
                                   std::pair{chan, "/api/v1/channels/" + ch + "/messages"}}) {
    auto hist = h.get(path, b.access);
    ASSERT_EQ(hist.status, 200);
    std::vector<std::string> server, device;
    for (const auto& m : hist.json.as_object().at("messages").as_array()) {
      server.push_back(state_of(m.as_object()));
    }
    for (const auto& [seq, m] : b2_state.convs[conv]) device.push_back(state_of(m));
    EXPECT_EQ(device, server) << conv;
  }
  EXPECT_EQ(b2_state.revs[dm], 2u);  // rev 3 came inside message 4
  EXPECT_EQ(b2_state.revs[chan], 3u);

  // Asking again from where it stands brings nothing.
  b2->send(bj::object{{"op", "sync"},
                      {"cursors", bj::object{{dm, 4}, {chan, 4}}},
                      {"changes", bj::object{{dm, 3}, {chan, 3}}}});
  auto frames = b2->recv_until([](const bj::object& f) { return is_op(f, "synced"); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(num(frames.back(), "messages"), 0u);
  EXPECT_EQ(num(frames.back(), "changes"), 0u);
  for (auto& f : frames) EXPECT_FALSE(is_change(f) || is_op(f, "msg")) << bj::serialize(f);

  // And it follows live changes from there.
  wa->send(edit_op(id["d3"], "dm 3, edited"));
  auto live = b2->recv_op("edited");
  ASSERT_TRUE(live);
  EXPECT_EQ(num(*live, "rev"), 4u);
}

// A reply names a message of its own conversation; pushes and history carry it, and it
// survives the answered message's deletion (clients show "deleted").
TEST_F(Messaging, RepliesNameAMessageOfTheSameConversation) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  auto wa = connect_synced(a), wb = connect_synced(b);
  wa->send(send_channel("q1", ch, "question"));
  auto asked = wa->recv_op("sent");
  ASSERT_TRUE(asked);
  const std::string question = str(*asked, "id");
  ASSERT_TRUE(wb->recv_op("msg"));
  auto reply = send_channel("r1", ch, "answer");
  reply["reply_to"] = question;
  wb->send(reply);
  ASSERT_TRUE(wb->recv_op("sent"));
  auto got = wa->recv_op("msg");
  ASSERT_TRUE(got);
  EXPECT_EQ(str(*got, "reply_to"), question);
  EXPECT_EQ(str(*got, "body"), "answer");

  // Not a message of this conversation (a DM's, or none at all): not_found, nothing stored.
  wa->send(send_dm("q2", b.id, "private"));
  auto dm = wa->recv_op("sent");
  ASSERT_TRUE(dm);
  for (const std::string& bad : {str(*dm, "id"), std::string("123456789")}) {
    auto wrong = send_channel("r-" + bad, ch, "misplaced");
    wrong["reply_to"] = bad;
    wb->send(wrong);
    auto err = wb->recv_op("error");
    ASSERT_TRUE(err);
    EXPECT_EQ(str(*err, "code"), "not_found");
    EXPECT_EQ(str(*err, "cid"), "r-" + bad);
  }
  auto junk = send_channel("r3", ch, "x");
  junk["reply_to"] = "not an id";
  wb->send(junk);
  EXPECT_EQ(str(*wb->recv_op("error"), "code"), "invalid_argument");

  wa->send(delete_op(question));
  ASSERT_TRUE(wb->recv_op("deleted"));
  auto hist = h.get("/api/v1/channels/" + ch + "/messages", b.access);
  ASSERT_EQ(hist.status, 200);
  const auto& msgs = hist.json.as_object().at("messages").as_array();
  ASSERT_EQ(msgs.size(), 2u);  // the refused replies were not stored
  EXPECT_TRUE(msgs[0].as_object().at("deleted").as_bool());
  EXPECT_EQ(str(msgs[1].as_object(), "reply_to"), question);
  EXPECT_FALSE(msgs[0].as_object().contains("reply_to"));
}

// One message by id (a reply's original the client has not loaded): to those who may read it,
// as history shows it; everyone else gets the answer a missing id gets.
TEST_F(Messaging, OneMessageIsReadByIdOnlyByThoseWhoMayReadIt) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), m = make_account(h, "mallory");
  std::string ch = make_channel(a, {&b});
  auto wa = connect_synced(a);
  wa->send(send_channel("q1", ch, "question"));
  auto asked = wa->recv_op("sent");
  ASSERT_TRUE(asked);
  const std::string question = str(*asked, "id");
  wa->send(send_dm("d1", b.id, "between us"));
  auto dm = wa->recv_op("sent");
  ASSERT_TRUE(dm);
  const std::string private_id = str(*dm, "id");

  auto got = h.get("/api/v1/messages/" + question, b.access);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.str("body"), "question");
  EXPECT_EQ(got.str("conversation"), "channel:" + ch);
  EXPECT_EQ(got.str("id"), question);
  EXPECT_EQ(h.get("/api/v1/messages/" + private_id, b.access).str("body"), "between us");

  auto missing = h.get("/api/v1/messages/123456789", m.access);
  EXPECT_EQ(missing.status, 404);
  for (const std::string& id : {question, private_id}) {
    auto refused = h.get("/api/v1/messages/" + id, m.access);
    EXPECT_EQ(refused.status, 404) << id;
    EXPECT_EQ(refused.body, missing.body) << "an outsider learns nothing from the answer";
  }

  wa->send(delete_op(question));
  ASSERT_TRUE(wa->recv_op("deleted"));
  auto gone = h.get("/api/v1/messages/" + question, b.access);
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_TRUE(gone.json.as_object().at("deleted").as_bool());
  EXPECT_EQ(gone.body.find("question"), std::string::npos) << gone.body;
}

// Reactions: anyone who reads the message, counts and who per emoji, to every device (the
// reactor's too), synced like edits to a device that was away, bounded, rate-limited.
TEST_F(Messaging, ReactionsReachEveryDeviceAndAnOfflineDeviceSyncsThem) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), m = make_account(h, "mallory");
  std::string ch = make_channel(a, {&b});
  const std::string chan = "channel:" + ch;
  auto wa = connect_synced(a), wb = connect_synced(b), wm = connect_synced(m);
  wa->send(send_channel("x1", ch, "react to this"));
  auto sent = wa->recv_op("sent");
  ASSERT_TRUE(sent);
  const std::string id = str(*sent, "id");
  ASSERT_TRUE(wb->recv_op("msg"));
  // Bob's second device holds the message and goes away.
  { auto b2 = connect_synced(b); }
  const std::string thumbs = "\xf0\x9f\x91\x8d";
  wb->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", thumbs}, {"on", true}});
  wa->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", thumbs}, {"on", true}});
  wa->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "ok"}, {"on", true}});
  wa->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "ok"}, {"on", false}});
  bj::object last;
  int seen = 0;
  wb->recv_until([&](const bj::object& f) {
    if (is_op(f, "reaction")) last = f;
    return is_op(f, "reaction") && ++seen == 4;
  });
  ASSERT_EQ(seen, 4);
  EXPECT_EQ(num(last, "rev"), 4u);
  const auto& rs = last.at("reactions").as_array();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(str(rs[0].as_object(), "emoji"), thumbs);
  EXPECT_EQ(num(rs[0].as_object(), "count"), 2u);
  std::set<std::string> who;
  for (const auto& u : rs[0].as_object().at("users").as_array())
    who.insert(std::string(u.as_string()));
  EXPECT_EQ(who, (std::set<std::string>{a.id, b.id}));
  // History shows the same.
  auto hist = h.get("/api/v1/channels/" + ch + "/messages", b.access);
  ASSERT_EQ(hist.status, 200);
  EXPECT_EQ(
      bj::serialize(hist.json.as_object().at("messages").as_array()[0].as_object().at("reactions")),
      bj::serialize(last.at("reactions")));

  // Bob's other device comes back (the message is not ACKed: its connect backfill sends it as it
  // is now): one frame with the state, whichever way it comes.
  auto b2 = connect(b);
  b2->send(bj::object{
      {"op", "sync"}, {"cursors", bj::object{{chan, 1}}}, {"changes", bj::object{{chan, 0}}}});
  std::vector<bj::object> got;
  for (int synced = 0; synced < 2;) {
    auto f = b2->recv(10s);
    ASSERT_TRUE(f);
    if (is_op(*f, "synced")) ++synced;
    if (is_op(*f, "reaction") || is_op(*f, "msg")) got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(num(got[0], "rev"), 4u);
  EXPECT_EQ(bj::serialize(got[0].at("reactions")), bj::serialize(last.at("reactions")));

  // Who cannot read it: not_found; a bad emoji or `on`: invalid_argument.
  wm->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "ok"}, {"on", true}});
  EXPECT_EQ(str(*wm->recv_op("error"), "code"), "not_found");
  wb->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "two words"}, {"on", true}});
  EXPECT_EQ(str(*wb->recv_op("error"), "code"), "invalid_argument");
  wb->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "ok"}});
  EXPECT_EQ(str(*wb->recv_op("error"), "code"), "invalid_argument");
  // A flood is cut by the per-connection limit.
  for (int i = 0; i < 30; ++i) {
    wb->send(bj::object{{"op", "react"}, {"id", id}, {"emoji", "f"}, {"on", i % 2 == 0}});
  }
  wb->send(bj::object{{"op", "ping"}});
  bool limited = false;
  for (auto& f : wb->recv_until([](const bj::object& f) { return is_op(f, "pong"); }, 20s)) {
    limited = limited || (is_op(f, "error") && str(f, "code") == "too_many_requests");
  }
  EXPECT_TRUE(limited);
}

// Typing: to the other members' connections only, from the typist's side of the conversation;
// never stored; limited per connection; only where the typist may write.
TEST_F(Messaging, TypingReachesTheOtherMembersOnlineAndIsNeverStored) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto m = make_account(h, "mallory");
  std::string ch = make_channel(a, {&b, &c});
  auto a1 = connect_synced(a), a2 = connect_synced(a), wb = connect_synced(b);
  auto wc = connect_synced(c), wm = connect_synced(m);
  a1->send(bj::object{{"op", "typing"}, {"conversation", "channel:" + ch}});
  for (Ws* ws : {wb.get(), wc.get()}) {
    auto t = ws->recv_op("typing");
    ASSERT_TRUE(t);
    EXPECT_EQ(str(*t, "conversation"), "channel:" + ch);
    EXPECT_EQ(str(*t, "user"), a.id);
    EXPECT_GT(num(*t, "expires_ms"), 0u);
  }
  a1->send(bj::object{{"op", "typing"}, {"conversation", "dm:" + b.id}});
  auto dm = wb->recv_op("typing");
  ASSERT_TRUE(dm);
  EXPECT_EQ(str(*dm, "conversation"), "dm:" + a.id);
  // Not in the channel: refused; and nobody else heard anything.
  wm->send(bj::object{{"op", "typing"}, {"conversation", "channel:" + ch}});
  EXPECT_EQ(str(*wm->recv_op("error"), "code"), "not_found");
  a2->send(bj::object{{"op", "ping"}});
  for (auto& f : a2->recv_until([](const bj::object& f) { return is_op(f, "pong"); })) {
    EXPECT_FALSE(is_op(f, "typing")) << "the typist's own devices get no typing";
  }
  // A burst past the per-connection limit is refused with too_many_requests.
  bool limited = false;
  for (int i = 0; i < 10 && !limited; ++i) {
    a2->send(bj::object{{"op", "typing"}, {"conversation", "channel:" + ch}});
  }
  a2->send(bj::object{{"op", "ping"}});
  for (auto& f : a2->recv_until([](const bj::object& f) { return is_op(f, "pong"); })) {
    if (is_op(f, "error") && str(f, "ref") == "typing") {
      EXPECT_EQ(str(f, "code"), "too_many_requests");
      limited = true;
    }
  }
  EXPECT_TRUE(limited);
  // Never stored: no message, nothing unread, nothing in a backfill.
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "last_seq"), 0u);
  wb.reset();
  std::vector<bj::object> backfill;
  wb = connect_synced(b, &backfill);
  EXPECT_TRUE(backfill.empty());
}

// Mentions: `<@USER_ID>` of a member counts for that member beside unread, per conversation and
// rolled up per space; a read marker clears them like unread. Non-members, the sender and
// repeats do not count.
TEST_F(Messaging, MentionsCountBesideUnreadAndReadMarkersClearThem) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), c = make_account(h, "carol");
  auto out = make_account(h, "outsider");
  std::string ch = make_channel(a, {&b, &c});
  auto wa = connect_synced(a);
  auto post = [&](const std::string& cid, const std::string& body) {
    wa->send(send_channel(cid, ch, body));
    ASSERT_TRUE(wa->recv_op("sent"));
  };
  post("m1", "hi <@" + b.id + "> and <@" + b.id + ">, <@" + out.id + "> and me <@" + a.id + ">");
  post("m2", "nothing for anyone <@> <@abc> <@" + b.id);
  post("m3", "<@" + c.id + "> <@" + b.id + ">");
  wa->send(send_dm("m4", b.id, "psst <@" + b.id + ">"));
  ASSERT_TRUE(wa->recv_op("sent"));

  EXPECT_EQ(num(conversation(b, "channel:" + ch), "mentions"), 2u);
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "unread"), 3u);
  EXPECT_EQ(num(conversation(c, "channel:" + ch), "mentions"), 1u);
  EXPECT_EQ(num(conversation(a, "channel:" + ch), "mentions"), 0u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "mentions"), 1u);
  auto spaces = [&](const Account& who) {
    auto r = http().get("/api/v1/conversations", who.access);
    for (const auto& s : r.json.as_object().at("spaces").as_array()) {
      if (str(s.as_object(), "space_id") == space_id_) return num(s.as_object(), "mentions");
    }
    ADD_FAILURE() << "no space";
    return std::uint64_t{0};
  };
  EXPECT_EQ(spaces(b), 2u);

  // Read up to the first message: one mention left; to the end: none, on every device's list.
  auto wb = connect_synced(b);
  wb->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 1}});
  wb->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wb->recv_op("pong"));
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "mentions"), 1u);
  wb->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 3}});
  wb->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 1}});
  wb->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wb->recv_op("pong"));
  EXPECT_EQ(num(conversation(b, "channel:" + ch), "mentions"), 0u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "mentions"), 0u);
  EXPECT_EQ(spaces(b), 0u);
  EXPECT_EQ(num(conversation(c, "channel:" + ch), "mentions"), 1u);  // carol's are her own
}

// @channel (`<!channel>`) counts for every member, @here (`<!here>`) for every member online;
// by default only the space's owner and admins may write them (a plain member's send is refused
// with forbidden); a personal mention in the same message does not count twice; in a DM they are
// plain text. With limits.channel_mentions = members anyone in the channel may.
TEST_F(Messaging, ChannelAndHereMentionsCountForMembersAndOnlyAdminsMayWriteThem) {
  Http h = http();
  auto a = make_account(h, "owner"), b = make_account(h, "online"), c = make_account(h, "offline");
  auto d = make_account(h, "plain");
  std::string ch = make_channel(a, {&b, &c, &d});
  const std::string conv = "channel:" + ch;
  auto wa = connect_synced(a), wb = connect_synced(b), wd = connect_synced(d);
  auto mentions = [&](const Account& who) { return num(conversation(who, conv), "mentions"); };
  auto post = [&](Ws& ws, const std::string& cid, const bj::object& frame) {
    ws.send(frame);
    auto f = ws.recv_until([&](const bj::object& f) {
      return (is_op(f, "sent") || is_op(f, "error")) && str(f, "cid") == cid;
    });
    return f.empty() ? bj::object{} : f.back();
  };
  auto refused = post(*wd, "d1", send_channel("d1", ch, "<!channel> listen"));
  EXPECT_EQ(str(refused, "op"), "error");
  EXPECT_EQ(str(refused, "code"), "forbidden");
  EXPECT_EQ(str(post(*wd, "d2", send_channel("d2", ch, "<!here> too")), "code"), "forbidden");
  ASSERT_EQ(str(post(*wa, "a1", send_channel("a1", ch, "<!channel> all of you")), "op"), "sent");
  for (const Account* who : {&b, &c, &d}) EXPECT_EQ(mentions(*who), 1u) << who->name;
  EXPECT_EQ(mentions(a), 0u);
  // @here: bob and dave are connected, carol is not.
  ASSERT_EQ(str(post(*wa, "a2", send_channel("a2", ch, "<!here> who is around")), "op"), "sent");
  EXPECT_EQ(mentions(b), 2u);
  EXPECT_EQ(mentions(d), 2u);
  EXPECT_EQ(mentions(c), 1u);
  // Named and @here: once each. @channel and named: once.
  ASSERT_EQ(str(post(*wa, "a3", send_channel("a3", ch, "<!here> and <@" + b.id + ">")), "op"),
            "sent");
  EXPECT_EQ(mentions(b), 3u);
  ASSERT_EQ(str(post(*wa, "a4", send_channel("a4", ch, "<!channel> <@" + c.id + ">")), "op"),
            "sent");
  EXPECT_EQ(mentions(c), 2u);
  EXPECT_EQ(mentions(b), 4u);
  // A read marker clears them like any mention; the others keep theirs.
  wb->send(bj::object{{"op", "read"}, {"conversation", conv}, {"seq", 4}});
  wb->send(bj::object{{"op", "ping"}});
  ASSERT_TRUE(wb->recv_op("pong"));
  EXPECT_EQ(mentions(b), 0u);
  EXPECT_EQ(mentions(c), 2u);
  // In a DM: plain text, nothing counted, nobody refused.
  EXPECT_EQ(str(post(*wd, "d3", send_dm("d3", a.id, "<!channel> in private")), "op"), "sent");
  EXPECT_EQ(num(conversation(a, "dm:" + d.id), "mentions"), 0u);

  // Opened to members by the server's setting (a server started elsewhere keeps its own).
  if (server_->external()) return;
  wa.reset();
  wb.reset();
  wd.reset();
  start({"--limits-channel-mentions", "members"});
  Http h2 = http();
  auto o = make_account(h2, "owner2"), m = make_account(h2, "member2");
  std::string ch2 = make_channel(o, {&m});
  auto wm = connect_synced(m);
  EXPECT_EQ(str(post(*wm, "m1", send_channel("m1", ch2, "<!channel> from a member")), "op"),
            "sent");
  EXPECT_EQ(num(conversation(o, "channel:" + ch2), "mentions"), 1u);
}

// Read receipts in DMs: the peer's connections get `seen` when the reader's marker moves, and
// the conversation list carries the peer's marker.
TEST_F(Messaging, DmReadMarkersReachThePeerAsSeen) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a), wb = connect_synced(b);
  for (int i = 1; i <= 2; ++i) {
    wa->send(send_dm("s" + std::to_string(i), b.id, "hi"));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  EXPECT_EQ(num(conversation(a, "dm:" + b.id), "peer_read_seq"), 0u);
  wb->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 2}});
  auto seen = wa->recv_op("seen");
  ASSERT_TRUE(seen);
  EXPECT_EQ(str(*seen, "conversation"), "dm:" + b.id);
  EXPECT_EQ(str(*seen, "user"), b.id);
  EXPECT_EQ(num(*seen, "seq"), 2u);
  EXPECT_EQ(num(conversation(a, "dm:" + b.id), "peer_read_seq"), 2u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "peer_read_seq"), 2u);  // her own are read
}

// Read receipts turned off (PATCH /users/me read_receipts: false) hide the marker both ways: the
// user's reads reach their own devices only, and the peer's reads no longer reach them; the
// conversation lists show 0. Turning them on again shows the markers as they are.
TEST_F(Messaging, ReadReceiptsOffHideTheMarkerBothWays) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a), b1 = connect_synced(b), b2 = connect_synced(b);
  for (int i = 1; i <= 3; ++i) {
    wa->send(send_dm("s" + std::to_string(i), b.id, "hi"));
    ASSERT_TRUE(wa->recv_op("sent"));
  }
  b1->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 1}});
  ASSERT_TRUE(wa->recv_op("seen"));  // on by default
  EXPECT_EQ(h.get("/api/v1/users/me", b.access).json.at("read_receipts").as_bool(), true);

  auto off = h.patch("/api/v1/users/me", bj::object{{"read_receipts", false}}, b.access);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(off.json.at("read_receipts").as_bool(), false);
  EXPECT_EQ(off.json.at("name").as_string(), "bob");
  EXPECT_EQ(h.get("/api/v1/users/me", b.access).json.at("read_receipts").as_bool(), false);
  // Bob reads on: his other device follows, alice hears nothing and her list shows 0.
  b1->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 2}});
  auto read =
      b2->recv_until([](const bj::object& f) { return is_op(f, "read") && num(f, "seq") == 2; });
  ASSERT_FALSE(read.empty());
  EXPECT_TRUE(is_op(read.back(), "read"));
  // Bob answers (his marker moves to his message); alice reads it: bob, who turned receipts
  // off, sees none of hers either.
  b1->send(send_dm("r1", a.id, "answer"));
  ASSERT_TRUE(b1->recv_op("sent"));
  ASSERT_TRUE(wa->recv_op("msg"));
  wa->send(bj::object{{"op", "read"}, {"conversation", "dm:" + b.id}, {"seq", 4}});
  for (Ws* ws : {wa.get(), b1.get(), b2.get()}) {
    ws->send(bj::object{{"op", "ping"}});
    for (auto& f : ws->recv_until([](const bj::object& f) { return is_op(f, "pong"); })) {
      EXPECT_FALSE(is_op(f, "seen")) << bj::serialize(f);
    }
  }
  EXPECT_EQ(num(conversation(a, "dm:" + b.id), "peer_read_seq"), 0u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "peer_read_seq"), 0u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "unread"), 0u);  // his marker did move
  EXPECT_EQ(num(conversation(a, "dm:" + b.id), "unread"), 0u);

  EXPECT_EQ(h.patch("/api/v1/users/me", bj::object{{"read_receipts", "no"}}, b.access).status, 400);
  // On again: the markers as they are, and `seen` again.
  ASSERT_EQ(h.patch("/api/v1/users/me", bj::object{{"read_receipts", true}}, b.access).status, 200);
  EXPECT_EQ(num(conversation(a, "dm:" + b.id), "peer_read_seq"), 4u);
  EXPECT_EQ(num(conversation(b, "dm:" + a.id), "peer_read_seq"), 4u);
  wa->send(send_dm("s5", b.id, "again"));
  ASSERT_TRUE(wa->recv_op("sent"));
  b1->send(bj::object{{"op", "read"}, {"conversation", "dm:" + a.id}, {"seq", 5}});
  auto seen = wa->recv_op("seen");
  ASSERT_TRUE(seen);
  EXPECT_EQ(num(*seen, "seq"), 5u);
}

TEST_F(Messaging, NonMemberAndBadTargetsGetErrorFrames) {
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob"), out = make_account(h, "mallory");
  std::string ch = make_channel(a, {&b});
  auto wm = connect_synced(out);
  wm->send(send_channel("x", ch, "let me in"));
  // A channel one is not in answers as a missing one.
  auto err = wm->recv_op("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(str(*err, "code"), "not_found");
  EXPECT_EQ(str(*err, "cid"), "x");
  wm->send(send_dm("y", "123456789", "nobody"));
  err = wm->recv_op("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(str(*err, "code"), "not_found");
  wm->send(send_dm("z", out.id, "myself"));
  EXPECT_EQ(str(*wm->recv_op("error"), "code"), "invalid_argument");
  wm->send(bj::object{{"op", "read"}, {"conversation", "channel:" + ch}, {"seq", 1}});
  EXPECT_EQ(str(*wm->recv_op("error"), "code"), "not_found");
  wm->send(bj::object{{"op", "ack"}, {"conversation", "channel:" + ch}, {"seq", 1}});
  EXPECT_EQ(str(*wm->recv_op("error"), "code"), "not_found");
  EXPECT_EQ(h.get("/api/v1/channels/" + ch + "/messages", out.access).status, 404);
  // The members saw nothing.
  auto hist = h.get("/api/v1/channels/" + ch + "/messages", a.access);
  EXPECT_EQ(hist.json.as_object().at("messages").as_array().size(), 0u);
}

TEST_F(Messaging, MalformedAndOversizedInputGetsErrorsNotCrashes) {
  start({"--limits-max-message-bytes", "1000", "--limits-max-frame-bytes", "4096"});
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  auto wa = connect_synced(a);
  wa->send_text("{not json");
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send_text("[1,2,3]");
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send(bj::object{{"op", "dance"}});
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send(bj::object{{"op", 7}});
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send_binary("\x01\x02");
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send(bj::object{{"op", "send"}, {"to", b.id}, {"body", "no cid"}});
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send(
      bj::object{{"op", "send"}, {"cid", "t"}, {"to", b.id}, {"type", "video"}, {"body", "x"}});
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  wa->send(send_dm("big", b.id, std::string(1001, 'x')));
  auto big = wa->recv_op("error");
  EXPECT_EQ(str(*big, "code"), "payload_too_large");
  EXPECT_EQ(str(*big, "cid"), "big");
  wa->send(bj::object{{"op", "ack"}, {"conversation", "nonsense"}, {"seq", 1}});
  EXPECT_EQ(str(*wa->recv_op("error"), "code"), "invalid_argument");
  // Still healthy after all that.
  wa->send(send_dm("ok", b.id, "fine"));
  ASSERT_TRUE(wa->recv_op("sent"));
  // A frame over the frame limit closes the connection (1009), the server lives on.
  wa->send_text(std::string(5000, ' '));
  EXPECT_TRUE(wa->wait_closed(5s));
  EXPECT_EQ(h.get("/healthz").status, 200);
}

TEST_F(Messaging, FloodingIsRateLimitedThenDisconnected) {
  start({"--limits-ws-rate-per-s", "1", "--limits-ws-burst", "5", "--limits-ws-abuse-close-after",
         "20"});
  Http h = http();
  auto a = make_account(h, "alice");
  auto wa = connect_synced(a);
  for (int i = 0; i < 200; ++i) wa->send(bj::object{{"op", "ping"}});
  int pongs = 0, limited = 0;
  while (auto f = wa->recv(2s)) {
    if (is_op(*f, "pong")) ++pongs;
    if (is_op(*f, "error") && str(*f, "code") == "too_many_requests") ++limited;
  }
  // The burst of 5, plus at most a few refilled tokens on a slow machine.
  EXPECT_LE(pongs, 10) << "limited " << limited;
  EXPECT_GE(limited, 1) << "pongs " << pongs;
  EXPECT_TRUE(wa->wait_closed(5s));
  EXPECT_EQ(h.get("/healthz").status, 200);
}

TEST_F(Messaging, MissedHeartbeatsCloseTheConnection) {
  start({"--ws-heartbeat-s", "1"});
  Http h = http();
  auto a = make_account(h, "alice");
  auto silent = connect(a);
  auto beating = connect(a);
  auto hello_deadline = std::chrono::steady_clock::now() + 3500ms;
  while (std::chrono::steady_clock::now() < hello_deadline) {
    beating->send(bj::object{{"op", "ping"}});
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_TRUE(silent->wait_closed(2s));
  EXPECT_FALSE(beating->closed());
}

TEST_F(Messaging, UnauthenticatedUpgradeIsRefused) {
  EXPECT_THROW(Ws(server_->host(), server_->port(), "garbage"), std::exception);
}

TEST_F(Messaging, KillNineLosesNoAckedMessage) {
  start({"--limits-ws-rate-per-s", "100000", "--limits-ws-burst", "100000"});
  Http h = http();
  auto a = make_account(h, "alice"), b = make_account(h, "bob");
  std::string ch = make_channel(a, {&b});
  std::map<std::string, std::pair<std::string, std::uint64_t>> acked;  // cid -> (id, seq)
  {
    auto wa = connect_synced(a);
    for (int i = 0; i < 3000; ++i) {
      wa->send(i % 2 ? send_channel("k" + std::to_string(i), ch, "c")
                     : send_dm("k" + std::to_string(i), b.id, "d"));
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (acked.size() < 300 && std::chrono::steady_clock::now() < deadline) {
      auto f = wa->recv(1s);
      if (f && is_op(*f, "sent")) acked[str(*f, "cid")] = {str(*f, "id"), num(*f, "seq")};
    }
    server_->kill9();  // mid-stream
    while (auto f = wa->recv(200ms)) {
      if (is_op(*f, "sent")) acked[str(*f, "cid")] = {str(*f, "id"), num(*f, "seq")};
    }
  }
  ASSERT_GE(acked.size(), 300u);
  server_->start();
  Http h2 = http();
  auto login =
      h2.post("/api/v1/auth/login", bj::object{{"phone", a.phone}, {"password", a.password}});
  ASSERT_EQ(login.status, 200);
  std::string token(login.json.as_object().at("access_token").as_string());
  std::map<std::string, std::pair<std::string, std::uint64_t>> stored;
  for (const std::string& path :
       {"/api/v1/channels/" + ch + "/messages", "/api/v1/dms/" + b.id + "/messages"}) {
    std::uint64_t after = 0;
    for (;;) {
      auto r = h2.get(path + "?limit=100&after_seq=" + std::to_string(after), token);
      ASSERT_EQ(r.status, 200) << r.body;
      const auto& msgs = r.json.as_object().at("messages").as_array();
      for (const auto& m : msgs) {
        const auto& o = m.as_object();
        EXPECT_EQ(num(o, "seq"), after + 1) << "gap in " << path;
        after = num(o, "seq");
        stored[str(o, "cid")] = {str(o, "id"), after};
      }
      if (msgs.size() < 100) break;
    }
  }
  for (const auto& [cid, v] : acked) {
    auto it = stored.find(cid);
    ASSERT_NE(it, stored.end()) << "ACKed message " << cid << " lost";
    EXPECT_EQ(it->second, v) << cid;
  }
}

}  // namespace
}  // namespace imd::test
