#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::channel_msg;
using testing::dm_msg;
using testing::make_user;
using testing::open_db;
using testing::TempDir;

HistoryQuery newest(std::uint32_t limit = 50) {
  HistoryQuery q;
  q.limit = limit;
  return q;
}
HistoryQuery before(std::uint64_t seq, std::uint32_t limit = 50) {
  HistoryQuery q = newest(limit);
  q.before_seq = seq;
  return q;
}
HistoryQuery after(std::uint64_t seq, std::uint32_t limit = 50) {
  HistoryQuery q = newest(limit);
  q.after_seq = seq;
  return q;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    db_ = open_db(dir_.file("imd.db"));
    store_ = std::make_unique<SqliteStore>(db_);
  }
  void close() {
    store_.reset();
    db_.reset();
  }

  void add_user(Id id, std::string name) {
    auto r = store_->create_user(make_user(id, std::move(name)), "hash" + std::to_string(id));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  void add_space(Id id, Id owner) {
    auto r = store_->create_space(Space{.id = id,
                                        .name = "space" + std::to_string(id),
                                        .avatar = "",
                                        .owner_id = owner,
                                        .created_at = 1});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  // Joins the channel's space first, as the service requires.
  Result<bool> join(Id channel, Id user, Millis now) {
    auto ch = store_->channel_by_id(channel);
    if (ch.ok()) (void)store_->add_space_member(ch->space_id, user, now);
    return store_->add_channel_member(channel, user, now);
  }
  void add_channel(Id id, Id space_id, Id owner) {
    auto r = store_->create_channel(Channel{.id = id,
                                            .space_id = space_id,
                                            .name = "chan" + std::to_string(id),
                                            .avatar = "c.png",
                                            .owner_id = owner,
                                            .created_at = 2});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // Appends and expects every item to succeed; returns the outcomes.
  std::vector<Appended> append_ok(const std::vector<NewMessage>& batch) {
    auto r = store_->append_messages(batch);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<Appended> out;
    if (!r.ok()) return out;
    EXPECT_EQ(r->size(), batch.size());
    for (auto& item : *r) {
      EXPECT_TRUE(item.ok()) << item.error().message;
      if (item.ok()) out.push_back(*item);
    }
    return out;
  }

  std::vector<std::uint64_t> seqs(const ConvKey& conv, HistoryQuery q) {
    auto r = store_->messages(conv, q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<std::uint64_t> out;
    if (r.ok()) {
      for (const Message& m : *r) out.push_back(m.seq);
    }
    return out;
  }

  std::optional<ConversationState> conversation(Id user_id, const ConvKey& conv) {
    auto r = store_->conversations(user_id);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return std::nullopt;
    for (auto& st : *r) {
      if (st.conv == conv) return st;
    }
    return std::nullopt;
  }

  std::int64_t scalar(std::string_view sql, std::int64_t a, std::int64_t b) {
    auto r = db_->read([&](SqliteConnection& c) -> Result<std::int64_t> {
      auto s = c.prepare(sql);
      if (!s.ok()) return s.error();
      s->bind_all(a, b);
      auto row = s->step();
      if (!row.ok()) return row.error();
      return *row ? s->column_int64(0) : -1;
    });
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : -2;
  }

  TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteStore> store_;
};

// --- users and sessions

TEST_F(SqliteStoreTest, CreatesAndFindsUsers) {
  add_user(1, "Alice");
  auto by_phone = store_->user_by_phone("+15551");
  ASSERT_TRUE(by_phone.ok()) << by_phone.error().message;
  EXPECT_EQ(by_phone->user.id, 1u);
  EXPECT_EQ(by_phone->user.name, "Alice");
  EXPECT_EQ(by_phone->user.avatar, "a1");
  EXPECT_EQ(by_phone->user.created_at, 1001);
  EXPECT_EQ(by_phone->password_hash, "hash1");

  auto by_id = store_->user_by_id(1);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->phone, "+15551");

  EXPECT_EQ(store_->user_by_id(2).error().code, Errc::not_found);
  EXPECT_EQ(store_->user_by_phone("+19999").error().code, Errc::not_found);
}

TEST_F(SqliteStoreTest, DuplicatePhoneIsAConflict) {
  add_user(1, "Alice");
  auto r = store_->create_user(make_user(2, "Bob", "+15551"), "h");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().message, "phone already registered");
  auto same_id = store_->create_user(make_user(1, "Carol", "+17777"), "h");
  EXPECT_EQ(same_id.error().code, Errc::conflict);
}

TEST_F(SqliteStoreTest, UsersByNameIsCaseInsensitiveAndExact) {
  add_user(1, "Alice");
  add_user(2, "ALICE");
  add_user(3, "Alicia");
  add_user(4, "alice");
  auto r = store_->users_by_name("aLiCe", 10);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id, 1u);
  EXPECT_EQ((*r)[1].id, 2u);
  EXPECT_EQ((*r)[2].id, 4u);
  auto limited = store_->users_by_name("alice", 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 2u);
  EXPECT_TRUE(store_->users_by_name("nobody", 10)->empty());
}

TEST_F(SqliteStoreTest, UpdatesUserFieldsThatAreGiven) {
  add_user(1, "Alice");
  auto renamed = store_->update_user(1, std::string("Alicia"), std::nullopt);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->name, "Alicia");
  EXPECT_EQ(renamed->avatar, "a1");
  auto avatar = store_->update_user(1, std::nullopt, std::string("new.png"));
  ASSERT_TRUE(avatar.ok());
  EXPECT_EQ(avatar->name, "Alicia");
  EXPECT_EQ(avatar->avatar, "new.png");
  EXPECT_EQ(store_->user_by_id(1)->avatar, "new.png");
  EXPECT_EQ(store_->update_user(9, std::string("x"), std::nullopt).error().code, Errc::not_found);
}

TEST_F(SqliteStoreTest, RefreshTokensAreSingleUse) {
  add_user(1, "Alice");
  ASSERT_TRUE(store_->save_refresh_token({"t1", 1, 10'000}).ok());
  EXPECT_EQ(store_->save_refresh_token({"t1", 1, 10'000}).error().code, Errc::conflict);

  auto taken = store_->take_refresh_token("t1", 5'000);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  EXPECT_EQ(taken->token_hash, "t1");
  EXPECT_EQ(taken->user_id, 1u);
  EXPECT_EQ(taken->expires_at, 10'000);
  EXPECT_EQ(store_->take_refresh_token("t1", 5'000).error().code, Errc::not_found);  // revoked

  ASSERT_TRUE(store_->save_refresh_token({"t2", 1, 10'000}).ok());
  EXPECT_EQ(store_->take_refresh_token("t2", 10'000).error().code, Errc::not_found);  // expired
  EXPECT_TRUE(store_->take_refresh_token("t2", 9'999).ok());

  ASSERT_TRUE(store_->save_refresh_token({"t3", 1, 10'000}).ok());
  ASSERT_TRUE(store_->revoke_refresh_token("t3").ok());
  EXPECT_EQ(store_->take_refresh_token("t3", 1).error().code, Errc::not_found);
  EXPECT_TRUE(store_->revoke_refresh_token("t3").ok());
  EXPECT_EQ(store_->revoke_refresh_token("nope").error().code, Errc::not_found);
  EXPECT_EQ(store_->take_refresh_token("nope", 1).error().code, Errc::not_found);
  // A token for a user that does not exist.
  EXPECT_EQ(store_->save_refresh_token({"t4", 99, 10'000}).error().code, Errc::not_found);
}

// --- spaces

TEST_F(SqliteStoreTest, SpacesAndMembership) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  auto space = store_->space_by_id(10);
  ASSERT_TRUE(space.ok());
  EXPECT_EQ(space->owner_id, 1u);
  EXPECT_EQ(space->name, "space10");
  EXPECT_EQ(store_->space_by_id(11).error().code, Errc::not_found);
  EXPECT_EQ(
      store_
          ->create_space(Space{.id = 10, .name = "x", .avatar = "", .owner_id = 1, .created_at = 1})
          .error()
          .code,
      Errc::conflict);

  EXPECT_TRUE(*store_->is_space_member(10, 1));  // the owner
  EXPECT_FALSE(*store_->is_space_member(10, 2));
  EXPECT_TRUE(*store_->add_space_member(10, 2, 50));
  EXPECT_FALSE(*store_->add_space_member(10, 2, 60));
  EXPECT_TRUE(*store_->is_space_member(10, 2));
  EXPECT_EQ(store_->add_space_member(99, 2, 60).error().code, Errc::not_found);
  EXPECT_EQ(store_->add_space_member(10, 99, 60).error().code, Errc::not_found);

  add_space(11, 2);
  auto of_bob = store_->spaces_of_user(2);
  ASSERT_TRUE(of_bob.ok());
  ASSERT_EQ(of_bob->size(), 2u);
  EXPECT_EQ((*of_bob)[0].id, 10u);
  EXPECT_EQ((*of_bob)[1].id, 11u);
  EXPECT_EQ(store_->spaces_of_user(1)->size(), 1u);

  auto updated = store_->update_space(10, std::nullopt, std::string("s.png"));
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "space10");
  EXPECT_EQ(updated->avatar, "s.png");
  EXPECT_EQ(store_->update_space(99, std::string("x"), std::nullopt).error().code, Errc::not_found);
}

TEST_F(SqliteStoreTest, SpaceMembersPageByUserId) {
  for (Id u = 1; u <= 5; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 3);
  for (Id u : {5, 1, 4, 2}) ASSERT_TRUE(*store_->add_space_member(10, u, 100 + u));

  std::vector<Id> seen;
  Id after = 0;
  for (int page = 0; page < 3; ++page) {
    auto r = store_->space_members(10, after, 2);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), page < 2 ? 2u : 1u);
    for (const Member& m : *r) seen.push_back(m.user_id);
    after = r->back().user_id;
  }
  EXPECT_EQ(seen, (std::vector<Id>{1, 2, 3, 4, 5}));
  auto past_end = store_->space_members(10, 5, 2);
  ASSERT_TRUE(past_end.ok());
  EXPECT_TRUE(past_end->empty());
  auto first = store_->space_members(10, 0, 1);
  EXPECT_EQ((*first)[0].name, "u1");
  EXPECT_EQ((*first)[0].avatar, "a1");
  EXPECT_EQ((*first)[0].joined_at, 101);
  EXPECT_TRUE(store_->space_members(10, ~0ull, 10)->empty());
}

TEST_F(SqliteStoreTest, RemoveSpaceMemberAlsoLeavesItsChannels) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_space(20, 1);
  add_channel(100, 10, 1);
  add_channel(101, 10, 1);
  add_channel(200, 20, 1);
  ASSERT_TRUE(*store_->add_space_member(10, 2, 1));
  ASSERT_TRUE(*store_->add_space_member(20, 2, 1));
  for (Id ch : {100, 101, 200}) ASSERT_TRUE(*join(ch, 2, 1));

  auto removed = store_->remove_space_member(10, 2);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(*store_->is_space_member(10, 2));
  EXPECT_FALSE(*store_->is_channel_member(100, 2));
  EXPECT_FALSE(*store_->is_channel_member(101, 2));
  EXPECT_TRUE(*store_->is_channel_member(200, 2));  // another space's channel
  EXPECT_TRUE(*store_->is_channel_member(100, 1));  // other members untouched
  EXPECT_FALSE(*store_->remove_space_member(10, 2));
}

// --- channels

TEST_F(SqliteStoreTest, ChannelsAndMembership) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  // Only space members may create channels in it.
  EXPECT_EQ(store_->create_channel(Channel{.id = 101, .space_id = 10, .name = "y", .owner_id = 2})
                .error()
                .code,
            Errc::forbidden);
  ASSERT_TRUE(*store_->add_space_member(10, 2, 3));
  add_channel(101, 10, 2);

  auto ch = store_->channel_by_id(100);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->space_id, 10u);
  EXPECT_EQ(ch->name, "chan100");
  EXPECT_EQ(ch->avatar, "c.png");
  EXPECT_EQ(ch->owner_id, 1u);
  EXPECT_EQ(ch->last_seq, 0u);
  EXPECT_EQ(store_->channel_by_id(999).error().code, Errc::not_found);
  auto of_space = store_->channels_of_space(10);
  ASSERT_TRUE(of_space.ok());
  ASSERT_EQ(of_space->size(), 2u);
  EXPECT_EQ((*of_space)[1].id, 101u);
  EXPECT_TRUE(store_->channels_of_space(11)->empty());
  EXPECT_EQ(store_
                ->create_channel(
                    Channel{.id = 102, .space_id = 99, .name = "x", .avatar = "", .owner_id = 1})
                .error()
                .code,
            Errc::not_found);
  EXPECT_EQ(store_->channel_by_id(102).error().code, Errc::not_found);  // rolled back
  EXPECT_EQ(store_
                ->create_channel(
                    Channel{.id = 100, .space_id = 10, .name = "x", .avatar = "", .owner_id = 1})
                .error()
                .code,
            Errc::conflict);

  EXPECT_TRUE(*store_->is_channel_member(100, 1));  // the owner
  EXPECT_TRUE(*join(100, 3, 7));
  EXPECT_TRUE(*join(100, 2, 7));
  EXPECT_FALSE(*join(100, 2, 8));
  EXPECT_EQ(store_->add_channel_member(999, 2, 8).error().code, Errc::not_found);
  // An unknown user is no member of the space either.
  EXPECT_EQ(store_->add_channel_member(100, 99, 8).error().code, Errc::forbidden);
  add_user(4, "Dave");  // known, but not in the space
  EXPECT_EQ(store_->add_channel_member(100, 4, 8).error().code, Errc::forbidden);

  EXPECT_EQ(*store_->channel_member_ids(100), (std::vector<Id>{1, 2, 3}));
  auto page = store_->channel_members(100, 1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].user_id, 2u);
  EXPECT_EQ((*page)[0].name, "Bob");
  EXPECT_EQ((*page)[0].joined_at, 7);
  EXPECT_TRUE(store_->channel_members(100, 3, 10)->empty());

  EXPECT_TRUE(*store_->remove_channel_member(100, 2));
  EXPECT_FALSE(*store_->remove_channel_member(100, 2));
  EXPECT_EQ(*store_->channel_member_ids(100), (std::vector<Id>{1, 3}));
}

TEST_F(SqliteStoreTest, NewChannelMemberStartsAtTheChannelsLastSeq) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  append_ok(
      {channel_msg(1, 100, 1, "c1"), channel_msg(2, 100, 1, "c2"), channel_msg(3, 100, 1, "c3")});
  ASSERT_TRUE(*join(100, 2, 9));
  auto st = conversation(2, ConvKey::channel(100));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->last_seq, 3u);
  EXPECT_EQ(st->read_seq, 3u);
  EXPECT_EQ(st->ack_seq, 3u);
  EXPECT_EQ(scalar("SELECT last_ack_message_id FROM channel_user WHERE channel_id = ? AND "
                   "user_id = ?",
                   100, 2),
            3);
  // History before joining stays readable.
  EXPECT_EQ(seqs(ConvKey::channel(100), newest()), (std::vector<std::uint64_t>{1, 2, 3}));
}

// --- messages

TEST_F(SqliteStoreTest, AssignsDenseSeqPerConversationAcrossBatches) {
  for (Id u = 1; u <= 3; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 1);
  add_channel(100, 10, 1);
  add_channel(101, 10, 1);
  Id next_id = 1;
  std::map<ConvKey, std::uint64_t> expected;
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<NewMessage> items;
    for (int i = 0; i < 9; ++i) {
      const Id id = next_id++;
      const std::string cid = "c" + std::to_string(id);
      switch (i % 3) {
        case 0:
          items.push_back(channel_msg(id, 100, 1, cid));
          break;
        case 1:
          items.push_back(channel_msg(id, 101, 2, cid));
          break;
        default:
          items.push_back(dm_msg(id, 3, 1, cid));
          break;
      }
    }
    for (const Appended& a : append_ok(items)) {
      EXPECT_FALSE(a.duplicate);
      EXPECT_EQ(a.msg.seq, ++expected[a.msg.conv]) << "message " << a.msg.id;
    }
  }
  const std::vector<std::uint64_t> all = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  for (const ConvKey& conv : {ConvKey::channel(100), ConvKey::channel(101), ConvKey::dm(1, 3)}) {
    EXPECT_EQ(expected[conv], 12u);
    EXPECT_EQ(seqs(conv, newest(100)), all);
  }
  auto ch = store_->channel_by_id(100);
  EXPECT_EQ(ch->last_seq, 12u);
  EXPECT_EQ(ch->last_message_id, 34u);  // the 12th message to channel 100: id 1 + 3*11

  auto dm = store_->messages(ConvKey::dm(1, 3), newest(1));
  ASSERT_EQ(dm->size(), 1u);
  EXPECT_EQ((*dm)[0].from, 3u);
  EXPECT_EQ((*dm)[0].to, 1u);
  EXPECT_EQ((*dm)[0].conv, ConvKey::dm(1, 3));
  EXPECT_EQ((*dm)[0].body, "hi");
  EXPECT_EQ((*dm)[0].type, "text");
  EXPECT_EQ((*dm)[0].cid, "c36");
}

TEST_F(SqliteStoreTest, DuplicateCidAcrossBatchesReturnsTheOriginal) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  auto first = append_ok({channel_msg(1, 100, 1, "x", "original"), dm_msg(2, 1, 2, "y", "dm")});
  auto again = append_ok({channel_msg(3, 100, 1, "x", "retry"), dm_msg(4, 1, 2, "y", "retry"),
                          channel_msg(5, 100, 2, "x", "other sender, same cid")});
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(again[0].duplicate);
  EXPECT_EQ(again[0].msg.id, 1u);
  EXPECT_EQ(again[0].msg.seq, 1u);
  EXPECT_EQ(again[0].msg.body, "original");
  EXPECT_TRUE(again[1].duplicate);
  EXPECT_EQ(again[1].msg.id, 2u);
  EXPECT_EQ(again[1].msg.body, "dm");
  EXPECT_EQ(again[1].msg.to, 2u);
  EXPECT_FALSE(again[2].duplicate);  // (sender, cid) is the key, not cid alone
  EXPECT_EQ(again[2].msg.seq, 2u);
  EXPECT_EQ(store_->channel_by_id(100)->last_seq, 2u);  // no seq spent on the retry

  // A retry that names another conversation still finds the original (and writes nothing).
  auto cross = append_ok({dm_msg(6, 1, 2, "x", "retry into a dm")});
  EXPECT_TRUE(cross[0].duplicate);
  EXPECT_EQ(cross[0].msg.conv, ConvKey::channel(100));
  EXPECT_EQ(seqs(ConvKey::dm(1, 2), newest()), (std::vector<std::uint64_t>{1}));
}

TEST_F(SqliteStoreTest, DuplicateCidWithinOneBatchIsADuplicateOfTheFirst) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  auto out = append_ok({dm_msg(1, 1, 2, "same", "first"), dm_msg(2, 1, 2, "same", "second"),
                        dm_msg(3, 1, 2, "", "no cid"), dm_msg(4, 1, 2, "", "no cid either")});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_TRUE(out[1].duplicate);
  EXPECT_EQ(out[1].msg.id, 1u);
  EXPECT_EQ(out[1].msg.body, "first");
  EXPECT_FALSE(out[2].duplicate);  // an empty cid opts out of de-duplication
  EXPECT_FALSE(out[3].duplicate);
  EXPECT_EQ(out[3].msg.seq, 3u);
}

TEST_F(SqliteStoreTest, PerItemFailuresDoNotFailTheBatch) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  NewMessage bad_dm = dm_msg(3, 1, 2, "c3");
  bad_dm.msg.from = 7;  // not a participant of (1, 2)
  auto r = store_->append_messages(std::vector<NewMessage>{channel_msg(1, 100, 1, "c1"),
                                                           channel_msg(2, 999, 1, "c2"), bad_dm,
                                                           channel_msg(4, 100, 1, "c4")});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0]->msg.seq, 1u);
  EXPECT_EQ((*r)[1].error().code, Errc::not_found);
  EXPECT_EQ((*r)[2].error().code, Errc::invalid_argument);
  EXPECT_EQ((*r)[3]->msg.seq, 2u);
  // The failed item's cid stays free.
  auto retry = append_ok({channel_msg(5, 100, 1, "c2")});
  EXPECT_FALSE(retry[0].duplicate);
}

TEST_F(SqliteStoreTest, AnEngineErrorRollsBackTheWholeBatch) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  // Message id 1 twice with different cids: the second insert violates UNIQUE(message_id).
  auto r = store_->append_messages(std::vector<NewMessage>{
      dm_msg(7, 1, 2, "z"), channel_msg(1, 100, 1, "a"), channel_msg(1, 100, 1, "b")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(store_->channel_by_id(100)->last_seq, 0u);
  EXPECT_TRUE(store_->messages(ConvKey::channel(100), newest())->empty());
  EXPECT_TRUE(store_->messages(ConvKey::dm(1, 2), newest())->empty());
  EXPECT_TRUE(store_->conversations(2)->empty());
  auto again = append_ok({channel_msg(1, 100, 1, "a")});
  EXPECT_FALSE(again[0].duplicate);
  EXPECT_EQ(again[0].msg.seq, 1u);
}

TEST_F(SqliteStoreTest, SendingMovesOnlyTheSendersReadCursor) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(*join(100, 2, 1));
  append_ok({channel_msg(1, 100, 1, "a"), channel_msg(2, 100, 2, "b"), channel_msg(3, 100, 1, "c"),
             channel_msg(4, 100, 3, "d"),  // Carol is no member: no cursor row to move
             dm_msg(5, 2, 3, "e"), dm_msg(6, 2, 3, "f")});

  auto alice = conversation(1, ConvKey::channel(100));
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->last_seq, 4u);
  EXPECT_EQ(alice->read_seq, 3u);
  // Delivery cursors stay: the sender's other devices still get their own messages.
  EXPECT_EQ(alice->ack_seq, 0u);
  auto bob = conversation(2, ConvKey::channel(100));
  EXPECT_EQ(bob->read_seq, 2u);
  EXPECT_EQ(bob->ack_seq, 0u);
  EXPECT_EQ(scalar("SELECT last_ack_message_id FROM channel_user WHERE channel_id = ? AND "
                   "user_id = ?",
                   100, 1),
            0);
  EXPECT_FALSE(conversation(3, ConvKey::channel(100)));

  auto bob_dm = conversation(2, ConvKey::dm(2, 3));
  ASSERT_TRUE(bob_dm);
  EXPECT_EQ(bob_dm->read_seq, 2u);
  EXPECT_EQ(bob_dm->ack_seq, 0u);
  auto carol_dm = conversation(3, ConvKey::dm(2, 3));
  ASSERT_TRUE(carol_dm);
  EXPECT_EQ(carol_dm->read_seq, 0u);
  EXPECT_EQ(carol_dm->ack_seq, 0u);
  EXPECT_EQ(carol_dm->last_seq, 2u);
}

TEST_F(SqliteStoreTest, HistoryPagesBeforeAfterAndNewest) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  std::vector<NewMessage> batch;
  for (Id i = 1; i <= 10; ++i) batch.push_back(channel_msg(i, 100, 1, "c" + std::to_string(i)));
  for (Id i = 11; i <= 15; ++i)
    batch.push_back(dm_msg(i, 1 + i % 2, 2 - i % 2, "d" + std::to_string(i)));
  append_ok(batch);

  using V = std::vector<std::uint64_t>;
  const ConvKey ch = ConvKey::channel(100);
  EXPECT_EQ(seqs(ch, newest(3)), (V{8, 9, 10}));
  EXPECT_EQ(seqs(ch, before(8, 3)), (V{5, 6, 7}));
  EXPECT_EQ(seqs(ch, before(3, 5)), (V{1, 2}));
  EXPECT_EQ(seqs(ch, before(1, 5)), (V{}));
  EXPECT_EQ(seqs(ch, after(7, 2)), (V{8, 9}));
  EXPECT_EQ(seqs(ch, after(0, 2)), (V{1, 2}));
  EXPECT_EQ(seqs(ch, after(10, 2)), (V{}));
  EXPECT_EQ(seqs(ch, after(~0ull, 2)), (V{}));
  EXPECT_EQ(seqs(ch, before(~0ull, 2)), (V{9, 10}));
  EXPECT_EQ(seqs(ch, newest(0)), (V{10}));        // clamped to 1
  EXPECT_EQ(seqs(ch, newest(5000)).size(), 10u);  // clamped to 100
  EXPECT_EQ(seqs(ConvKey::channel(999), newest()), (V{}));

  const ConvKey dm = ConvKey::dm(2, 1);
  EXPECT_EQ(seqs(dm, newest()), (V{1, 2, 3, 4, 5}));
  EXPECT_EQ(seqs(dm, before(4, 2)), (V{2, 3}));
  EXPECT_EQ(seqs(dm, after(3)), (V{4, 5}));
  auto msgs = store_->messages(dm, after(0, 1));
  EXPECT_EQ((*msgs)[0].id, 11u);
  EXPECT_EQ((*msgs)[0].from, 2u);
  EXPECT_EQ((*msgs)[0].to, 1u);

  auto both = store_->messages(ch, [] {
    HistoryQuery q = before(5);
    q.after_seq = 1;
    return q;
  }());
  EXPECT_EQ(both.error().code, Errc::invalid_argument);
  auto bad = store_->messages(ConvKey{ConvKind::dm, 2, 1}, newest());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

TEST_F(SqliteStoreTest, CursorsMoveForwardOnlyAndClampToLastSeq) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(*join(100, 2, 1));
  append_ok({channel_msg(1, 100, 1, "a"), channel_msg(2, 100, 1, "b"), channel_msg(3, 100, 1, "c"),
             dm_msg(4, 1, 2, "d"), dm_msg(5, 1, 2, "e")});
  const ConvKey ch = ConvKey::channel(100);

  EXPECT_EQ(*store_->advance_read(2, ch, 2), 2u);
  EXPECT_EQ(*store_->advance_read(2, ch, 1), 2u);   // never backwards
  EXPECT_EQ(*store_->advance_read(2, ch, 99), 3u);  // clamped
  ASSERT_TRUE(store_->advance_delivery(2, ch, 2).ok());
  EXPECT_EQ(conversation(2, ch)->ack_seq, 2u);
  EXPECT_EQ(scalar("SELECT last_ack_message_id FROM channel_user WHERE channel_id = ? AND "
                   "user_id = ?",
                   100, 2),
            2);
  ASSERT_TRUE(store_->advance_delivery(2, ch, 1).ok());
  EXPECT_EQ(conversation(2, ch)->ack_seq, 2u);
  ASSERT_TRUE(store_->advance_delivery(2, ch, ~0ull).ok());
  EXPECT_EQ(conversation(2, ch)->ack_seq, 3u);
  EXPECT_EQ(scalar("SELECT last_ack_message_id FROM channel_user WHERE channel_id = ? AND "
                   "user_id = ?",
                   100, 2),
            3);

  EXPECT_EQ(store_->advance_read(3, ch, 1).error().code, Errc::forbidden);
  EXPECT_EQ(store_->advance_delivery(3, ch, 1).error().code, Errc::forbidden);
  EXPECT_EQ(store_->advance_read(2, ConvKey::channel(999), 1).error().code, Errc::forbidden);

  const ConvKey dm = ConvKey::dm(1, 2);
  EXPECT_EQ(*store_->advance_read(2, dm, 1), 1u);
  EXPECT_EQ(*store_->advance_read(2, dm, 10), 2u);
  ASSERT_TRUE(store_->advance_delivery(2, dm, 2).ok());
  EXPECT_EQ(conversation(2, dm)->ack_seq, 2u);
  EXPECT_EQ(
      scalar("SELECT last_ack_message_id FROM dm_user WHERE user_id = ? AND peer_id = ?", 2, 1), 5);
  EXPECT_EQ(store_->advance_read(3, dm, 1).error().code, Errc::forbidden);  // not a participant
  // A pair that never exchanged a message has no cursor rows yet.
  EXPECT_EQ(store_->advance_read(3, ConvKey::dm(1, 3), 1).error().code, Errc::forbidden);
  EXPECT_EQ(store_->advance_delivery(3, ConvKey::dm(1, 3), 1).error().code, Errc::forbidden);
}

TEST_F(SqliteStoreTest, ConversationsCarryUnreadAndTheLastMessage) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  add_channel(101, 10, 1);
  ASSERT_TRUE(*join(100, 2, 1));
  ASSERT_TRUE(*join(101, 2, 1));
  append_ok({channel_msg(1, 100, 1, "a"), channel_msg(2, 100, 1, "b"),
             channel_msg(3, 100, 1, "c", "latest"), dm_msg(4, 3, 2, "d"),
             dm_msg(5, 3, 2, "e", "hello bob")});
  ASSERT_TRUE(store_->advance_read(2, ConvKey::channel(100), 1).ok());

  auto all = store_->conversations(2);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  std::map<ConvKey, ConversationState> by_conv;
  for (auto& st : *all) by_conv[st.conv] = st;

  const auto& busy = by_conv.at(ConvKey::channel(100));
  EXPECT_EQ(busy.space_id, 10u);
  EXPECT_EQ(busy.name, "chan100");
  EXPECT_EQ(busy.avatar, "c.png");
  EXPECT_EQ(busy.last_seq - busy.read_seq, 2u);  // unread
  ASSERT_TRUE(busy.last);
  EXPECT_EQ(busy.last->body, "latest");
  EXPECT_EQ(busy.last->seq, 3u);
  EXPECT_EQ(busy.last->conv, ConvKey::channel(100));

  const auto& quiet = by_conv.at(ConvKey::channel(101));
  EXPECT_EQ(quiet.last_seq, 0u);
  EXPECT_FALSE(quiet.last);

  const auto& dm = by_conv.at(ConvKey::dm(2, 3));
  EXPECT_EQ(dm.space_id, 0u);
  EXPECT_EQ(dm.name, "Carol");
  EXPECT_EQ(dm.avatar, "a3");
  EXPECT_EQ(dm.last_seq - dm.read_seq, 2u);
  ASSERT_TRUE(dm.last);
  EXPECT_EQ(dm.last->body, "hello bob");
  EXPECT_EQ(dm.last->from, 3u);
  EXPECT_EQ(dm.last->to, 2u);

  auto carol = store_->conversations(3);
  ASSERT_EQ(carol->size(), 1u);
  EXPECT_EQ((*carol)[0].name, "Bob");
  EXPECT_EQ((*carol)[0].last_seq - (*carol)[0].read_seq, 0u);
  EXPECT_TRUE(store_->conversations(99)->empty());
}

TEST_F(SqliteStoreTest, DataSurvivesAReopenWithoutReapplyingMigrations) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  append_ok({channel_msg(1, 100, 1, "a"), dm_msg(2, 1, 2, "b")});
  close();
  open();
  EXPECT_EQ(db_->migrations_applied(), 0);
  EXPECT_EQ(store_->user_by_id(2)->name, "Bob");
  EXPECT_EQ(store_->channel_by_id(100)->last_seq, 1u);
  EXPECT_EQ(seqs(ConvKey::dm(1, 2), newest()), (std::vector<std::uint64_t>{1}));
  auto dup = append_ok({channel_msg(3, 100, 1, "a")});
  EXPECT_TRUE(dup[0].duplicate);
  auto next = append_ok({channel_msg(4, 100, 1, "z")});
  EXPECT_EQ(next[0].msg.seq, 2u);
}

TEST_F(SqliteStoreTest, ConcurrentWritersAndReadersKeepSeqDense) {
  add_user(1, "Alice");
  add_space(10, 1);
  add_channel(100, 10, 1);
  constexpr int kThreads = 4, kBatches = 20, kPerBatch = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<NewMessage> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          const Id id = 1 + static_cast<Id>((t * kBatches + b) * kPerBatch + i);
          batch.push_back(channel_msg(id, 100, 1, "c" + std::to_string(id)));
        }
        if (!store_->append_messages(batch).ok()) ++failures;
        if (!store_->messages(ConvKey::channel(100), newest(10)).ok()) ++failures;
        if (!store_->conversations(1).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  constexpr std::uint64_t kTotal = kThreads * kBatches * kPerBatch;
  EXPECT_EQ(store_->channel_by_id(100)->last_seq, kTotal);
  std::uint64_t expect = 0;
  for (std::uint64_t cursor = 0; cursor < kTotal;) {
    auto page = store_->messages(ConvKey::channel(100), after(cursor, 100));
    ASSERT_TRUE(page.ok());
    ASSERT_FALSE(page->empty());
    for (const Message& m : *page) EXPECT_EQ(m.seq, ++expect);
    cursor = page->back().seq;
  }
}

TEST_F(SqliteStoreTest, AppendThroughput) {
  constexpr int kUsers = 50, kChannels = 8, kBatch = 256, kBatches = 80;
  for (Id u = 1; u <= kUsers; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 1);
  for (Id c = 0; c < kChannels; ++c) {
    add_channel(100 + c, 10, 1);
    for (Id u = 2; u <= kUsers; ++u) ASSERT_TRUE(*join(100 + c, u, 1));
  }
  std::vector<std::vector<NewMessage>> batches;
  Id id = 1;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < kBatch; ++i, ++id) {
      const Id from = 1 + id % kUsers;
      const std::string cid = "t" + std::to_string(id);
      const std::string body(120, 'x');
      if (id % 4 == 0) {
        batch.push_back(dm_msg(id, from, 1 + (from % kUsers), cid, body));
      } else {
        batch.push_back(channel_msg(id, 100 + id % kChannels, from, cid, body));
      }
    }
    batches.push_back(std::move(batch));
  }
  const auto start = std::chrono::steady_clock::now();
  for (const auto& batch : batches) {
    auto r = store_->append_messages(batch);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double total = static_cast<double>(kBatch) * kBatches;
  std::printf(
      "[ throughput ] append_messages: %.0f messages/s (%d batches of %d, %.3f s, "
      "synchronous=NORMAL)\n",
      total / seconds, kBatches, kBatch, seconds);
}

}  // namespace
}  // namespace imd
