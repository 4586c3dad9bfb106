#include "domain/search_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace imd {
namespace {

using Terms = std::vector<std::string>;

TEST(SearchTerms, WordsSplitOnWhitespaceAndPhrasesStayWhole) {
  auto t = parse_search_terms("  launch  \"release plan\"\tQ3 ");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, (Terms{"launch", "release plan", "Q3"}));
}

TEST(SearchTerms, QuerySyntaxOfTheEngineIsLiteralText) {
  auto t = parse_search_terms("a OR b* NEAR(c) col:d ^e -f");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (Terms{"a", "OR", "b*", "NEAR(c)", "col:d", "^e", "-f"}));
}

TEST(SearchTerms, CjkTextIsOneTerm) {
  auto t = parse_search_terms("消息");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (Terms{"消息"}));
}

TEST(SearchTerms, BadInputIsInvalidArgumentWithAReason) {
  auto expect_bad = [](std::string_view q, std::string_view says) {
    auto t = parse_search_terms(q);
    ASSERT_FALSE(t.ok()) << q;
    EXPECT_EQ(t.error().code, Errc::invalid_argument);
    EXPECT_NE(t.error().message.find(says), std::string::npos) << t.error().message;
  };
  expect_bad("\"unbalanced phrase", "unbalanced");
  expect_bad("   ", "word");
  expect_bad("\"\"", "word");
  expect_bad(std::string(257, 'a'), "longer than 256");
  expect_bad("bad\x01text", "control");
  expect_bad("\xff\xfe", "UTF-8");
  std::string many;
  for (int i = 0; i < 17; ++i) many += "w" + std::to_string(i) + " ";
  expect_bad(many, "more than 16 terms");
}

TEST(SearchTerms, TheLengthLimitCountsCharactersNotBytes) {
  std::string q;
  for (int i = 0; i < 256; ++i) q += "消";  // 768 bytes, 256 characters
  EXPECT_TRUE(parse_search_terms(q).ok());
  EXPECT_FALSE(parse_search_terms(q + "息").ok());
}

TEST(SearchSnippet, MarksEveryOccurrenceCaseInsensitively) {
  Snippet s = make_snippet("Deploy at noon; deploy again", {"DEPLOY"});
  EXPECT_EQ(s.text, "Deploy at noon; deploy again");
  ASSERT_EQ(s.marks.size(), 2u);
  EXPECT_EQ(s.marks[0], (std::pair<std::size_t, std::size_t>{0, 6}));
  EXPECT_EQ(s.marks[1], (std::pair<std::size_t, std::size_t>{16, 6}));
}

TEST(SearchSnippet, OffsetsAreUtf16UnitsAndOverlapsMerge) {
  // 离线 are one UTF-16 unit each; the emoji is two.
  Snippet s = make_snippet("\xF0\x9F\x98\x80离线消息缓存", {"消息", "息缓"});
  ASSERT_EQ(s.marks.size(), 1u);
  EXPECT_EQ(s.marks[0], (std::pair<std::size_t, std::size_t>{4, 3}));
}

TEST(SearchSnippet, ALongBodyIsCutAroundTheFirstMatch) {
  std::string body = std::string(500, 'x') + " needle " + std::string(500, 'y');
  Snippet s = make_snippet(body, {"needle"}, 40);
  EXPECT_LE(s.text.size(), 40u + 2 * 3);
  EXPECT_EQ(s.text.substr(0, 3), "\xE2\x80\xA6");
  EXPECT_EQ(s.text.substr(s.text.size() - 3), "\xE2\x80\xA6");
  ASSERT_EQ(s.marks.size(), 1u);
  // ellipsis (1) + the 10 characters kept before the match
  EXPECT_EQ(s.marks[0].first, 1u + 10u);
  EXPECT_EQ(s.marks[0].second, 6u);
}

TEST(SearchSnippet, NoMatchKeepsTheStart) {
  Snippet s = make_snippet("short text", {"absent"});
  EXPECT_EQ(s.text, "short text");
  EXPECT_TRUE(s.marks.empty());
}

}  // namespace
}  // namespace imd
