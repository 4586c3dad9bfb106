#include "scan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace imbench {

TEST(Scan, MessageFrame) {
  std::string_view f = R"({"id":"38","conversation":"dm:12","seq":7,"from":"12","type":"text",)"
                       R"("body":"3:41:xx \"seq\":99","created_at":1,"to":"13","op":"msg"})";
  EXPECT_EQ(scan::op(f), "msg");
  EXPECT_EQ(scan::str(f, "\"conversation\":"), "dm:12");
  std::uint64_t seq = 0;
  ASSERT_TRUE(scan::num(f, "\"seq\":", seq));
  EXPECT_EQ(seq, 7u);
  EXPECT_EQ(scan::str(f, "\"body\":").substr(0, 5), "3:41:");
}

TEST(Scan, CursorReadsKeysInOrderAndFallsBackToTheStart) {
  std::string_view f = R"({"id":"38","conversation":"dm:12","seq":7,"from":"12","type":"text",)"
                       R"("body":"3:41:xx","created_at":1,"to":"13","op":"msg"})";
  scan::Cursor in_order(f);
  EXPECT_EQ(in_order.str("\"conversation\":"), "dm:12");
  std::uint64_t seq = 0;
  ASSERT_TRUE(in_order.num("\"seq\":", seq));
  EXPECT_EQ(seq, 7u);
  EXPECT_EQ(in_order.str("\"body\":"), "3:41:xx");
  // Out of order: found by searching from the start again.
  scan::Cursor back(f);
  EXPECT_EQ(back.str("\"body\":"), "3:41:xx");
  EXPECT_EQ(back.str("\"conversation\":"), "dm:12");
  EXPECT_TRUE(back.str("\"missing\":").empty());
}

TEST(Scan, OpFirstFrames) {
  std::string_view sent = R"({"op":"sent","cid":"2.15","id":"9","seq":3,"conversation":"dm:5"})";
  EXPECT_EQ(scan::op(sent), "sent");
  EXPECT_EQ(scan::str(sent, "\"cid\":"), "2.15");
  std::string_view hello = R"({"op":"hello","session":"1","user":"2","heartbeat_s":30})";
  std::uint64_t hb = 0;
  EXPECT_EQ(scan::op(hello), "hello");
  ASSERT_TRUE(scan::num(hello, "\"heartbeat_s\":", hb));
  EXPECT_EQ(hb, 30u);
}

TEST(Scan, MissingFields) {
  std::string_view f = R"({"op":"pong"})";
  std::uint64_t v = 5;
  EXPECT_FALSE(scan::num(f, "\"seq\":", v));
  EXPECT_TRUE(scan::str(f, "\"cid\":").empty());
  EXPECT_EQ(scan::op("{}"), "");
}

TEST(Scan, BatchFrames) {
  std::string_view b = R"({"op":"batch","frames":[{"op":"sent","cid":"1.2","seq":3},)"
                       R"({"id":"1","body":"a},{\"]","seq":4,"op":"msg"},{"op":"pong"}]})";
  std::vector<std::string> got;
  EXPECT_EQ(scan::op(b), "batch");
  EXPECT_EQ(scan::each_in_batch(b, [&](std::string_view f) { got.emplace_back(f); }), 3u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(scan::op(got[0]), "sent");
  EXPECT_EQ(scan::op(got[1]), "msg");
  EXPECT_EQ(scan::str(got[1], "\"body\":"), "a},{\\");
  EXPECT_EQ(got[2], R"({"op":"pong"})");
}

}  // namespace imbench
