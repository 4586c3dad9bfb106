// Unit tests of the registry's pure pieces: rendezvous assignment, the NodeInfo encoding (with
// hostile input) and the standalone StaticRegistry.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

#include "registry/node_codec.hpp"
#include "registry/rendezvous.hpp"
#include "registry/static_registry.hpp"

namespace imd {
namespace {

TEST(RendezvousUnit, EveryPartitionHasExactlyOneOwner) {
  const std::vector<std::uint32_t> nodes = {3, 17, 1023};
  std::map<std::uint32_t, int> owners;
  for (auto n : nodes) {
    for (auto p : rendezvous_share(n, 64, nodes)) owners[p]++;
  }
  ASSERT_EQ(owners.size(), 64u);
  for (const auto& [p, c] : owners) EXPECT_EQ(c, 1) << "partition " << p;
}

TEST(RendezvousUnit, SameAnswerWhateverTheOrderAndDuplicates) {
  for (std::uint32_t p = 0; p < 100; ++p) {
    EXPECT_EQ(rendezvous_owner(p, {1, 2, 3}), rendezvous_owner(p, {3, 1, 2, 2, 1}));
  }
}

TEST(RendezvousUnit, SelfCountsEvenWhenNotListed) {
  EXPECT_EQ(rendezvous_share(5, 8, {}).size(), 8u);
  EXPECT_EQ(rendezvous_share(5, 8, {5}), rendezvous_share(5, 8, {}));
  EXPECT_TRUE(rendezvous_share(5, 0, {1, 2}).empty());
}

TEST(RendezvousUnit, OnlyTheLeaversPartitionsMove) {
  const std::vector<std::uint32_t> before = {1, 2, 3, 4};
  const std::vector<std::uint32_t> after = {1, 2, 4};  // 3 left
  for (std::uint32_t p = 0; p < 256; ++p) {
    const auto was = rendezvous_owner(p, before);
    const auto now = rendezvous_owner(p, after);
    if (was != 3) {
      EXPECT_EQ(was, now) << "partition " << p << " moved needlessly";
    }
  }
}

TEST(RendezvousUnit, AJoinerTakesOnlyFromOthersWhatItWins) {
  const std::vector<std::uint32_t> before = {10, 20};
  const std::vector<std::uint32_t> after = {10, 20, 30};
  for (std::uint32_t p = 0; p < 256; ++p) {
    const auto now = rendezvous_owner(p, after);
    if (now != 30) {
      EXPECT_EQ(rendezvous_owner(p, before), now);
    }
  }
}

TEST(RendezvousUnit, RoughlyFairOnAverage) {
  // 3 nodes, 16 partitions, many random id sets: on average 16/3 each, and a node with no
  // partition at all is rare.
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::uint32_t> id(0, 1023);
  int empty = 0, trials = 2000;
  double total_max = 0;
  for (int t = 0; t < trials; ++t) {
    std::set<std::uint32_t> ids;
    while (ids.size() < 3) ids.insert(id(rng));
    std::vector<std::uint32_t> v(ids.begin(), ids.end());
    std::size_t mx = 0;
    for (auto n : v) {
      auto s = rendezvous_share(n, 16, v).size();
      if (s == 0) ++empty;
      mx = std::max(mx, s);
    }
    total_max += static_cast<double>(mx);
  }
  EXPECT_LT(total_max / trials, 8.5);      // the largest share, on average
  EXPECT_LT(empty, trials * 3 * 2 / 100);  // < 2% of nodes get nothing
}

TEST(RendezvousUnit, WeightsDifferPerPair) {
  std::set<std::uint64_t> seen;
  for (std::uint32_t n = 0; n < 32; ++n) {
    for (std::uint32_t p = 0; p < 32; ++p) seen.insert(rendezvous_weight(n, p));
  }
  EXPECT_EQ(seen.size(), 32u * 32u);
}

TEST(NodeCodecUnit, RoundTrip) {
  NodeInfo n{7, {"gateway", "logic"}, "10.0.0.5:7001", ""};
  auto d = decode_node(encode_node(n));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, n);
  NodeInfo empty{0, {}, "", ""};
  auto e = decode_node(encode_node(empty));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, empty);
  NodeInfo big{4294967295u, {"api"}, "[::1]:1", ""};
  auto b = decode_node(encode_node(big));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, big);
}

TEST(NodeCodecUnit, RejectsHostileInput) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      "null",
      "{}",                    // no id
      R"({"id":-1})",          // negative
      R"({"id":4294967296})",  // above 2^32
      R"({"id":1.5})",         // not an integer
      R"({"id":"x"})",
      R"({"id":1,"roles":"gateway"})",                              // not a list
      R"({"id":1,"roles":[1]})",                                    // not strings
      R"({"id":1,"roles":[""]})",                                   // empty role
      R"({"id":1,"roles":["a","b","c","d","e","f","g","h","i"]})",  // too many
      R"({"id":1,"push_address":7})",
      R"({"id":1,"extra":true})",        // unknown field
      R"({"id":1,"roles":["gateway"])",  // truncated
      std::string(R"({"id":1,"roles":[")") + std::string(40, 'r') + R"("]})",
      std::string(R"({"id":1,"push_address":")") + std::string(300, 'a') + R"("})",
      std::string(R"({"id":1,"push_address":")") + std::string(5000, 'a') + R"("})",
      std::string(10000, '['),
      std::string("{\"id\":1,\"push_address\":\"\xff\xfe\"}"),  // not UTF-8
  };
  for (const auto& s : bad) {
    auto r = decode_node(s);
    EXPECT_FALSE(r.ok()) << "accepted: " << s.substr(0, 80);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::invalid_argument);
    }
  }
}

TEST(NodeCodecUnit, RegistryIds) {
  EXPECT_EQ(parse_registry_id("0"), 0u);
  EXPECT_EQ(parse_registry_id("1023"), 1023u);
  EXPECT_EQ(parse_registry_id("4294967295"), 4294967295u);
  for (const char* s :
       {"", "-1", "+1", "01", " 1", "1 ", "4294967296", "99999999999", "1a", "0x10"}) {
    EXPECT_FALSE(parse_registry_id(s).has_value()) << s;
  }
}

TEST(StaticRegistryUnit, OneNodeOwnsEverything) {
  StaticRegistry reg(5);
  bool lost = false;
  auto id =
      reg.start(NodeInfo{0, {"gateway", "logic"}, "127.0.0.1:1", ""}, 1023, [&] { lost = true; });
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 5u);
  ASSERT_TRUE(reg.node(5).has_value());
  EXPECT_EQ(reg.node(5)->id, 5u);
  EXPECT_EQ(reg.node(5)->push_address, "127.0.0.1:1");
  EXPECT_FALSE(reg.node(4).has_value());
  ASSERT_EQ(reg.nodes().size(), 1u);

  ASSERT_TRUE(reg.announce(NodeInfo{99, {"gateway"}, "127.0.0.1:2", ""}).ok());
  EXPECT_EQ(reg.node(5)->push_address, "127.0.0.1:2");
  EXPECT_FALSE(reg.node(99).has_value());

  std::vector<std::vector<std::uint32_t>> calls;
  reg.own_partitions(4, [&](std::vector<std::uint32_t> owned) { calls.push_back(owned); });
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<std::uint32_t>{0, 1, 2, 3}));
  reg.own_partitions(4, [&](std::vector<std::uint32_t> owned) { calls.push_back(owned); });
  EXPECT_EQ(calls.size(), 1u);  // once only

  reg.stop();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].empty());
  EXPECT_TRUE(reg.nodes().empty());
  reg.stop();
  EXPECT_EQ(calls.size(), 2u);
  EXPECT_FALSE(lost);
}

TEST(StaticRegistryUnit, IdAboveTheMaximumIsRefused) {
  StaticRegistry reg(1024);
  auto id = reg.start(NodeInfo{}, 1023, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, Errc::invalid_argument);
  EXPECT_FALSE(reg.announce(NodeInfo{}).ok());
}

}  // namespace
}  // namespace imd
