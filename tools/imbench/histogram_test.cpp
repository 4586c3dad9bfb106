#include "histogram.hpp"

#include <gtest/gtest.h>

namespace imbench {

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(0.50), 50u);
  EXPECT_EQ(h.percentile(0.99), 99u);
  EXPECT_EQ(h.percentile(1.0), 100u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(Histogram, LargeValuesWithinOnePercent) {
  for (std::uint64_t v : {300ull, 1000ull, 12345ull, 50000ull, 999999ull, 123456789ull}) {
    Histogram h;
    h.record(v);
    h.record(v * 3);  // the max clamps only the top bucket
    std::uint64_t p = h.percentile(0.5);
    EXPECT_GE(p, v);
    EXPECT_LE(static_cast<double>(p), static_cast<double>(v) * 1.008) << v;
  }
}

TEST(Histogram, BucketsAreMonotonic) {
  std::size_t last = 0;
  for (std::uint64_t v = 0; v < 1'000'000; v += 7) {
    std::size_t i = Histogram::index(v);
    ASSERT_GE(i, last);
    ASSERT_GE(Histogram::upper(i), v);
    last = i;
  }
}

TEST(Histogram, MergeAddsCounts) {
  Histogram a, b;
  for (int i = 0; i < 90; ++i) a.record(10);
  for (int i = 0; i < 10; ++i) b.record(5000);
  a.merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.percentile(0.90), 10u);
  EXPECT_GE(a.percentile(0.95), 5000u);
  EXPECT_EQ(a.max(), 5000u);
}

}  // namespace imbench
