#include "store/message_row_cache.hpp"

#include <gtest/gtest.h>

#include <tuple>

#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::dm_msg;
using testing::make_user;
using testing::open_db;
using testing::TempDir;

auto fields(const Message& m) {
  return std::tuple(m.id, m.conv, m.seq, m.from, m.to, m.type, m.body, m.created_at, m.cid);
}

std::vector<std::uint64_t> seqs(const std::vector<Message>& page) {
  std::vector<std::uint64_t> out;
  for (const auto& m : page) out.push_back(m.seq);
  return out;
}

Message row(const ConvKey& conv, std::uint64_t seq, std::size_t body_bytes = 10) {
  return Message{.id = 1000 + seq,
                 .conv = conv,
                 .seq = seq,
                 .from = 1,
                 .type = "text",
                 .body = std::string(body_bytes, 'b'),
                 .created_at = static_cast<Millis>(seq),
                 .cid = "c" + std::to_string(seq)};
}

std::vector<Message> rows(const ConvKey& conv, std::uint64_t first, std::uint64_t last) {
  std::vector<Message> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(row(conv, s));
  return out;
}

TEST(MessageRowCache, AnswersOnlyWhenEverySeqIsThere) {
  MessageRowCache cache(1u << 20);
  const auto ch = ConvKey::channel(7);
  cache.remember(rows(ch, 1, 10));
  cache.remember(rows(ch, 12, 200));  // 11 was never seen
  auto page = cache.rows(ch, 3, 5);
  ASSERT_TRUE(page);
  EXPECT_EQ(seqs(*page), (std::vector<std::uint64_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(fields((*page)[0]), fields(row(ch, 3)));
  EXPECT_FALSE(cache.rows(ch, 1, 11));  // 11 is missing
  EXPECT_FALSE(cache.rows(ch, 0, 3));   // so is 0
  EXPECT_FALSE(cache.rows(ConvKey::channel(8), 3, 5));
  EXPECT_FALSE(cache.rows(ConvKey::dm(7, 9), 3, 5));
  auto across = cache.rows(ch, 12, 150);  // across three blocks
  ASSERT_TRUE(across);
  EXPECT_EQ(across->size(), 150u);
  EXPECT_EQ(across->back().seq, 161u);
  EXPECT_FALSE(cache.rows(ch, UINT64_MAX - 1, 5));
}

// A changed row replaces the remembered one; a row read before the change and remembered late
// never does.
TEST(MessageRowCache, AChangedRowReplacesOnlyAnOlderRev) {
  const ConvKey conv = ConvKey::dm(1, 2);
  MessageRowCache cache(1 << 20);
  cache.remember(rows(conv, 1, 3));
  Message edited = row(conv, 2);
  edited.body = "edited, and longer than the small-string buffer";
  edited.rev = 5;
  cache.remember({edited});
  auto page = cache.rows(conv, 1, 3);
  ASSERT_TRUE(page);
  EXPECT_EQ((*page)[1].body, edited.body);
  const std::size_t bytes = cache.bytes();
  cache.remember({row(conv, 2)});  // the old state, read before the change
  EXPECT_EQ(cache.rows(conv, 2, 1)->at(0).rev, 5u);
  EXPECT_EQ(cache.bytes(), bytes);
  Message deleted = edited;
  deleted.body.clear();
  deleted.deleted = true;
  deleted.rev = 6;
  cache.remember({deleted});
  EXPECT_TRUE(cache.rows(conv, 2, 1)->at(0).deleted);
  EXPECT_LT(cache.bytes(), bytes);
}

TEST(MessageRowCache, DropsTheLeastRecentlyUsedBlocksPastItsBound) {
  const auto a = ConvKey::channel(1);
  const auto b = ConvKey::channel(2);
  const auto c = ConvKey::channel(3);
  MessageRowCache probe(SIZE_MAX);
  probe.remember(rows(a, 0, 63));
  const std::size_t block = probe.bytes();  // one full block of 64 rows
  MessageRowCache cache(2 * block + block / 2);
  cache.remember(rows(a, 0, 63));
  cache.remember(rows(b, 0, 63));
  ASSERT_TRUE(cache.rows(a, 0, 64));  // a is now the most recently used
  cache.remember(rows(c, 0, 63));     // over the bound: b goes
  EXPECT_LE(cache.bytes(), 2 * block + block / 2);
  EXPECT_TRUE(cache.rows(a, 0, 64));
  EXPECT_FALSE(cache.rows(b, 0, 1));
  EXPECT_TRUE(cache.rows(c, 0, 64));
}

// Every page a store with the cache returns, first and second time, is the one the database
// returns (a store without the cache, on the same database).
TEST(MessageRowCache, SqliteStorePagesAreTheDatabasesPages) {
  TempDir dir;
  auto db = open_db(dir.file("imd.db"));
  SqliteStore cached(db);
  SqliteStore uncached(db, 0);
  ASSERT_TRUE(cached.create_user(make_user(1, "u1"), "h").ok());
  ASSERT_TRUE(cached.create_user(make_user(2, "u2"), "h").ok());
  const auto conv = ConvKey::dm(1, 2);
  constexpr std::uint64_t kMessages = 300;
  for (std::uint64_t i = 0; i < kMessages; i += 50) {
    std::vector<NewMessage> batch;
    for (std::uint64_t j = i; j < i + 50; ++j) {
      batch.push_back(dm_msg(100 + j, j % 2 ? 1 : 2, j % 2 ? 2 : 1, "c" + std::to_string(j),
                             "body " + std::string(j % 40, 'x')));
    }
    ASSERT_TRUE(cached.append_messages(batch).ok());
  }
  auto query = [](std::optional<std::uint64_t> before, std::optional<std::uint64_t> after,
                  std::uint32_t limit) {
    return HistoryQuery{before, after, limit};
  };
  std::vector<HistoryQuery> queries;
  for (std::uint32_t limit : {1u, 10u, 50u, 100u}) {
    queries.push_back(query({}, {}, limit));
    for (std::uint64_t s = 0; s <= kMessages + 2; s += 7) {
      queries.push_back(query(s, {}, limit));
      queries.push_back(query({}, s, limit));
    }
  }
  for (int round = 0; round < 2; ++round) {
    for (const auto& q : queries) {
      auto want = uncached.messages(conv, q);
      auto got = cached.messages(conv, q);
      ASSERT_TRUE(want.ok() && got.ok());
      ASSERT_EQ(got->size(), want->size());
      for (std::size_t i = 0; i < want->size(); ++i) {
        EXPECT_EQ(fields((*got)[i]), fields((*want)[i]))
            << "round " << round << " before " << q.before_seq.value_or(0) << " after "
            << q.after_seq.value_or(0) << " limit " << q.limit;
      }
    }
  }
  // Messages stored after a page was read are seen by the next read of the newest pages.
  const std::vector<NewMessage> late = {dm_msg(999, 1, 2, "late")};
  ASSERT_TRUE(cached.append_messages(late).ok());
  auto newest = cached.messages(conv, query({}, kMessages - 5, 50));
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->back().id, 999u);
}

}  // namespace
}  // namespace imd
