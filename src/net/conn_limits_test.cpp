#include "net/conn_limits.hpp"

#include <gtest/gtest.h>

namespace imd::net {
namespace {

using boost::asio::ip::make_address;
using Refusal = ConnectionLimits::Refusal;

TEST(ConnectionLimits, CountsPerAddressAndGivesSlotsBack) {
  auto limits = std::make_shared<ConnectionLimits>(100, 2);
  Refusal why{};
  auto a1 = limits->admit(make_address("203.0.113.7"), false, why);
  auto a2 = limits->admit(make_address("203.0.113.7"), false, why);
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(limits->admit(make_address("203.0.113.7"), false, why));
  EXPECT_EQ(why, Refusal::per_address);
  // Another address is not affected.
  auto b = limits->admit(make_address("198.51.100.1"), false, why);
  EXPECT_TRUE(b);
  EXPECT_EQ(limits->open(), 3u);
  a1.reset();
  EXPECT_EQ(limits->open_from(make_address("203.0.113.7")), 1u);
  EXPECT_TRUE(limits->admit(make_address("203.0.113.7"), false, why));
}

TEST(ConnectionLimits, TheTotalCapCountsEveryone) {
  auto limits = std::make_shared<ConnectionLimits>(3, 10);
  Refusal why{};
  auto a = limits->admit(make_address("127.0.0.1"), false, why);
  auto b = limits->admit(make_address("10.0.0.1"), true, why);
  auto c = limits->admit(make_address("10.0.0.2"), false, why);
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(limits->admit(make_address("10.0.0.3"), false, why));
  EXPECT_EQ(why, Refusal::total);
  b.reset();
  EXPECT_TRUE(limits->admit(make_address("10.0.0.3"), false, why));
}

TEST(ConnectionLimits, LoopbackAndExemptPeersAreNotCappedPerAddress) {
  auto limits = std::make_shared<ConnectionLimits>(100, 1);
  Refusal why{};
  std::vector<ConnectionLimits::Ticket> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(limits->admit(make_address("127.0.0.1"), false, why));
    held.push_back(limits->admit(make_address("::1"), false, why));
    held.push_back(limits->admit(make_address("192.0.2.9"), true, why));
  }
  for (const auto& t : held) EXPECT_TRUE(t);
  EXPECT_EQ(limits->open(), 15u);
}

TEST(ConnectionLimits, AMappedIpv4ClientCountsAsItsIpv4Address) {
  auto limits = std::make_shared<ConnectionLimits>(100, 1);
  Refusal why{};
  auto a = limits->admit(make_address("203.0.113.7"), false, why);
  ASSERT_TRUE(a);
  EXPECT_FALSE(limits->admit(make_address("::ffff:203.0.113.7"), false, why));
  // ... and a mapped loopback is loopback.
  EXPECT_TRUE(limits->admit(make_address("::ffff:127.0.0.1"), false, why));
  EXPECT_TRUE(limits->admit(make_address("::ffff:127.0.0.1"), false, why));
}

TEST(ConnectionLimits, TheTotalCapLeavesDescriptorsForEverythingElse) {
  EXPECT_EQ(ConnectionLimits::affordable(19000, 20000, 1024), 18976u);
  EXPECT_EQ(ConnectionLimits::affordable(500, 20000, 1024), 500u);
  EXPECT_EQ(ConnectionLimits::affordable(19000, 1024, 1024), 1u);
}

}  // namespace
}  // namespace imd::net
