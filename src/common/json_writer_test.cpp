#include "common/json_writer.hpp"

#include <gtest/gtest.h>

#include <random>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace imd::json {
namespace {

namespace bj = boost::json;

TEST(JsonWriter, StringsAreEscapedExactlyAsBoostJsonDoes) {
  std::mt19937 rng(7);
  // Every byte below 0x80, then random mixes with quotes, backslashes and UTF-8 sequences.
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  std::vector<std::string> cases = {"", "plain", all, "é ü 日本 😀", "\"\\\"\\"};
  const std::string pieces[] = {"a", "\"", "\\", "\n", "\x01", "\x1f", "é", "😀", "/", "\x7f"};
  for (int i = 0; i < 500; ++i) {
    std::string s;
    for (int j = rng() % 20; j > 0; --j) s += pieces[rng() % std::size(pieces)];
    cases.push_back(s);
  }
  for (const auto& s : cases) {
    std::string out;
    append_string(out, s);
    EXPECT_EQ(out, bj::serialize(bj::value(s))) << s;
    EXPECT_EQ(bj::parse(out).as_string(), s);
  }
}

TEST(JsonWriter, NestedObjectsAndArraysSerializeLikeTheDom) {
  std::string out;
  Writer w(out);
  w.begin_object();
  w.key("op").string("msg");
  w.key("id").id(18446744073709551615ull);
  w.key("seq").uint(0);
  w.key("t").sint(-5);
  w.key("list").begin_array();
  w.begin_object().key("a").uint(1).end_object();
  w.begin_object().end_object();
  w.uint(3);
  w.end_array();
  w.key("raw").raw(R"({"x":[1,2]})");
  w.key("empty").begin_array().end_array();
  w.end_object();
  bj::object expect{{"op", "msg"},
                    {"id", "18446744073709551615"},
                    {"seq", 0},
                    {"t", -5},
                    {"list", bj::array{bj::object{{"a", 1}}, bj::object{}, 3}},
                    {"raw", bj::object{{"x", bj::array{1, 2}}}},
                    {"empty", bj::array{}}};
  EXPECT_EQ(out, bj::serialize(expect));
}

}  // namespace
}  // namespace imd::json
