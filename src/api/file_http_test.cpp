#include "api/file_http.hpp"

#include <gtest/gtest.h>

namespace imd::api {
namespace {

TEST(ParseRange, OneByteRangeOfEachForm) {
  auto r = parse_range("bytes=0-99", 1000);
  EXPECT_EQ(r.kind, RangeAsked::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 99u);
  r = parse_range("bytes=900-", 1000);
  EXPECT_EQ(r.first, 900u);
  EXPECT_EQ(r.last, 999u);
  r = parse_range("bytes=-10", 1000);
  EXPECT_EQ(r.first, 990u);
  EXPECT_EQ(r.last, 999u);
  r = parse_range("bytes=-5000", 1000);  // more than there is: all of it
  EXPECT_EQ(r.first, 0u);
  r = parse_range("bytes=990-5000", 1000);  // the end is clamped
  EXPECT_EQ(r.last, 999u);
}

TEST(ParseRange, UnsatisfiableAndIgnored) {
  EXPECT_EQ(parse_range("bytes=1000-", 1000).kind, RangeAsked::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 1000).kind, RangeAsked::unsatisfiable);
  for (const char* ignored : {"items=0-1", "bytes=5-1", "bytes=a-b", "bytes=0-1,3-4",
                              "bytes=", "bytes=-", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(parse_range(ignored, 1000).kind, RangeAsked::whole) << ignored;
  }
}

TEST(ContentDisposition, QuotedFallbackAndEncodedName) {
  EXPECT_EQ(content_disposition(true, "a b.png"),
            "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png");
  EXPECT_EQ(content_disposition(false, "\xE6\xB6\x88.txt"),
            "attachment; filename=\"___.txt\"; filename*=UTF-8''%E6%B6%88.txt");
}

TEST(EtagMatches, ListsStarAndWeakTags) {
  EXPECT_TRUE(etag_matches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(etag_matches("\"x\", W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(etag_matches("*", "\"abc\""));
  EXPECT_FALSE(etag_matches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(etag_matches("abc", "\"abc\""));
}

}  // namespace
}  // namespace imd::api
