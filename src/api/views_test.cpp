#include "api/views.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace imd::api {
namespace {

TEST(Views, ConversationNamesAreFromTheViewersSide) {
  EXPECT_EQ(conversation_name(ConvKey::channel(42), 1), "channel:42");
  EXPECT_EQ(conversation_name(ConvKey::dm(5, 9), 5), "dm:9");
  EXPECT_EQ(conversation_name(ConvKey::dm(5, 9), 9), "dm:5");
  EXPECT_EQ(*parse_conversation("dm:9", 5), ConvKey::dm(5, 9));
  EXPECT_EQ(*parse_conversation("channel:42", 5), ConvKey::channel(42));
  for (const char* bad : {"", "dm", "dm:", "dm:5", "dm:-1", "dm:x", "group:1", "channel:0",
                          "channel:99999999999999999999999", "channel:1 "}) {
    EXPECT_FALSE(parse_conversation(bad, 5)) << bad;
  }
}

TEST(Views, MessagesCarryStringIdsAndTheCidOnlyForTheSender) {
  Message m;
  m.id = 1ull << 62;
  m.conv = ConvKey::dm(5, 9);
  m.seq = 3;
  m.from = 5;
  m.to = 9;
  m.type = "text";
  m.body = "hi";
  m.cid = "c1";
  auto for_sender = message_json(m, 5);
  EXPECT_EQ(for_sender.at("id").as_string(), "4611686018427387904");
  EXPECT_EQ(for_sender.at("conversation").as_string(), "dm:9");
  EXPECT_EQ(for_sender.at("cid").as_string(), "c1");
  auto for_peer = message_json(m, 9);
  EXPECT_EQ(for_peer.at("conversation").as_string(), "dm:5");
  EXPECT_FALSE(for_peer.contains("cid"));
  EXPECT_EQ(for_peer.at("to").as_string(), "9");
}

TEST(Views, UnreadIsLastMinusRead) {
  ConversationState c;
  c.conv = ConvKey::channel(1);
  c.last_seq = 10;
  c.read_seq = 4;
  EXPECT_EQ(unread_of(c), 6u);
  c.read_seq = 12;  // never negative
  EXPECT_EQ(unread_of(c), 0u);
}

TEST(Views, ErrorsMapToHttpStatusesAndABody) {
  EXPECT_EQ(http_status(Errc::invalid_argument), 400);
  EXPECT_EQ(http_status(Errc::unauthenticated), 401);
  EXPECT_EQ(http_status(Errc::forbidden), 403);
  EXPECT_EQ(http_status(Errc::not_found), 404);
  EXPECT_EQ(http_status(Errc::conflict), 409);
  EXPECT_EQ(http_status(Errc::payload_too_large), 413);
  EXPECT_EQ(http_status(Errc::too_many_requests), 429);
  EXPECT_EQ(http_status(Errc::unavailable), 503);
  EXPECT_EQ(http_status(Errc::internal), 500);
  auto body = boost::json::parse(error_body(make_error(Errc::conflict, "taken")));
  EXPECT_EQ(body.at("error").at("code").as_string(), "conflict");
  EXPECT_EQ(body.at("error").at("message").as_string(), "taken");
}

}  // namespace
}  // namespace imd::api
