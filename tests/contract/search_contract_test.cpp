// The Search port's contract (domain/ports/search.hpp), run against every adapter on the
// Store adapter it indexes: messages are written through the Store port, as the consumer
// writes them, and found (or not) through the Search port.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "domain/ports/search.hpp"
#include "domain/ports/store.hpp"
#include "store/sqlite_search.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"
#include "store_mysql/mysql_search.hpp"
#include "store_mysql/mysql_store.hpp"
#include "store_mysql/mysql_test_support.hpp"

namespace imd {
namespace {

using testing::channel_msg;
using testing::dm_msg;
using testing::make_user;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Store& store() = 0;
  virtual Search& search() = 0;
  // Empties the index and queues every stored message for the back-fill (as an upgraded
  // database starts), then runs back-fill steps: true while more remains.
  virtual void forget_index() = 0;
  virtual bool backfill_step() = 0;
};

class SqliteBackend final : public Backend {
 public:
  SqliteBackend()
      : db_(testing::open_db(dir_.file("imd.db"))),
        store_(std::make_unique<SqliteStore>(db_)),
        search_(std::make_unique<SqliteSearch>(db_)) {}
  Store& store() override { return *store_; }
  Search& search() override { return *search_; }
  void forget_index() override {
    auto r = search_->index().write([](SqliteConnection& c) -> Result<void> {
      IMD_TRY(c.exec("DELETE FROM message_fts"));
      // Past every queued row: the back-fill alone fills the index.
      IMD_TRY(
          c.exec("UPDATE search_state SET applied ="
                 " (SELECT COALESCE(MAX(seq), 0) FROM imd.search_queue)"));
      return c.exec("UPDATE search_state SET pending_lo = 0, pending_hi = 9223372036854775807");
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  bool backfill_step() override {
    auto r = search_->backfill_step();
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && *r;
  }

 private:
  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<SqliteSearch> search_;
};

// A scratch database on the MariaDB of the CTest fixture `mariadb` (started with Mroonga).
class MysqlBackend final : public Backend {
 public:
  explicit MysqlBackend(MysqlConfig server)
      : scratch_(std::move(server)),
        db_(std::make_shared<MysqlDatabase>(scratch_.config())),
        store_(std::make_unique<MysqlStore>(db_)),
        search_(std::make_unique<MysqlSearch>(db_)) {}
  ~MysqlBackend() override {
    search_.reset();
    store_.reset();
    db_.reset();  // connections before the scratch database goes
  }
  Store& store() override { return *store_; }
  Search& search() override { return *search_; }
  void forget_index() override {
    auto r = db_->write([](MysqlConnection& c) -> Result<void> {
      IMD_TRY(c.execute_text("DELETE FROM message_fts"));
      return c.execute_text(
          "UPDATE search_state SET pending_lo = 0, pending_hi = 18446744073709551615");
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  bool backfill_step() override {
    auto r = search_->backfill_step();
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && *r;
  }

 private:
  testing::ScratchDatabase scratch_;
  std::shared_ptr<MysqlDatabase> db_;
  std::unique_ptr<MysqlStore> store_;
  std::unique_ptr<MysqlSearch> search_;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};
void PrintTo(const BackendParam& p, std::ostream* os) {
  *os << p.name;
}

constexpr Id kAlice = 1, kBob = 2, kCarol = 3;
constexpr Id kSpace = 10, kChannel = 20, kOtherChannel = 21;

class SearchContract : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << testing::kMysqlSkipReason;
    for (auto [id, name] : {std::pair{kAlice, "alice"}, {kBob, "bob"}, {kCarol, "carol"}}) {
      ASSERT_TRUE(store().create_user(make_user(id, name), "h").ok());
    }
    ASSERT_TRUE(
        store()
            .create_space(Space{.id = kSpace, .name = "s", .avatar = "", .owner_id = kAlice})
            .ok());
    for (Id ch : {kChannel, kOtherChannel}) {
      ASSERT_TRUE(store()
                      .create_channel(Channel{.id = ch,
                                              .space_id = kSpace,
                                              .name = "c" + std::to_string(ch),
                                              .avatar = "",
                                              .owner_id = kAlice})
                      .ok());
    }
    // Bob is in kChannel only; Carol in neither.
    ASSERT_TRUE(store().add_space_member(kSpace, kBob, 1).ok());
    ASSERT_TRUE(store().add_channel_member(kChannel, kBob, 1).ok());
  }

  Store& store() { return backend_->store(); }

  void append(NewMessage nm) {
    auto r = store().append_messages(std::span<const NewMessage>(&nm, 1));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE((*r)[0].ok()) << (*r)[0].error().message;
  }
  void post(Id id, Id channel, Id from, std::string body) {
    append(channel_msg(id, channel, from, "c" + std::to_string(id), std::move(body)));
  }
  void change(Id id, const ConvKey& conv, Id from, Change kind, std::string body = {}) {
    NewMessage nm;
    nm.msg.id = id;
    nm.msg.conv = conv;
    nm.msg.from = from;
    nm.msg.body = std::move(body);
    nm.msg.created_at = 900000 + static_cast<Millis>(id);
    nm.change = kind;
    nm.change_id = 1000000 + id + static_cast<Id>(kind);
    auto r = store().change_messages(std::span<const NewMessage>(&nm, 1));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE((*r)[0].ok()) << (*r)[0].error().message;
  }

  SearchPage find(Id user, std::vector<std::string> terms, SearchQuery q = {}) {
    q.terms = std::move(terms);
    auto r = backend_->search().search(user, q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : SearchPage{};
  }
  std::vector<Id> ids(Id user, std::vector<std::string> terms, SearchQuery q = {}) {
    std::vector<Id> out;
    for (const auto& m : find(user, std::move(terms), q).hits) out.push_back(m.id);
    return out;
  }

  std::unique_ptr<Backend> backend_;
};

using Ids = std::vector<Id>;

TEST_P(SearchContract, ChineseIsFoundInsideAWordByTwoThreeAndOneCharacters) {
  post(101, kChannel, kAlice, "离线消息缓存已经满了");
  post(102, kChannel, kAlice, "没有相关的内容");
  EXPECT_EQ(ids(kBob, {"消息"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"消息缓"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"缓"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"离线消息缓存已经满了"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"内容"}), Ids{102});
  EXPECT_TRUE(ids(kBob, {"消息满"}).empty());
}

TEST_P(SearchContract, JapaneseAndKoreanToo) {
  post(101, kChannel, kAlice, "明日の会議は東京で行います");
  post(102, kChannel, kAlice, "오늘 회의는 서울에서 합니다");
  EXPECT_EQ(ids(kBob, {"東京"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"会議は"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"서울"}), Ids{102});
}

TEST_P(SearchContract, LatinIsCaseInsensitiveAndEveryTermMustOccur) {
  post(101, kChannel, kAlice, "Deploy the Release on Friday");
  post(102, kChannel, kAlice, "friday lunch?");
  EXPECT_EQ(ids(kBob, {"DEPLOY"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"friday"}), (Ids{102, 101}));
  EXPECT_EQ(ids(kBob, {"release", "FRIDAY"}), Ids{101});
  EXPECT_TRUE(ids(kBob, {"release", "lunch"}).empty());
  EXPECT_EQ(ids(kBob, {"the release on"}), Ids{101});  // a phrase, spaces included
  EXPECT_EQ(ids(kBob, {"on", "lunch"}), Ids{});        // short + long: both must occur
  EXPECT_EQ(ids(kBob, {"on", "deploy"}), Ids{101});
  // Every piece of a word somewhere is not the word.
  post(103, kChannel, kAlice, "abcd xbcde");
  EXPECT_TRUE(ids(kBob, {"abcde"}).empty());
  EXPECT_EQ(ids(kBob, {"bcde"}), Ids{103});
}

TEST_P(SearchContract, QuerySyntaxAndPatternCharactersAreLiteral) {
  post(101, kChannel, kAlice, "it is 100% done");
  post(102, kChannel, kAlice, "snake_case AND \"quoted\" NEAR(x) col:val *star*");
  post(103, kChannel, kAlice, "plain text only here");
  EXPECT_EQ(ids(kBob, {"%"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"100%"}), Ids{101});
  EXPECT_EQ(ids(kBob, {"_"}), Ids{102});
  EXPECT_EQ(ids(kBob, {"e_c"}), Ids{102});
  EXPECT_EQ(ids(kBob, {"\"quoted\""}), Ids{102});
  EXPECT_EQ(ids(kBob, {"\""}), Ids{102});
  EXPECT_EQ(ids(kBob, {"NEAR(x)"}), Ids{102});
  EXPECT_EQ(ids(kBob, {"col:val"}), Ids{102});
  EXPECT_EQ(ids(kBob, {"*"}), Ids{102});
  EXPECT_EQ(ids(kBob, {"AND"}), Ids{102});
  EXPECT_TRUE(ids(kBob, {"OR"}).empty());
  EXPECT_TRUE(ids(kBob, {"\\"}).empty());
}

TEST_P(SearchContract, AnEditedMessageIsFoundByItsNewTextOnlyAndADeletedOneNever) {
  post(101, kChannel, kAlice, "the old wording");
  post(102, kChannel, kAlice, "to be removed soon");
  change(101, ConvKey::channel(kChannel), kAlice, Change::edit, "the new phrasing");
  change(102, ConvKey::channel(kChannel), kAlice, Change::erase);
  EXPECT_TRUE(ids(kBob, {"wording"}).empty());
  auto page = find(kBob, {"phrasing"});
  ASSERT_EQ(page.hits.size(), 1u);
  EXPECT_EQ(page.hits[0].body, "the new phrasing");
  EXPECT_NE(page.hits[0].edited_at, 0);
  EXPECT_TRUE(ids(kBob, {"removed"}).empty());
  EXPECT_TRUE(ids(kBob, {"to"}).empty());
  // A reaction rewrites the row but not the text: the message stays found, once.
  NewMessage react;
  react.msg.id = 101;
  react.msg.conv = ConvKey::channel(kChannel);
  react.msg.from = kBob;
  react.msg.body = "👍";
  react.msg.created_at = 999999;
  react.change = Change::react;
  react.change_id = 5555;
  react.react_on = true;
  ASSERT_TRUE(store().change_messages(std::span<const NewMessage>(&react, 1)).ok());
  EXPECT_EQ(ids(kBob, {"phrasing"}), Ids{101});
}

TEST_P(SearchContract, OnlyConversationsTheCallerMayReadAreSearched) {
  post(101, kChannel, kAlice, "budget numbers in the open channel");
  post(102, kOtherChannel, kAlice, "budget numbers in a channel bob is not in");
  append(dm_msg(103, kAlice, kCarol, "d103", "budget numbers for carol only"));
  append(dm_msg(104, kAlice, kBob, "d104", "budget numbers for bob"));
  EXPECT_EQ(ids(kAlice, {"budget"}), (Ids{104, 103, 102, 101}));
  EXPECT_EQ(ids(kBob, {"budget"}), (Ids{104, 101}));
  EXPECT_EQ(ids(kCarol, {"budget"}), Ids{103});
  // Asking for a conversation one cannot read finds nothing there either.
  SearchQuery in_other;
  in_other.in = ConvKey::channel(kOtherChannel);
  EXPECT_TRUE(ids(kBob, {"budget"}, in_other).empty());
  SearchQuery in_dm;
  in_dm.in = ConvKey::dm(kAlice, kCarol);
  EXPECT_TRUE(ids(kBob, {"budget"}, in_dm).empty());
  // Leaving a channel takes its messages out of one's results.
  ASSERT_TRUE(store().remove_channel_member(kChannel, kBob).ok());
  EXPECT_EQ(ids(kBob, {"budget"}), Ids{104});
  // Joining lets one find its history (history before joining is readable).
  ASSERT_TRUE(store().add_channel_member(kOtherChannel, kBob, 5).ok());
  EXPECT_EQ(ids(kBob, {"budget"}), (Ids{104, 102}));
}

TEST_P(SearchContract, PagesGoNewestFirstWithoutGapsOrRepeats) {
  for (Id id = 101; id <= 125; ++id)
    post(id, kChannel, kAlice, "status report " + std::to_string(id));
  post(200, kChannel, kAlice, "unrelated");
  SearchQuery q;
  q.limit = 10;
  std::vector<Id> seen;
  std::vector<std::size_t> sizes;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = find(kBob, {"report"}, q);
    sizes.push_back(page.hits.size());
    for (const auto& m : page.hits) seen.push_back(m.id);
    if (!page.next_before) break;
    q.before_id = *page.next_before;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10, 5}));
  Ids expected;
  for (Id id = 125; id >= 101; --id) expected.push_back(id);
  EXPECT_EQ(seen, expected);
  // Exactly a page's worth: no next page is announced.
  q = {};
  q.limit = 25;
  EXPECT_FALSE(find(kBob, {"report"}, q).next_before.has_value());
}

TEST_P(SearchContract, HitsCarryWhereAndWhenAndWho) {
  post(101, kChannel, kAlice, "first");
  post(102, kChannel, kBob, "the hit");
  append(dm_msg(103, kBob, kAlice, "d1", "a hit in a dm"));
  auto page = find(kAlice, {"hit"});
  ASSERT_EQ(page.hits.size(), 2u);
  const Message& dm = page.hits[0];
  EXPECT_EQ(dm.id, 103u);
  EXPECT_EQ(dm.conv, ConvKey::dm(kAlice, kBob));
  EXPECT_EQ(dm.seq, 1u);
  EXPECT_EQ(dm.from, kBob);
  EXPECT_EQ(dm.to, kAlice);
  EXPECT_EQ(dm.type, "text");
  EXPECT_EQ(dm.created_at, 5000 + 103);
  const Message& ch = page.hits[1];
  EXPECT_EQ(ch.id, 102u);
  EXPECT_EQ(ch.conv, ConvKey::channel(kChannel));
  EXPECT_EQ(ch.seq, 2u);
  EXPECT_EQ(ch.from, kBob);
  EXPECT_EQ(ch.body, "the hit");
}

TEST_P(SearchContract, FiltersNarrowByConversationSenderAndTime) {
  post(101, kChannel, kAlice, "plan A");              // created_at 5101
  post(102, kChannel, kBob, "plan B");                // 5102
  append(dm_msg(103, kAlice, kBob, "d1", "plan C"));  // 5103
  post(104, kChannel, kAlice, "plan D");              // 5104
  SearchQuery in;
  in.in = ConvKey::channel(kChannel);
  EXPECT_EQ(ids(kBob, {"plan"}, in), (Ids{104, 102, 101}));
  in.in = ConvKey::dm(kBob, kAlice);
  EXPECT_EQ(ids(kBob, {"plan"}, in), Ids{103});
  SearchQuery from;
  from.from = kAlice;
  EXPECT_EQ(ids(kBob, {"plan"}, from), (Ids{104, 103, 101}));
  SearchQuery window;
  window.after = 5101;
  window.before = 5104;
  EXPECT_EQ(ids(kBob, {"plan"}, window), (Ids{103, 102}));
  SearchQuery all;
  all.in = ConvKey::channel(kChannel);
  all.from = kAlice;
  all.before = 5104;
  EXPECT_EQ(ids(kBob, {"plan"}, all), Ids{101});
}

TEST_P(SearchContract, TheBackFillIndexesMessagesStoredBeforeTheIndexNewestFirst) {
  for (Id id = 101; id <= 110; ++id) {
    post(id, kChannel, kAlice, "archived line " + std::to_string(id));
  }
  append(dm_msg(111, kAlice, kBob, "d111", "archived dm"));
  change(105, ConvKey::channel(kChannel), kAlice, Change::erase);
  backend_->forget_index();
  auto before = find(kBob, {"archived"});
  EXPECT_TRUE(before.hits.empty());
  EXPECT_TRUE(before.indexing);
  int steps = 0;
  while (backend_->backfill_step() && steps < 100) ++steps;
  SearchQuery all;
  all.limit = 50;
  auto after = find(kBob, {"archived"}, all);
  EXPECT_FALSE(after.indexing);
  Ids got;
  for (const auto& m : after.hits) got.push_back(m.id);
  EXPECT_EQ(got, (Ids{111, 110, 109, 108, 107, 106, 104, 103, 102, 101}));
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, SearchContract,
    ::testing::Values(BackendParam{
        "sqlite", [] { return std::unique_ptr<Backend>(std::make_unique<SqliteBackend>()); }}),
    [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Mysql, SearchContract,
                         ::testing::Values(BackendParam{
                             "mariadb_mroonga",
                             []() -> std::unique_ptr<Backend> {
                               auto server = testing::mysql_test_config();
                               if (!server) return nullptr;
                               return std::make_unique<MysqlBackend>(*server);
                             }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace imd
