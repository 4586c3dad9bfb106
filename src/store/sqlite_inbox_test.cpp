#include "store/sqlite_inbox.hpp"

#include <gtest/gtest.h>

#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::dm_msg;
using testing::make_user;
using testing::open_db;
using testing::TempDir;

// The inbox references stored messages, so each test stores its DMs through the store first,
// as the messaging pipeline does.
class SqliteInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Id u = 1; u <= 4; ++u) {
      ASSERT_TRUE(store_.create_user(make_user(u, "u" + std::to_string(u)), "h").ok());
    }
  }

  // Stores the DMs and returns the inbox items for their recipients.
  std::vector<InboxItem> send(const std::vector<NewMessage>& batch) {
    auto r = store_.append_messages(batch);
    EXPECT_TRUE(r.ok());
    std::vector<InboxItem> items;
    if (!r.ok()) return items;
    for (auto& a : *r) {
      EXPECT_TRUE(a.ok());
      if (a.ok()) items.push_back(InboxItem{.user_id = a->msg.to, .msg = a->msg});
    }
    return items;
  }

  std::vector<std::pair<Id, std::uint64_t>> listed(Id user, std::optional<InboxCursor> after = {},
                                                   std::uint32_t limit = 100) {
    auto r = inbox_.list(user, after, limit);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<std::pair<Id, std::uint64_t>> out;  // (message id, seq)
    if (r.ok()) {
      for (const Message& m : *r) out.emplace_back(m.id, m.seq);
    }
    return out;
  }

  using V = std::vector<std::pair<Id, std::uint64_t>>;

  TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_ = open_db(dir_.file("imd.db"));
  SqliteStore store_{db_};
  SqliteInbox inbox_{db_};
};

TEST_F(SqliteInboxTest, PushListAck) {
  auto items = send({dm_msg(10, 1, 2, "a", "one"), dm_msg(11, 1, 2, "b", "two"),
                     dm_msg(12, 3, 2, "c"), dm_msg(13, 2, 1, "d")});
  ASSERT_TRUE(inbox_.push(items).ok());

  // Ordered by conversation (user_a, user_b), then seq.
  EXPECT_EQ(listed(2), (V{{10, 1}, {11, 2}, {12, 1}}));
  EXPECT_EQ(listed(1), (V{{13, 3}}));
  EXPECT_TRUE(listed(4).empty());

  auto full = inbox_.list(2, std::nullopt, 1);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  const Message& m = (*full)[0];
  EXPECT_EQ(m.conv, ConvKey::dm(1, 2));
  EXPECT_EQ(m.from, 1u);
  EXPECT_EQ(m.to, 2u);
  EXPECT_EQ(m.body, "one");
  EXPECT_EQ(m.type, "text");
  EXPECT_EQ(m.cid, "a");
  EXPECT_EQ(m.created_at, 5010);

  ASSERT_TRUE(inbox_.ack(2, ConvKey::dm(1, 2), 1).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}, {12, 1}}));
  // Acking another conversation or another user's entries leaves these alone.
  ASSERT_TRUE(inbox_.ack(2, ConvKey::dm(2, 3), 0).ok());
  ASSERT_TRUE(inbox_.ack(1, ConvKey::dm(1, 2), 99).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}, {12, 1}}));
  EXPECT_TRUE(listed(1).empty());
  ASSERT_TRUE(inbox_.ack(2, ConvKey::dm(3, 2), ~0ull).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}}));
  ASSERT_TRUE(inbox_.ack(2, ConvKey::channel(7), 5).ok());  // nothing there: a no-op
}

TEST_F(SqliteInboxTest, PushIsIdempotent) {
  auto items = send({dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b")});
  ASSERT_TRUE(inbox_.push(items).ok());
  ASSERT_TRUE(inbox_.push(items).ok());
  std::vector<InboxItem> twice = {items[0], items[0]};
  ASSERT_TRUE(inbox_.push(twice).ok());
  EXPECT_EQ(listed(2), (V{{10, 1}, {11, 2}}));
  ASSERT_TRUE(inbox_.push({}).ok());
}

TEST_F(SqliteInboxTest, RepeatedPushDoesNotResurrectAckedEntries) {
  auto items = send({dm_msg(10, 1, 2, "a"), dm_msg(11, 1, 2, "b")});
  ASSERT_TRUE(inbox_.push(items).ok());
  // The recipient ACKs seq 1 (cursor first, as MessagingService::ack does), then a retried
  // send pushes both entries again: only the unacked one may stay.
  ASSERT_TRUE(store_.advance_delivery(2, ConvKey::dm(1, 2), 1).ok());
  ASSERT_TRUE(inbox_.ack(2, ConvKey::dm(1, 2), 1).ok());
  ASSERT_TRUE(inbox_.push(items).ok());
  EXPECT_EQ(listed(2), (V{{11, 2}}));
}

TEST_F(SqliteInboxTest, PagesWithACursor) {
  std::vector<NewMessage> batch;
  Id id = 100;
  for (int i = 0; i < 3; ++i) batch.push_back(dm_msg(id++, 1, 4, "x" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) batch.push_back(dm_msg(id++, 3, 4, "y" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) batch.push_back(dm_msg(id++, 2, 4, "z" + std::to_string(i)));
  ASSERT_TRUE(inbox_.push(send(batch)).ok());

  // Conversations in (a, b) order: (1,4), (2,4), (3,4).
  const V all = {{100, 1}, {101, 2}, {102, 3}, {106, 1}, {107, 2}, {103, 1}, {104, 2}, {105, 3}};
  EXPECT_EQ(listed(4), all);
  V paged;
  std::optional<InboxCursor> after;
  for (;;) {
    auto page = inbox_.list(4, after, 3);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    EXPECT_LE(page->size(), 3u);
    for (const Message& m : *page) paged.emplace_back(m.id, m.seq);
    after = InboxCursor{.conv = page->back().conv, .seq = page->back().seq};
  }
  EXPECT_EQ(paged, all);
  EXPECT_EQ(listed(4, InboxCursor{ConvKey::dm(2, 4), 1}),
            (V{{107, 2}, {103, 1}, {104, 2}, {105, 3}}));
  EXPECT_TRUE(listed(4, InboxCursor{ConvKey::dm(3, 4), 3}).empty());
  EXPECT_TRUE(listed(4, std::nullopt, 0).empty());
}

// The entries are the stored DMs above the recipient's delivery cursor: storing is the push,
// in the same transaction, and the recipient's own sends never appear.
TEST_F(SqliteInboxTest, AStoredDmIsInTheRecipientsInboxWithoutAPush) {
  send({dm_msg(10, 1, 2, "a"), dm_msg(11, 2, 1, "b"), dm_msg(12, 1, 2, "c")});
  EXPECT_EQ(listed(2), (V{{10, 1}, {12, 3}}));
  EXPECT_EQ(listed(1), (V{{11, 2}}));
  // The Store's delivery cursor is what removes entries (the messaging path moves it first).
  ASSERT_TRUE(store_.advance_delivery(2, ConvKey::dm(1, 2), 2).ok());
  EXPECT_EQ(listed(2), (V{{12, 3}}));
  // An ACK past the conversation's last seq stops at it: later DMs still arrive.
  ASSERT_TRUE(inbox_.ack(1, ConvKey::dm(1, 2), 1000).ok());
  EXPECT_TRUE(listed(1).empty());
  send({dm_msg(13, 2, 1, "d")});
  EXPECT_EQ(listed(1), (V{{13, 4}}));
  // Acking a conversation one is not part of changes nothing.
  ASSERT_TRUE(inbox_.ack(4, ConvKey::dm(1, 2), 1000).ok());
  EXPECT_EQ(listed(2), (V{{12, 3}}));
}

TEST_F(SqliteInboxTest, TheOldInboxTableIsGone) {
  auto r = db_->read([](SqliteConnection& c) -> Result<bool> {
    auto s = c.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'inbox'");
    if (!s.ok()) return s.error();
    return s->step();
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(*r);
}

TEST_F(SqliteInboxTest, ChannelMessagesAreRejected) {
  Message m;
  m.id = 1;
  m.conv = ConvKey::channel(5);
  m.seq = 1;
  m.from = 1;
  std::vector<InboxItem> items = {InboxItem{.user_id = 2, .msg = m}};
  auto r = inbox_.push(items);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace imd
