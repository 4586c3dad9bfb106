#include "routes/memory_routes.hpp"

#include <gtest/gtest.h>

namespace imd {
namespace {

TEST(MemoryRoutes, ManyDevicesPerUser) {
  MemoryRoutes r;
  r.add(1, {0, 10});
  r.add(1, {0, 11});
  r.add(2, {0, 20});
  EXPECT_EQ(r.lookup(1).size(), 2u);
  r.remove(1, {0, 10});
  ASSERT_EQ(r.lookup(1).size(), 1u);
  EXPECT_EQ(r.lookup(1)[0].conn, 11u);
  r.remove(1, {0, 11});
  EXPECT_TRUE(r.lookup(1).empty());
  r.remove(3, {0, 1});  // unknown: no effect
  std::vector<Id> users{1, 2, 3};
  int seen = 0;
  EXPECT_TRUE(r.lookup_many(users, [&](Id u, ConnRef c) {
    EXPECT_EQ(u, 2u);
    EXPECT_EQ(c.conn, 20u);
    ++seen;
  }));
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace imd
