#include "wire/views.hpp"
#include "wire/frames.hpp"
#include "wire/http.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace imd::wire {
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

// A changed message: edited_at and rev when edited; a tombstone without its body when deleted.
TEST(Views, ChangedMessagesShowTheirStateAndTombstonesNoBody) {
  Message m;
  m.id = 5;
  m.conv = ConvKey::channel(9);
  m.seq = 3;
  m.from = 1;
  m.type = "text";
  m.body = "edited";
  m.created_at = 100;
  m.edited_at = 200;
  m.rev = 4;
  m.change = Change::edit;
  m.reply_to = 2;
  auto o = message_json(m, 1);
  EXPECT_EQ(o.at("body").as_string(), "edited");
  EXPECT_EQ(o.at("edited_at").as_int64(), 200);
  EXPECT_EQ(o.at("rev").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(o.at("reply_to").as_string(), "2");
  EXPECT_FALSE(o.contains("deleted"));
  m.deleted = true;
  m.body.clear();
  o = message_json(m, 1);
  EXPECT_TRUE(o.at("deleted").as_bool());
  EXPECT_FALSE(o.contains("body"));
  EXPECT_FALSE(o.contains("edited_at"));
  m.deleted = false;
  m.body = "x";
  m.reactions = {Reaction{"ok", {1, 2}}};
  o = message_json(m, 1);
  ASSERT_EQ(o.at("reactions").as_array().size(), 1u);
  EXPECT_EQ(o.at("reactions").as_array()[0].at("count").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("reactions").as_array()[0].at("users").as_array()[1].as_string(), "2");
  Message plain = m;
  plain.reactions.clear();
  plain.deleted = false;
  plain.edited_at = 0;
  plain.rev = 0;
  plain.reply_to = 0;
  o = message_json(plain, 1);
  EXPECT_FALSE(o.contains("rev") || o.contains("edited_at") || o.contains("reply_to"));
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

// The written text is what serializing the same members, in the same order, as a DOM gives.
TEST(Views, WrittenMessagesAreTheDomSerialized) {
  auto dom = [](const Message& m, Id viewer, std::string_view op) {
    boost::json::object o;
    if (!op.empty()) o["op"] = op;
    o["id"] = std::to_string(m.id);
    o["conversation"] = conversation_name(m.conv, viewer);
    o["seq"] = m.seq;
    o["from"] = std::to_string(m.from);
    o["type"] = m.type;
    o["body"] = m.body;
    o["created_at"] = m.created_at;
    if (m.conv.is_channel()) {
      o["channel"] = std::to_string(m.conv.channel_id());
    } else {
      o["to"] = std::to_string(m.to);
    }
    if (viewer == m.from && !m.cid.empty()) o["cid"] = m.cid;
    return boost::json::serialize(o);
  };
  Message dm;
  dm.id = UINT64_MAX;
  dm.conv = ConvKey::dm(5, 9);
  dm.seq = 0;
  dm.from = 5;
  dm.to = 9;
  dm.type = "text";
  dm.body = "line\n\"quoted\" \\ tab\t \x01 é 😀";
  dm.created_at = -1;
  dm.cid = "c\"1";
  Message ch = dm;
  ch.conv = ConvKey::channel(1ull << 62);
  ch.to = 0;
  ch.seq = 123456789;
  ch.created_at = 1764300000123;
  Message big = ch;
  big.body = std::string(5000, '\x1f') + std::string(3000, 'x');  // past any stack buffer
  Message no_cid = ch;
  no_cid.cid.clear();
  for (const Message* m : {&dm, &ch, &big, &no_cid}) {
    for (Id viewer : {Id{5}, Id{9}}) {
      for (std::string_view op : {std::string_view{}, std::string_view{"msg"}}) {
        std::string text;
        json::Writer w(text);
        w.begin_array().uint(1);  // after a sibling: the object must be preceded by a comma
        write_message(w, *m, viewer, op);
        w.end_array();
        EXPECT_EQ(text, "[1," + dom(*m, viewer, op) + "]");
      }
    }
  }
}

}  // namespace
}  // namespace imd::wire

namespace imd::wire {
namespace {

// Engine text and internal errors reach clients as a generic message with a reference; our
// own messages pass unchanged. Retry-After follows the error's retry_after_s.
TEST(ErrorMapping, EngineDetailsStayInTheLog) {
  auto fk =
      make_error(Errc::not_found, "sqlite: INSERT INTO space(...): FOREIGN KEY constraint failed");
  auto body = error_body(fk);
  EXPECT_EQ(body.find("INSERT"), std::string::npos) << body;
  EXPECT_NE(body.find("not found (ref "), std::string::npos) << body;
  auto internal = error_response(make_error(Errc::internal, "dm row missing right after insert"));
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body.find("dm row"), std::string::npos) << internal.body;
  auto own = error_response(make_error(Errc::conflict, "phone already registered"));
  EXPECT_NE(own.body.find("phone already registered"), std::string::npos);
  auto frame =
      error_frame(make_error(Errc::unavailable, "mysql: Lost connection (2013)"), "send", nullptr);
  EXPECT_EQ(frame->find("Lost connection"), std::string::npos) << *frame;

  auto slow = make_error(Errc::too_many_requests, "too many failed logins");
  slow.retry_after_s = 17;
  auto r = error_response(slow);
  ASSERT_EQ(r.status, 429);
  bool found = false;
  for (const auto& [k, v] : r.headers) found = found || (k == "Retry-After" && v == "17");
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace imd::wire
