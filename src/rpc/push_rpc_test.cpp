// RemotePusher -> real PushServers on 127.0.0.1:0 -> recording Pushers (where a gateway's
// Hub would be).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "imd/rpc/push.grpc.pb.h"
#include "rpc/push_codec.hpp"
#include "rpc/push_server.hpp"
#include "rpc/remote_pusher.hpp"
#include "rpc/rpc_test_support.hpp"

// Outside imd::rpc: there the generated proto types (Message, ConvKey, ...) would shadow the
// domain's.
namespace imd {
namespace {

using namespace std::chrono_literals;
using rpc::PushResolver;
using rpc::PushServer;
using rpc::PushServerOptions;
using rpc::RemotePusher;
using rpc::RemotePusherOptions;
using rpc_test::eventually;
using rpc_test::RecordingPusher;
using rpc_test::same;

// A gateway process, as far as Push goes: its connection table and its Push server.
struct FakeGateway {
  explicit FakeGateway(std::uint32_t node, PushServerOptions options = {})
      : node(node), server(node, hub, options) {
    address = server.start();
  }
  std::uint32_t node;
  RecordingPusher hub;
  PushServer server;
  std::string address;
};

// The registry's view: node -> Push address and version, changeable while running.
class Directory {
 public:
  // An empty version: a gateway from before versions (and channel removals).
  void set(std::uint32_t node, std::string address, std::string version = "0.1.0-test") {
    std::lock_guard lock(mu_);
    addresses_[node] = rpc::PushPeer{std::move(address), std::move(version)};
  }
  void erase(std::uint32_t node) {
    std::lock_guard lock(mu_);
    addresses_.erase(node);
  }
  PushResolver resolver() {
    return [this](std::uint32_t node) -> std::optional<rpc::PushPeer> {
      std::lock_guard lock(mu_);
      auto it = addresses_.find(node);
      if (it == addresses_.end()) return std::nullopt;
      return it->second;
    };
  }

 private:
  std::mutex mu_;
  std::map<std::uint32_t, rpc::PushPeer> addresses_;
};

std::shared_ptr<const Event> ev(Event e) {
  return std::make_shared<const Event>(std::move(e));
}

std::shared_ptr<const Event> read_ev(std::uint64_t user, std::uint64_t seq) {
  return ev(ReadEvent{user, ConvKey::channel(1), seq});
}

std::vector<Push> one(std::vector<ConnRef> targets, std::shared_ptr<const Event> e) {
  std::vector<Push> v;
  v.push_back(Push{std::move(targets), std::move(e)});
  return v;
}

TEST(PushRpc, EveryEventKindArrivesWithEveryField) {
  FakeGateway gw(2);
  Directory dir;
  dir.set(2, gw.address);
  RemotePusher pusher(1, nullptr, dir.resolver());
  auto events = rpc_test::sample_events();
  std::vector<Push> pushes;
  for (const auto& e : events) pushes.push_back(Push{{{2, 7}}, ev(e)});
  pusher.push(std::move(pushes));
  ASSERT_TRUE(gw.hub.wait_total(events.size()));
  auto got = gw.hub.events({2, 7});
  ASSERT_EQ(got.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_TRUE(same(*got[i], events[i])) << i;
  // The reply reaches the sender just after the hub got the events.
  EXPECT_TRUE(eventually([&] { return pusher.stats().events_sent == events.size(); }));
}

TEST(PushRpc, EachConnectionOnTwoGatewaysAndLocalGetsExactlyItsEvents) {
  FakeGateway gw2(2), gw3(3);
  RecordingPusher local;
  Directory dir;
  dir.set(2, gw2.address);
  dir.set(3, gw3.address);
  RemotePusher pusher(1, &local, dir.resolver());

  std::vector<ConnRef> conns = {{1, 1}, {1, 2}, {1, 3}, {2, 1}, {2, 2},
                                {2, 3}, {2, 4}, {3, 1}, {3, 2}, {3, 3}};
  std::map<ConnRef, std::vector<std::uint64_t>> expected;
  std::vector<Push> pushes;
  std::uint64_t seq = 0;
  auto add = [&](std::vector<ConnRef> targets) {
    ++seq;
    for (ConnRef c : targets) expected[c].push_back(seq);
    pushes.push_back(Push{std::move(targets), read_ev(0, seq)});
  };
  add(conns);                        // everyone
  add({{2, 1}, {3, 3}});             // two gateways
  add({{1, 2}});                     // local only
  add({{3, 1}, {3, 2}, {1, 1}});     // gateway 3 and local
  for (ConnRef c : conns) add({c});  // one each
  pusher.push(std::move(pushes));

  std::size_t local_n = 0, n2 = 0, n3 = 0;
  for (auto& [c, seqs] : expected) (c.node == 1 ? local_n : c.node == 2 ? n2 : n3) += seqs.size();
  ASSERT_TRUE(gw2.hub.wait_total(n2));
  ASSERT_TRUE(gw3.hub.wait_total(n3));
  EXPECT_EQ(local.total(), local_n);   // local is synchronous
  std::this_thread::sleep_for(100ms);  // nothing more arrives
  EXPECT_EQ(gw2.hub.total(), n2);
  EXPECT_EQ(gw3.hub.total(), n3);
  for (ConnRef c : conns) {
    RecordingPusher& where = c.node == 1 ? local : c.node == 2 ? gw2.hub : gw3.hub;
    std::vector<std::uint64_t> got;
    for (auto& e : where.events(c)) got.push_back(std::get<ReadEvent>(*e).seq);
    EXPECT_EQ(got, expected[c]) << c.node << ":" << c.conn;
  }
  // An event for several connections of one gateway travels once to it.
  EXPECT_EQ(gw2.server.stats().deliveries_accepted, 2u + 4u);
  EXPECT_EQ(gw3.server.stats().deliveries_accepted, 3u + 3u);
  EXPECT_TRUE(eventually([&] { return pusher.stats().events_sent == 12; }));
}

// A user-addressed push (the caller could not read the routes) goes to local and to every
// gateway the lister names, in the same call as that gateway's other events, the excepted
// connection named only to its own gateway; a gateway not named (an older one) gets nothing.
TEST(PushRpc, AUserAddressedPushReachesEveryDeclaredGatewayInOneCallEach) {
  FakeGateway gw2(2), gw3(3), old4(4);
  RecordingPusher local;
  Directory dir;
  dir.set(2, gw2.address);
  dir.set(3, gw3.address);
  dir.set(4, old4.address);
  RemotePusher pusher(1, &local, dir.resolver(), RemotePusherOptions{}, [] {
    return std::vector<std::uint32_t>{1, 2, 3};
  });
  std::vector<Push> pushes;
  pushes.push_back(Push{{{2, 1}, {3, 1}}, read_ev(0, 1)});
  Push by_user{{}, read_ev(0, 2)};
  by_user.users = {10, 11};
  by_user.except = {2, 5};
  pushes.push_back(std::move(by_user));
  pusher.push(std::move(pushes));

  ASSERT_TRUE(gw2.hub.wait_total(3));
  ASSERT_TRUE(gw3.hub.wait_total(3));
  EXPECT_EQ(local.total(), 2u);  // local is synchronous
  for (Id user : {10, 11}) {
    for (auto* hub : {&gw2.hub, &gw3.hub, &local}) {
      auto got = hub->events_of_user(user);
      ASSERT_EQ(got.size(), 1u) << user;
      EXPECT_EQ(std::get<ReadEvent>(*got[0].first).seq, 2u);
      EXPECT_EQ(got[0].second, (hub == &gw3.hub ? ConnRef{} : ConnRef{2, 5}));
    }
  }
  EXPECT_EQ(gw2.hub.events({2, 1}).size(), 1u);
  EXPECT_EQ(gw2.server.stats().calls, 1u) << "one call per gateway per batch";
  EXPECT_EQ(gw3.server.stats().calls, 1u);
  EXPECT_EQ(old4.server.stats().calls, 0u);
  EXPECT_EQ(pusher.stats().fallback_broadcasts, 1u);
}

TEST(PushRpc, ManyEventsFromTwoThreadsArriveInOrderInFewCalls) {
  FakeGateway gw2(2), gw3(3);
  Directory dir;
  dir.set(2, gw2.address);
  dir.set(3, gw3.address);
  RemotePusherOptions options;
  options.max_outbox_events = 100000;  // this test is about order and batching, not bounds
  RemotePusher pusher(1, nullptr, dir.resolver(), options);

  constexpr std::uint64_t kPerThread = 10000, kConnsPerGateway = 5;
  std::atomic<std::int64_t> slowest_push_us{0};
  auto producer = [&](std::uint64_t user) {
    for (std::uint64_t i = 0; i < kPerThread; ++i) {
      auto start = std::chrono::steady_clock::now();
      std::uint64_t c = i % kConnsPerGateway + 1;
      pusher.push(one({{2, c}, {3, c}}, read_ev(user, i)));
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
      std::int64_t prev = slowest_push_us.load();
      while (us > prev && !slowest_push_us.compare_exchange_weak(prev, us)) {
      }
      if (i % 500 == 499) std::this_thread::sleep_for(1ms);  // bursts
    }
  };
  std::thread a(producer, 100), b(producer, 200);
  a.join();
  b.join();
  ASSERT_TRUE(gw2.hub.wait_total(2 * kPerThread, 60s)) << gw2.hub.total();
  ASSERT_TRUE(gw3.hub.wait_total(2 * kPerThread, 60s)) << gw3.hub.total();

  for (FakeGateway* gw : {&gw2, &gw3}) {
    for (std::uint64_t c = 1; c <= kConnsPerGateway; ++c) {
      std::map<std::uint64_t, std::vector<std::uint64_t>> by_user;
      for (auto& e : gw->hub.events({gw->node, c})) {
        const auto& r = std::get<ReadEvent>(*e);
        by_user[r.user_id].push_back(r.seq);
      }
      ASSERT_EQ(by_user.size(), 2u);
      for (auto& [user, seqs] : by_user) {
        ASSERT_EQ(seqs.size(), kPerThread / kConnsPerGateway) << gw->node << ":" << c;
        for (std::size_t k = 0; k < seqs.size(); ++k) {
          ASSERT_EQ(seqs[k], k * kConnsPerGateway + (c - 1)) << "out of order or lost";
        }
      }
    }
  }
  EXPECT_TRUE(eventually([&] { return pusher.stats().events_sent == 4 * kPerThread; }));
  auto s = pusher.stats();
  EXPECT_EQ(s.events_dropped_full + s.events_dropped_failed + s.events_dropped_unknown_node, 0u);
  EXPECT_LT(s.calls, 2 * kPerThread / 10) << "batching";
  std::cout << "20000 pushes to 2 gateways: " << s.calls << " calls, slowest push() "
            << slowest_push_us.load() << " us\n";
}

TEST(PushRpc, UnknownNodeIsDroppedAndCountedWithoutACall) {
  Directory dir;
  RemotePusher pusher(1, nullptr, dir.resolver());
  std::vector<Push> pushes;
  pushes.push_back(Push{{{9, 1}, {9, 2}}, read_ev(1, 1)});
  pushes.push_back(Push{{{9, 3}}, read_ev(1, 2)});
  pusher.push(std::move(pushes));
  auto s = pusher.stats();  // at once: the first attempt runs inside push()
  EXPECT_EQ(s.events_dropped_unknown_node, 2u);
  EXPECT_EQ(s.calls, 0u);
  EXPECT_EQ(s.events_sent, 0u);
}

// A gateway from before versions decodes a removal from one channel without its channel_id and
// tells the client it left the whole space (found by scripts/upgrade-drill.sh): such a removal
// is not sent to a gateway that registered no version; everything else is.
TEST(PushRpc, AChannelRemovalIsNotSentToAGatewayOfAnOlderVersion) {
  FakeGateway versioned(2), old(3);
  Directory dir;
  dir.set(2, versioned.address);
  dir.set(3, old.address, "");
  RemotePusher pusher(1, nullptr, dir.resolver());
  const std::vector<ConnRef> both = {{2, 1}, {3, 1}};
  pusher.push(one(both, ev(RemovedEvent{99, "removed", 77})));  // from channel 77 only
  pusher.push(one(both, ev(RemovedEvent{99, "banned"})));       // from the whole space
  pusher.push(one(both, read_ev(1, 1)));
  ASSERT_TRUE(versioned.hub.wait_total(3));
  ASSERT_TRUE(old.hub.wait_total(2));
  auto got_versioned = versioned.hub.events({2, 1});
  auto got_old = old.hub.events({3, 1});
  ASSERT_EQ(got_versioned.size(), 3u);
  EXPECT_TRUE(same(*got_versioned[0], RemovedEvent{99, "removed", 77}));
  ASSERT_EQ(got_old.size(), 2u);
  EXPECT_TRUE(same(*got_old[0], RemovedEvent{99, "banned"}));
  EXPECT_TRUE(same(*got_old[1], ReadEvent{1, ConvKey::channel(1), 1}));
  EXPECT_EQ(pusher.stats().events_dropped_old_gateway, 1u);
}

TEST(PushRpc, LocalTargetsSkipTheNetwork) {
  RecordingPusher local;
  Directory dir;
  RemotePusher pusher(1, &local, dir.resolver());
  pusher.push(one({{1, 5}, {1, 6}}, read_ev(1, 1)));
  EXPECT_EQ(local.total(), 2u);
  EXPECT_EQ(local.calls(), 1u);
  EXPECT_EQ(pusher.stats().calls, 0u);
}

TEST(PushRpc, StalledGatewayCallsEndAtTheirDeadlineRetriesAreBoundedPushNeverBlocks) {
  PushServerOptions server_options;
  server_options.max_threads = 16;  // stalled handlers hold their threads
  FakeGateway gw(2, server_options);
  gw.hub.stall();
  Directory dir;
  dir.set(2, gw.address);
  RemotePusherOptions options;
  options.call_deadline = 500ms;
  options.max_attempts = 3;
  options.backoff_initial = 50ms;
  RemotePusher pusher(1, nullptr, dir.resolver(), options);

  auto start = std::chrono::steady_clock::now();
  std::chrono::nanoseconds slowest{0};
  for (int i = 0; i < 201; ++i) {
    auto t = std::chrono::steady_clock::now();
    pusher.push(one({{2, 1}}, read_ev(1, i)));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t);
    if (i == 0) std::this_thread::sleep_for(100ms);  // the first call is in flight
  }
  // Batch 1 (1 event) then batch 2 (200 events): 3 attempts each, then dropped.
  ASSERT_TRUE(eventually([&] { return pusher.stats().events_dropped_failed == 201; }, 10s));
  auto elapsed = std::chrono::steady_clock::now() - start;
  auto s = pusher.stats();
  EXPECT_EQ(s.calls, 6u);
  EXPECT_EQ(s.retries, 4u);
  EXPECT_EQ(s.events_sent, 0u);
  EXPECT_GE(elapsed, 6 * 500ms);
  EXPECT_LT(slowest, 50ms) << "push() blocked";
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(pusher.stats().calls, 6u) << "no retry after the drop";
  gw.hub.release();
}

TEST(PushRpc, GatewayDownThenStartedGetsLaterPushes) {
  std::string address;
  {
    RecordingPusher hub;
    PushServer probe(2, hub);
    address = probe.start();  // a free port, then nobody listens there
  }
  Directory dir;
  dir.set(2, address);
  RemotePusherOptions options;
  options.call_deadline = 500ms;
  options.max_attempts = 2;
  options.backoff_initial = 50ms;
  options.reconnect_backoff_max = 200ms;
  RemotePusher pusher(1, nullptr, dir.resolver(), options);

  pusher.push(one({{2, 1}}, read_ev(1, 1)));
  ASSERT_TRUE(eventually([&] { return pusher.stats().events_dropped_failed == 1; }, 5s));
  EXPECT_EQ(pusher.stats().calls, 2u);

  PushServerOptions server_options;
  server_options.address = address;
  FakeGateway gw(2, server_options);
  pusher.push(one({{2, 1}}, read_ev(1, 2)));
  ASSERT_TRUE(gw.hub.wait_total(1, 5s));
  EXPECT_EQ(std::get<ReadEvent>(*gw.hub.events({2, 1}).at(0)).seq, 2u);
  EXPECT_TRUE(eventually([&] { return pusher.stats().events_sent == 1; }));
}

TEST(PushRpc, ANewAddressForANodeGetsANewChannel) {
  FakeGateway old_gw(2), new_gw(2);
  Directory dir;
  dir.set(2, old_gw.address);
  RemotePusher pusher(1, nullptr, dir.resolver());
  pusher.push(one({{2, 1}}, read_ev(1, 1)));
  ASSERT_TRUE(old_gw.hub.wait_total(1));
  dir.set(2, new_gw.address);  // the gateway restarted elsewhere
  ASSERT_TRUE(eventually([&] { return pusher.stats().events_sent == 1; }));
  pusher.push(one({{2, 1}}, read_ev(1, 2)));
  ASSERT_TRUE(new_gw.hub.wait_total(1));
  EXPECT_EQ(old_gw.hub.total(), 1u);
}

TEST(PushRpc, OutboxBoundInEventsAndBytesAndCallSizeAreRespected) {
  FakeGateway gw(2);
  gw.hub.stall();
  Directory dir;
  dir.set(2, gw.address);
  RemotePusherOptions options;
  options.call_deadline = 10s;
  options.max_outbox_events = 100;
  options.max_call_events = 30;
  RemotePusher pusher(1, nullptr, dir.resolver(), options);

  pusher.push(one({{2, 1}}, read_ev(1, 0)));  // leaves the outbox at once, then stalls
  ASSERT_TRUE(gw.hub.wait_calls(1));
  for (int i = 1; i <= 1000; ++i) pusher.push(one({{2, 1}}, read_ev(1, i)));
  EXPECT_EQ(pusher.stats().events_dropped_full, 900u);  // drop newest: 1..100 kept
  gw.hub.release();
  ASSERT_TRUE(gw.hub.wait_total(101));
  auto got = gw.hub.events({2, 1});
  ASSERT_EQ(got.size(), 101u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(std::get<ReadEvent>(*got[i]).seq, i);
  EXPECT_EQ(gw.hub.calls(), 1u + 4u);  // the 100 queued ones in calls of 30, 30, 30, 10

  // Bytes: ~1 KiB messages against a 10 KiB outbox.
  FakeGateway gw_b(3);
  gw_b.hub.stall();
  dir.set(3, gw_b.address);
  RemotePusherOptions by_bytes;
  by_bytes.call_deadline = 10s;
  by_bytes.max_outbox_bytes = 10 * 1024;
  RemotePusher pusher_b(1, nullptr, dir.resolver(), by_bytes);
  Message m = rpc_test::sample_message();
  m.body = std::string(1000, 'x');
  pusher_b.push(one({{3, 1}}, ev(MessageEvent{m})));
  ASSERT_TRUE(gw_b.hub.wait_calls(1));
  for (int i = 0; i < 50; ++i) pusher_b.push(one({{3, 1}}, ev(MessageEvent{m})));
  auto s = pusher_b.stats();
  EXPECT_GT(s.events_dropped_full, 35u);  // (1000 + overhead) bytes each: 9 fit
  EXPECT_LT(s.events_dropped_full, 50u);
  gw_b.hub.release();
  ASSERT_TRUE(gw_b.hub.wait_total(1 + 50 - s.events_dropped_full));
}

TEST(PushRpc, StopDrainsWhatIsQueued) {
  FakeGateway gw(2);
  Directory dir;
  dir.set(2, gw.address);
  RemotePusher pusher(1, nullptr, dir.resolver());
  for (int i = 0; i < 500; ++i) pusher.push(one({{2, 1}}, read_ev(1, i)));
  pusher.stop();
  EXPECT_EQ(pusher.stats().events_sent, 500u);
  EXPECT_EQ(gw.hub.total(), 500u);
  pusher.push(one({{2, 1}}, read_ev(1, 500)));  // after stop: dropped, counted
  EXPECT_EQ(pusher.stats().events_dropped_failed, 1u);
}

TEST(PushRpc, StopCancelsWhatCannotDrain) {
  FakeGateway gw(2);
  gw.hub.stall();
  Directory dir;
  dir.set(2, gw.address);
  RemotePusherOptions options;
  options.call_deadline = 10s;
  options.stop_deadline = 200ms;
  RemotePusher pusher(1, nullptr, dir.resolver(), options);
  pusher.push(one({{2, 1}}, read_ev(1, 0)));
  ASSERT_TRUE(gw.hub.wait_calls(1));
  for (int i = 1; i <= 10; ++i) pusher.push(one({{2, 1}}, read_ev(1, i)));
  auto start = std::chrono::steady_clock::now();
  pusher.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(pusher.stats().events_dropped_failed, 11u);
  gw.hub.release();
}

// --- hostile input straight at the server ------------------------------------------------

grpc::Status call(const std::string& address, const rpc::PushBatch& batch, rpc::PushReply* reply) {
  auto stub =
      rpc::Gateway::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  return stub->Push(&ctx, batch, reply);
}

TEST(PushRpc, HostileBatchesGetAnErrorAndTheServerStaysUp) {
  PushServerOptions options;
  options.max_body_bytes = 1000;
  options.max_receive_bytes = 64 * 1024;
  FakeGateway gw(2, options);

  // Bytes that are no rpc::PushBatch: a length-delimited field longer than the message.
  {
    grpc::GenericStub generic(grpc::CreateChannel(gw.address, grpc::InsecureChannelCredentials()));
    std::string garbage = "\x0a\x7f\x01\x02\x03";
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, "/imd.rpc.Gateway/Push", grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) { done.set_value(std::move(s)); });
    auto status = done.get_future().get();
    EXPECT_FALSE(status.ok());
    std::cout << "garbage -> " << status.error_code() << " " << status.error_message() << "\n";
  }
  rpc::PushReply reply;
  {
    rpc::PushBatch batch;
    batch.add_deliveries()->add_conns(1);  // no event
    auto status = call(gw.address, batch, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    rpc::PushBatch batch;
    rpc::Delivery& d = *batch.add_deliveries();
    d.add_conns(1);
    rpc::encode_event(ReadEvent{1, ConvKey::channel(1), 1}, d);
    d.mutable_read()->mutable_conv()->set_kind(static_cast<rpc::ConvKind>(99));
    EXPECT_EQ(call(gw.address, batch, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    rpc::PushBatch batch;
    Message m = rpc_test::sample_message();
    m.body = std::string(1001, 'x');
    rpc::encode_batch(one({{2, 1}}, ev(MessageEvent{m})), 2, batch);
    EXPECT_EQ(call(gw.address, batch, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    rpc::PushBatch batch;
    Message m = rpc_test::sample_message();
    m.body = std::string(100 * 1024, 'x');  // beyond max_receive_bytes
    rpc::Delivery& d = *batch.add_deliveries();
    d.add_conns(1);
    rpc::encode_event(MessageEvent{m}, d);
    EXPECT_EQ(call(gw.address, batch, &reply).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  EXPECT_EQ(gw.hub.total(), 0u);
  {
    // One bad delivery among good ones: skipped, the rest is delivered.
    rpc::PushBatch batch;
    rpc::encode_batch(one({{2, 1}}, read_ev(1, 1)), 2, batch);
    batch.add_deliveries()->add_conns(1);
    rpc::encode_batch(one({{2, 1}}, read_ev(1, 2)), 2, batch);
    auto status = call(gw.address, batch, &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(reply.accepted(), 2u);
    EXPECT_EQ(reply.rejected(), 1u);
  }
  auto got = gw.hub.events({2, 1});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(std::get<ReadEvent>(*got[1]).seq, 2u);
  auto s = gw.server.stats();
  EXPECT_EQ(s.calls_rejected, 3u);
  EXPECT_EQ(s.deliveries_rejected, 4u);
}

}  // namespace
}  // namespace imd
