#include "common/json_writer.hpp"

#include <gtest/gtest.h>

#include <charconv>
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

TEST(JsonWriter, EveryAsciiByteAtEveryPositionOfALongString) {
  // The scan looks at 8 bytes at a time: put each byte that may need escaping at each offset
  // of a word, in strings longer than one word, with UTF-8 around it.
  const std::string base = "abcdefghijklmnopqrstuvwxyz0123456789-é日😀";
  for (int c = 0; c < 0x80; ++c) {
    for (std::size_t at = 0; at <= base.size(); ++at) {
      std::string s = base;
      s.insert(at, 1, static_cast<char>(c));
      std::string out = "x";
      append_string(out, s);
      EXPECT_EQ(out, "x" + bj::serialize(bj::value(s))) << c << " at " << at;
    }
  }
}

TEST(JsonWriter, NumbersAreWrittenAsToCharsWritesThem) {
  std::vector<std::uint64_t> values = {0, 1, 9, 10, 11, 99, 100, 101, UINT64_MAX, UINT64_MAX - 1};
  for (std::uint64_t p = 10; p <= UINT64_MAX / 10; p *= 10) {
    values.insert(values.end(), {p - 1, p, p + 1, p * 10 - 1});
  }
  for (int bit = 0; bit < 64; ++bit) {
    const std::uint64_t b = 1ull << bit;
    values.insert(values.end(), {b - 1, b, b + 1});
  }
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) values.push_back(rng() >> (rng() % 64));
  for (std::uint64_t v : values) {
    char expect[24];
    auto [end, ec] = std::to_chars(expect, expect + sizeof expect, v);
    char got[put::kUintBound];
    EXPECT_EQ(std::string_view(got, put::uint(got, v)), std::string_view(expect, end)) << v;
    const auto s = static_cast<std::int64_t>(v);
    auto [send, sec] = std::to_chars(expect, expect + sizeof expect, s);
    char sgot[put::kSintBound];
    EXPECT_EQ(std::string_view(sgot, put::sint(sgot, s)), std::string_view(expect, send)) << s;
  }
  std::string out;
  Writer(out).begin_array().uint(0).sint(INT64_MIN).id(42).end_array();
  EXPECT_EQ(out, "[0,-9223372036854775808,\"42\"]");
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
