#include "common/forwarded.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace imd {
namespace {

TEST(TrustedProxies, UntrustedPeersSpeakOnlyForThemselves) {
  TrustedProxies none("");
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.client_ip("203.0.113.7", "198.51.100.1"), "203.0.113.7");
  TrustedProxies lb("10.0.0.1");
  EXPECT_EQ(lb.client_ip("203.0.113.7", "198.51.100.1"), "203.0.113.7");
}

TEST(TrustedProxies, TheFirstUntrustedHopFromTheRightIsTheClient) {
  TrustedProxies lb("10.0.0.1, 10.0.0.2 ,::1");
  EXPECT_EQ(lb.client_ip("10.0.0.1", "198.51.100.1"), "198.51.100.1");
  // The client forged a left-most entry; the proxies appended what they saw.
  EXPECT_EQ(lb.client_ip("10.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.2"), "198.51.100.1");
  EXPECT_EQ(lb.client_ip("::1", "2001:db8::7"), "2001:db8::7");
  EXPECT_EQ(lb.client_ip("0:0:0:0:0:0:0:1", "2001:DB8:0::7"), "2001:db8::7");
  // No header, or only trusted hops: the last trusted address.
  EXPECT_EQ(lb.client_ip("10.0.0.1", ""), "10.0.0.1");
  EXPECT_EQ(lb.client_ip("10.0.0.1", "10.0.0.2"), "10.0.0.2");
}

TEST(TrustedProxies, MalformedEntriesStopTheWalk) {
  TrustedProxies lb("10.0.0.1,10.0.0.2");
  EXPECT_EQ(lb.client_ip("10.0.0.1", "198.51.100.1, garbage"), "10.0.0.1");
  EXPECT_EQ(lb.client_ip("10.0.0.1", "198.51.100.1, 10.0.0.2, unknown"), "10.0.0.1");
  EXPECT_EQ(lb.client_ip("10.0.0.1", "x, 10.0.0.2"), "10.0.0.2");
  EXPECT_EQ(lb.client_ip("10.0.0.1", std::string(200, '9')), "10.0.0.1");
  EXPECT_EQ(lb.client_ip("10.0.0.1", ",,,"), "10.0.0.1");
  EXPECT_THROW(TrustedProxies("10.0.0.1,nonsense"), std::invalid_argument);
}

}  // namespace
}  // namespace imd
