#include "rpc/push_codec.hpp"

#include <gtest/gtest.h>

#include "rpc/rpc_test_support.hpp"

// Outside imd::rpc: there the generated proto types (Message, ConvKey, ...) would shadow the
// domain's.
namespace imd {
namespace {

using rpc::decode_batch;
using rpc::decode_delivery;
using rpc::decode_event;
using rpc::DecodeLimits;
using rpc::Delivery;
using rpc::encode_batch;
using rpc::encode_event;
using rpc::PushBatch;
using rpc_test::same;
using rpc_test::sample_events;

Delivery through_the_wire(const imd::Event& e) {
  Delivery d;
  d.add_conns(5);
  encode_event(e, d);
  std::string bytes;
  EXPECT_TRUE(d.SerializeToString(&bytes));
  Delivery back;
  EXPECT_TRUE(back.ParseFromString(bytes));
  return back;
}

TEST(PushCodec, EveryEventKindRoundTripsWithEveryField) {
  for (const auto& e : sample_events()) {
    auto back = decode_event(through_the_wire(e), DecodeLimits{});
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(same(e, **back)) << "variant index " << e.index();
  }
}

TEST(PushCodec, EveryErrorCodeRoundTrips) {
  for (auto code : {imd::Errc::invalid_argument, imd::Errc::unauthenticated, imd::Errc::forbidden,
                    imd::Errc::not_found, imd::Errc::conflict, imd::Errc::too_many_requests,
                    imd::Errc::payload_too_large, imd::Errc::unavailable, imd::Errc::internal}) {
    imd::Event e = imd::SendFailedEvent{"c", imd::Error{code, "m"}};
    auto back = decode_event(through_the_wire(e), DecodeLimits{});
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(std::get<imd::SendFailedEvent>(**back).error.code, code);
  }
}

TEST(PushCodec, BatchKeepsOnlyTheNodesTargetsAndEachEventOnce) {
  auto events = sample_events();
  std::vector<imd::Push> pushes;
  pushes.push_back({{{2, 10}, {3, 11}, {2, 12}}, std::make_shared<imd::Event>(events[0])});
  pushes.push_back({{{3, 13}}, std::make_shared<imd::Event>(events[1])});
  pushes.push_back({{{2, 14}}, std::make_shared<imd::Event>(events[3])});
  PushBatch batch;
  encode_batch(pushes, 2, batch);
  ASSERT_EQ(batch.deliveries_size(), 2);
  EXPECT_EQ(batch.deliveries(0).conns_size(), 2);
  EXPECT_EQ(batch.deliveries(0).conns(0), 10u);
  EXPECT_EQ(batch.deliveries(0).conns(1), 12u);
  EXPECT_TRUE(batch.deliveries(1).has_read());

  auto decoded = decode_batch(batch, 2, DecodeLimits{});
  EXPECT_EQ(decoded.rejected, 0u);
  ASSERT_EQ(decoded.pushes.size(), 2u);
  EXPECT_EQ(decoded.pushes[0].targets, (std::vector<imd::ConnRef>{{2, 10}, {2, 12}}));
  EXPECT_TRUE(same(*decoded.pushes[0].event, events[0]));
  EXPECT_TRUE(same(*decoded.pushes[1].event, events[3]));
}

// A user-addressed push goes to every node, naming the excepted connection only to its own
// node; it comes back as users (and except) with no targets.
TEST(PushCodec, AUserAddressedPushGoesToEveryNodeWithItsExceptionOnlyOnItsNode) {
  auto events = sample_events();
  std::vector<imd::Push> pushes;
  pushes.push_back({{}, std::make_shared<imd::Event>(events[0]), {4, 9}, {2, 12}});
  pushes.push_back({{{3, 13}}, std::make_shared<imd::Event>(events[1])});
  for (std::uint32_t node : {2u, 3u}) {
    PushBatch batch;
    encode_batch(pushes, node, batch);
    ASSERT_EQ(batch.deliveries_size(), node == 2 ? 1 : 2);
    const Delivery& d = batch.deliveries(0);
    EXPECT_EQ(d.conns_size(), 0);
    ASSERT_EQ(d.users_size(), 2);
    EXPECT_EQ(d.except_conn(), node == 2 ? 12u : 0u);
    std::string bytes;
    ASSERT_TRUE(batch.SerializeToString(&bytes));
    PushBatch back;
    ASSERT_TRUE(back.ParseFromString(bytes));
    auto decoded = decode_batch(back, node, DecodeLimits{});
    EXPECT_EQ(decoded.rejected, 0u);
    ASSERT_EQ(decoded.pushes.size(), static_cast<std::size_t>(batch.deliveries_size()));
    const imd::Push& p = decoded.pushes[0];
    EXPECT_TRUE(p.targets.empty());
    EXPECT_EQ(p.users, (std::vector<imd::Id>{4, 9}));
    EXPECT_EQ(p.except, (node == 2 ? imd::ConnRef{2, 12} : imd::ConnRef{}));
    EXPECT_TRUE(same(*p.event, events[0]));
  }
}

// Users are untrusted input like conns: bounded, never 0, never beside conns.
TEST(PushCodec, InvalidUserAddressedDeliveriesAreRejected) {
  DecodeLimits limits;
  limits.max_users = 2;
  auto make = [](std::initializer_list<std::uint64_t> users, bool with_conn) {
    Delivery d;
    for (auto u : users) d.add_users(u);
    if (with_conn) d.add_conns(1);
    encode_event(imd::ReadEvent{1, imd::ConvKey::channel(2), 3}, d);
    return d;
  };
  EXPECT_FALSE(decode_delivery(make({1, 2, 3}, false), 1, limits).ok()) << "too many users";
  EXPECT_FALSE(decode_delivery(make({1, 0}, false), 1, limits).ok()) << "user 0";
  EXPECT_FALSE(decode_delivery(make({1}, true), 1, limits).ok()) << "users and conns";
  EXPECT_TRUE(decode_delivery(make({1, 2}, false), 1, limits).ok());
}

TEST(PushCodec, InvalidDeliveriesAreRejectedOneByOne) {
  DecodeLimits limits;
  limits.max_body_bytes = 10;
  limits.max_text_bytes = 5;
  PushBatch batch;
  auto add = [&](const imd::Event& e) -> Delivery& {
    Delivery& d = *batch.add_deliveries();
    d.add_conns(1);
    encode_event(e, d);
    return d;
  };
  batch.add_deliveries()->add_conns(1);  // 0: no event
  add(imd::ReadEvent{1, imd::ConvKey::channel(2), 3})
      .mutable_read()
      ->mutable_conv()
      ->set_kind(static_cast<rpc::ConvKind>(7));  // 1: unknown conv kind
  add(imd::SendFailedEvent{"c", imd::Error{imd::Errc::internal, "x"}})
      .mutable_send_failed()
      ->set_code(static_cast<rpc::Errc>(42));  // 2: unknown error code
  imd::Message big;
  big.body = std::string(11, 'x');
  add(imd::MessageEvent{big});                                          // 3: body beyond limit
  add(imd::SentEvent{"too-long-cid", 1, 1, imd::ConvKey::channel(1)});  // 4: text beyond limit
  add(imd::ReadEvent{1, imd::ConvKey::channel(2), 3}).clear_conns();    // 5: no targets
  add(imd::ReadEvent{1, imd::ConvKey::channel(2), 3}).mutable_read()->clear_conv();  // 6
  add(imd::ReadEvent{1, imd::ConvKey::channel(2), 4});                               // 7: valid

  for (int i = 0; i < 7; ++i) {
    auto r = decode_delivery(batch.deliveries(i), 1, limits);
    ASSERT_FALSE(r.ok()) << "delivery " << i;
    EXPECT_EQ(r.error().code, imd::Errc::invalid_argument);
  }
  auto decoded = decode_batch(batch, 1, limits);
  EXPECT_EQ(decoded.rejected, 7u);
  ASSERT_EQ(decoded.pushes.size(), 1u);
  EXPECT_EQ(std::get<imd::ReadEvent>(*decoded.pushes[0].event).seq, 4u);
}

}  // namespace
}  // namespace imd
