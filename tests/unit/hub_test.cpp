// The Hub (gateway/hub.hpp), the in-process Pusher: its connection table, and how it turns the
// pushes of one call into one hand-off per connection, with a message serialized once for all
// its recipients (once more for the sender's other devices, which see the cid). Last, behind
// MessagingService on the standalone adapters, as src/app wires it.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/hub.hpp"
#include "support/in_process.hpp"

namespace imd {
namespace {

using gateway::Hub;
using gateway::OutFrame;

// A connection that keeps each deliver() call's frames.
class RecordingConnection final : public gateway::Connection {
 public:
  Id session = 0;  // its login session; set before attaching

  void deliver(std::vector<OutFrame> frames) override {
    std::lock_guard lock(mu_);
    deliveries_.push_back(std::move(frames));
  }
  void end_session() override { ended_.store(true); }
  Id login_session() const override { return session; }
  bool ended() const { return ended_.load(); }
  std::vector<std::vector<OutFrame>> deliveries() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  // Every frame's text, over all deliveries.
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& d : deliveries()) {
      for (const auto& f : d) out.push_back(*f.text);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<OutFrame>> deliveries_;
  std::atomic<bool> ended_{false};
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr std::uint32_t kNode = 7;
constexpr Id kAlice = 1, kBob = 2, kCarol = 3;

class HubTest : public ::testing::Test {
 protected:
  struct Device {
    std::shared_ptr<RecordingConnection> conn = std::make_shared<RecordingConnection>();
    ConnRef ref;
  };
  Device attach(Id user, Id session = 0) {
    Device d;
    d.conn->session = session;
    d.ref = hub_.attach(user, d.conn);
    return d;
  }
  static Message message(Id from, ConvKey conv, std::uint64_t seq) {
    Message m;
    m.id = 1000 + seq;
    m.conv = conv;
    m.seq = seq;
    m.from = from;
    m.to = conv.is_dm() ? conv.peer_of(from) : 0;
    m.type = "text";
    m.body = "body " + std::to_string(seq);
    m.created_at = 5000;
    m.cid = "cid-" + std::to_string(seq);
    return m;
  }
  template <class E>
  static Push push(std::vector<ConnRef> targets, E event) {
    return Push{std::move(targets), std::make_shared<const Event>(std::move(event))};
  }

  Hub hub_{kNode};
  const ConvKey channel_ = ConvKey::channel(60);
};

// Ending a user's sessions reaches every connection of that user and no other.
TEST_F(HubTest, EndingSessionsClosesEveryConnectionOfTheUser) {
  Device a1 = attach(kAlice), a2 = attach(kAlice), b1 = attach(kBob);
  hub_.end_sessions_of(kAlice);
  EXPECT_TRUE(a1.conn->ended());
  EXPECT_TRUE(a2.conn->ended());
  EXPECT_FALSE(b1.conn->ended());
}

// Ending one login session reaches only the user's connections of that session.
TEST_F(HubTest, EndingOneSessionClosesOnlyItsConnections) {
  Device phone1 = attach(kAlice, 11), phone2 = attach(kAlice, 11), laptop = attach(kAlice, 12);
  Device legacy = attach(kAlice), bob = attach(kBob, 11);
  hub_.end_session(kAlice, 11);
  EXPECT_TRUE(phone1.conn->ended());
  EXPECT_TRUE(phone2.conn->ended());
  EXPECT_FALSE(laptop.conn->ended());
  EXPECT_FALSE(legacy.conn->ended());
  EXPECT_FALSE(bob.conn->ended());  // another user's connection is never matched by session
}

TEST_F(HubTest, AttachAndDetachKeepTheTable) {
  Device a1 = attach(kAlice), a2 = attach(kAlice), b1 = attach(kBob);
  EXPECT_EQ(a1.ref.node, kNode);
  EXPECT_NE(a1.ref, a2.ref);
  EXPECT_NE(a2.ref, b1.ref);
  EXPECT_EQ(hub_.size(), 3u);
  EXPECT_EQ(hub_.connections_of(kAlice), 2u);
  EXPECT_EQ(hub_.connections_of(kBob), 1u);
  auto snapshot = hub_.snapshot();
  std::sort(snapshot.begin(), snapshot.end());
  std::vector<std::pair<Id, ConnRef>> expected = {
      {kAlice, a1.ref}, {kAlice, a2.ref}, {kBob, b1.ref}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(snapshot, expected);

  hub_.detach(a1.ref);
  hub_.detach(a1.ref);  // twice: nothing more
  EXPECT_EQ(hub_.size(), 2u);
  EXPECT_EQ(hub_.connections_of(kAlice), 1u);
  hub_.detach(b1.ref);
  EXPECT_EQ(hub_.connections_of(kBob), 0u);
  EXPECT_EQ(hub_.snapshot().size(), 1u);
  Device a3 = attach(kAlice);
  EXPECT_NE(a3.ref, a1.ref);  // ids are not reused
}

// The pushes of one call reach each connection in one deliver(), in push order; message frames
// carry their conversation and seq, other events do not count as messages.
TEST_F(HubTest, OneCallIsOneHandOffPerConnectionInPushOrder) {
  Device a1 = attach(kAlice), a2 = attach(kAlice), b1 = attach(kBob), b2 = attach(kBob),
         c1 = attach(kCarol);
  std::vector<Push> pushes;
  for (std::uint64_t seq : {1, 2}) {
    pushes.push_back(
        push({a2.ref, b1.ref, b2.ref, c1.ref}, MessageEvent{message(kAlice, channel_, seq)}));
    pushes.push_back(push({a1.ref}, SentEvent{"cid-" + std::to_string(seq), 1000 + seq, seq,
                                              channel_, kAlice, 5000}));
  }
  pushes.push_back(push({b2.ref}, ReadEvent{kBob, channel_, 2}));
  hub_.push(std::move(pushes));

  for (const Device* d : {&a1, &a2, &b1, &b2, &c1}) ASSERT_EQ(d->conn->deliveries().size(), 1u);
  auto to_b2 = b2.conn->deliveries()[0];
  ASSERT_EQ(to_b2.size(), 3u);
  EXPECT_TRUE(to_b2[0].is_message);
  EXPECT_EQ(to_b2[0].conv, channel_);
  EXPECT_EQ(to_b2[0].seq, 1u);
  EXPECT_EQ(to_b2[1].seq, 2u);
  EXPECT_FALSE(to_b2[2].is_message);
  EXPECT_TRUE(contains(*to_b2[2].text, "\"op\":\"read\""));
  auto to_a1 = a1.conn->texts();
  ASSERT_EQ(to_a1.size(), 2u);
  EXPECT_TRUE(contains(to_a1[0], "\"op\":\"sent\"") && contains(to_a1[0], "\"cid\":\"cid-1\""));
  EXPECT_TRUE(contains(to_a1[1], "\"cid\":\"cid-2\""));
  EXPECT_EQ(c1.conn->deliveries()[0].size(), 2u);
}

// A message is serialized once per push for every recipient, and once more for the sender's
// other devices, whose frame names the cid (and, in a DM, the conversation from their side).
TEST_F(HubTest, AMessageFrameIsBuiltOnceForAllItsRecipients) {
  Device a2 = attach(kAlice), a3 = attach(kAlice), b1 = attach(kBob), b2 = attach(kBob),
         c1 = attach(kCarol);
  std::vector<Push> pushes;
  pushes.push_back(
      push({a2.ref, b1.ref, b2.ref, c1.ref, a3.ref}, MessageEvent{message(kAlice, channel_, 1)}));
  hub_.push(std::move(pushes));
  auto frame = [](const Device& d) { return d.conn->deliveries().at(0).at(0).text; };
  EXPECT_EQ(frame(b1), frame(b2));  // the same buffer, not an equal copy
  EXPECT_EQ(frame(b1), frame(c1));
  EXPECT_EQ(frame(a2), frame(a3));
  EXPECT_NE(frame(a2), frame(b1));
  EXPECT_TRUE(contains(*frame(a2), "\"cid\":\"cid-1\""));
  EXPECT_FALSE(contains(*frame(b1), "\"cid\""));
  EXPECT_TRUE(contains(*frame(b1), "\"body\":\"body 1\""));

  const ConvKey dm = ConvKey::dm(kAlice, kBob);
  pushes.clear();
  pushes.push_back(push({a2.ref, b1.ref}, MessageEvent{message(kAlice, dm, 1)}));
  hub_.push(std::move(pushes));
  auto last = [](const Device& d) { return d.conn->texts().back(); };
  EXPECT_TRUE(contains(last(a2), "\"conversation\":\"dm:2\"") && contains(last(a2), "\"cid\""));
  EXPECT_TRUE(contains(last(b1), "\"conversation\":\"dm:1\""));
  EXPECT_FALSE(contains(last(b1), "\"cid\""));
}

// A user-addressed push (the routes could not be read) reaches every connection of its users
// on this node but `except`, in push order beside the addressed ones, each once even when a
// user is named twice; a user without a connection here costs nothing.
TEST_F(HubTest, AUserAddressedPushReachesTheUsersConnectionsButTheExceptedOne) {
  Device a1 = attach(kAlice), a2 = attach(kAlice), b1 = attach(kBob), b2 = attach(kBob),
         c1 = attach(kCarol);
  const ConvKey dm = ConvKey::dm(kAlice, kBob);
  std::vector<Push> pushes;
  Push by_user = push({}, MessageEvent{message(kAlice, dm, 1)});
  by_user.users = {kAlice, kBob, kBob, 99};
  by_user.except = a1.ref;  // the sending connection gets `sent` instead
  pushes.push_back(std::move(by_user));
  pushes.push_back(push({a1.ref}, SentEvent{"cid-1", 1001, 1, dm, kAlice, 5000}));
  Push read = push({}, ReadEvent{kBob, dm, 1});
  read.users = {kBob};
  pushes.push_back(std::move(read));
  hub_.push(std::move(pushes));

  ASSERT_EQ(a1.conn->texts().size(), 1u);
  EXPECT_TRUE(contains(a1.conn->texts()[0], "\"op\":\"sent\""));
  ASSERT_EQ(a2.conn->deliveries().size(), 1u);
  ASSERT_EQ(a2.conn->deliveries()[0].size(), 1u);
  EXPECT_TRUE(a2.conn->deliveries()[0][0].is_message);
  EXPECT_TRUE(contains(*a2.conn->deliveries()[0][0].text, "\"cid\":\"cid-1\""));
  for (const Device* d : {&b1, &b2}) {
    ASSERT_EQ(d->conn->deliveries().size(), 1u);
    const auto frames = d->conn->deliveries()[0];
    ASSERT_EQ(frames.size(), 2u) << "the message once, then the read marker";
    EXPECT_TRUE(frames[0].is_message);
    EXPECT_EQ(frames[0].conv, dm);
    EXPECT_EQ(frames[0].seq, 1u);
    EXPECT_TRUE(contains(*frames[1].text, "\"op\":\"read\""));
  }
  EXPECT_TRUE(c1.conn->deliveries().empty());
}

// Targets that are gone are skipped: detached, destroyed, or held by another node.
TEST_F(HubTest, ConnectionsThatAreGoneAreSkipped) {
  Device a1 = attach(kAlice), b1 = attach(kBob), b2 = attach(kBob);
  Device c1 = attach(kCarol);
  hub_.detach(b1.ref);
  std::weak_ptr<RecordingConnection> watch = c1.conn;
  c1.conn.reset();  // the connection object is gone, its entry not yet detached
  ASSERT_TRUE(watch.expired());
  const ConnRef elsewhere{kNode + 1, b2.ref.conn};
  std::vector<Push> pushes;
  pushes.push_back(
      push({b1.ref, b2.ref, c1.ref, elsewhere}, MessageEvent{message(kAlice, channel_, 1)}));
  pushes.push_back(push({b1.ref}, ReadEvent{kBob, channel_, 1}));
  hub_.push(std::move(pushes));
  EXPECT_TRUE(b1.conn->deliveries().empty());
  ASSERT_EQ(b2.conn->deliveries().size(), 1u);  // once: `elsewhere` is not b2
  EXPECT_EQ(b2.conn->deliveries()[0].size(), 1u);
  EXPECT_TRUE(a1.conn->deliveries().empty());
}

// Behind MessagingService, as in the standalone server: the sending connection gets `sent`, the
// sender's other device and the recipient get the message frame.
TEST(HubBehindMessaging, SendsBecomeFramesOnEveryConnection) {
  Hub hub(1);  // outlives the parts that push into it
  testing::InProcess<> parts;
  parts.pusher.forward_to(&hub);
  parts.add_users({kAlice, kBob});
  parts.start_queue();
  auto open = [&](Id user) {
    auto conn = std::make_shared<RecordingConnection>();
    ConnRef ref = hub.attach(user, conn);
    parts.routes.add(user, ref);
    return std::make_pair(conn, ref);
  };
  auto [a1, a1_ref] = open(kAlice);
  auto [a2, a2_ref] = open(kAlice);
  auto [b1, b1_ref] = open(kBob);
  auto sent = parts.send(kAlice, testing::text_to_user(kBob, "k1", "hello"), a1_ref);
  ASSERT_TRUE(sent);
  // The pusher records a call after the Hub handed it over: every frame is there by now.
  ASSERT_EQ(a1->texts().size(), 1u);
  EXPECT_TRUE(contains(a1->texts()[0], "\"op\":\"sent\"") &&
              contains(a1->texts()[0], "\"cid\":\"k1\""));
  ASSERT_EQ(a2->texts().size(), 1u);
  EXPECT_TRUE(contains(a2->texts()[0], "\"op\":\"msg\"") &&
              contains(a2->texts()[0], "\"cid\":\"k1\""));
  ASSERT_EQ(b1->texts().size(), 1u);
  EXPECT_TRUE(contains(b1->texts()[0], "\"body\":\"hello\""));
  EXPECT_FALSE(contains(b1->texts()[0], "\"cid\""));
  ASSERT_EQ(b1->deliveries()[0].size(), 1u);
  EXPECT_EQ(b1->deliveries()[0][0].seq, sent->seq);
}

}  // namespace
}  // namespace imd
