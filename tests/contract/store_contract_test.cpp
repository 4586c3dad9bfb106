// The Store port's contract, run against every adapter: SQLite (a database in a temporary
// directory) and MySQL (a scratch database on the MariaDB of the CTest fixture `mariadb`).
// A behaviour the domain relies on belongs here, so that both adapters keep it; what only one
// engine can show (pools, reconnects, migrations) is in the adapter's own tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "domain/ports/file_store.hpp"
#include "domain/ports/store.hpp"
#include "store/sqlite_file_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"
#include "store_mysql/mysql_file_store.hpp"
#include "store_mysql/mysql_store.hpp"
#include "store_mysql/mysql_test_support.hpp"

namespace imd {
namespace {

using testing::channel_msg;
using testing::dm_msg;
using testing::make_user;

// --- the adapters under test

// One database of one adapter, empty at first. open() (re)opens a store on it; the data stays
// between opens.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Store& open() = 0;
  // The FileStore on the same database (after open()).
  virtual FileStore& files() = 0;
  virtual void close() = 0;
  virtual int migrations_applied() const = 0;
  // A single integer from SQL valid in both dialects, with two integer parameters; -1 when
  // there is no row. For the few columns the port does not expose (last_ack_message_id).
  virtual std::int64_t scalar(std::string_view sql, std::int64_t a, std::int64_t b) = 0;
  virtual std::string engine() const = 0;
};

class SqliteBackend final : public Backend {
 public:
  Store& open() override {
    close();
    db_ = testing::open_db(dir_.file("imd.db"));
    store_ = std::make_unique<SqliteStore>(db_);
    files_ = std::make_unique<SqliteFileStore>(db_);
    return *store_;
  }
  FileStore& files() override { return *files_; }
  void close() override {
    files_.reset();
    store_.reset();
    db_.reset();
  }
  int migrations_applied() const override { return db_->migrations_applied(); }
  std::int64_t scalar(std::string_view sql, std::int64_t a, std::int64_t b) override {
    auto r = db_->read([&](SqliteConnection& c) -> Result<std::int64_t> {
      auto s = c.prepare(sql);
      if (!s.ok()) return s.error();
      s->bind_all(a, b);
      auto row = s->step();
      if (!row.ok()) return row.error();
      return *row ? s->column_int64(0) : -1;
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -2;
  }
  std::string engine() const override { return "sqlite (synchronous=NORMAL, WAL)"; }

 private:
  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<SqliteFileStore> files_;
};

class MysqlBackend final : public Backend {
 public:
  explicit MysqlBackend(MysqlConfig server) : scratch_(std::move(server)) {}
  ~MysqlBackend() override { close(); }  // connections first, then the scratch database
  Store& open() override {
    close();
    db_ = std::make_shared<MysqlDatabase>(scratch_.config());
    store_ = std::make_unique<MysqlStore>(db_);
    files_ = std::make_unique<MysqlFileStore>(db_);
    return *store_;
  }
  FileStore& files() override { return *files_; }
  void close() override {
    files_.reset();
    store_.reset();
    db_.reset();
  }
  int migrations_applied() const override { return db_->migrations_applied(); }
  std::int64_t scalar(std::string_view sql, std::int64_t a, std::int64_t b) override {
    auto r = db_->read([&](MysqlConnection& c) -> Result<std::int64_t> {
      auto s = c.run(sql, a, b);
      if (!s.ok()) return s.error();
      auto row = (*s)->fetch();
      if (!row.ok()) return row.error();
      return *row ? (*s)->column_int64(0) : -1;
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -2;
  }
  std::string engine() const override { return "mariadb (InnoDB, loopback TCP)"; }

 private:
  testing::ScratchDatabase scratch_;
  std::shared_ptr<MysqlDatabase> db_;
  std::unique_ptr<MysqlStore> store_;
  std::unique_ptr<MysqlFileStore> files_;
};

struct BackendParam {
  std::string name;
  // nullptr: the adapter cannot run here (the reason goes to the skip message).
  std::function<std::unique_ptr<Backend>()> make;
};

void PrintTo(const BackendParam& p, std::ostream* os) {
  *os << p.name;
}

std::unique_ptr<Backend> make_sqlite() {
  return std::make_unique<SqliteBackend>();
}

std::unique_ptr<Backend> make_mysql() {
  auto server = testing::mysql_test_config();
  if (!server) return nullptr;
  return std::make_unique<MysqlBackend>(*server);
}

// --- queries

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

constexpr std::string_view kLastAckMessageId =
    "SELECT last_ack_message_id FROM channel_user WHERE channel_id = ? AND user_id = ?";

class StoreContract : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << testing::kMysqlSkipReason;
    open();
  }
  void TearDown() override {
    store_ = nullptr;
    backend_.reset();
  }

  void open() { store_ = &backend_->open(); }
  void close() {
    store_ = nullptr;
    backend_->close();
  }
  Store& store() { return *store_; }

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
  void add_channel(Id id, Id space_id, Id owner) {
    auto r = store_->create_channel(Channel{.id = id,
                                            .space_id = space_id,
                                            .name = "chan" + std::to_string(id),
                                            .avatar = "c.png",
                                            .owner_id = owner,
                                            .created_at = 2});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // Joins the channel's space first, as the port requires.
  Result<bool> join(Id channel, Id user, Millis now) {
    auto ch = store_->channel_by_id(channel);
    if (ch.ok()) (void)store_->add_space_member(ch->space_id, user, now);
    return store_->add_channel_member(channel, user, now);
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

  // Every message of a conversation, paged forward; checks seqs are exactly 1..n.
  void expect_dense(const ConvKey& conv, std::uint64_t n) {
    std::uint64_t expect = 0;
    for (std::uint64_t cursor = 0; cursor < n;) {
      auto page = store_->messages(conv, after(cursor, 100));
      ASSERT_TRUE(page.ok()) << page.error().message;
      ASSERT_FALSE(page->empty()) << "missing messages after seq " << cursor;
      for (const Message& m : *page) ASSERT_EQ(m.seq, ++expect);
      cursor = page->back().seq;
    }
    EXPECT_TRUE(store_->messages(conv, after(n))->empty());
  }

  std::unique_ptr<Backend> backend_;
  Store* store_ = nullptr;
};

// --- users and sessions

// Readiness (GET /readyz) asks the engine for one round trip.
TEST_P(StoreContract, PingAnswers) {
  auto r = store().ping();
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST_P(StoreContract, CreatesAndFindsUsers) {
  add_user(1, "Alice");
  auto by_phone = store().user_by_phone("+15551");
  ASSERT_TRUE(by_phone.ok()) << by_phone.error().message;
  EXPECT_EQ(by_phone->user.id, 1u);
  EXPECT_EQ(by_phone->user.name, "Alice");
  EXPECT_EQ(by_phone->user.avatar, "a1");
  EXPECT_EQ(by_phone->user.created_at, 1001);
  EXPECT_EQ(by_phone->password_hash, "hash1");

  auto by_id = store().user_by_id(1);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->phone, "+15551");

  EXPECT_EQ(store().user_by_id(2).error().code, Errc::not_found);
  EXPECT_EQ(store().user_by_phone("+19999").error().code, Errc::not_found);
  EXPECT_EQ(store().user_by_phone("").error().code, Errc::not_found);

  // Users without a phone: several may exist, none is found by an empty phone.
  User a{.id = 6, .name = "A", .avatar = "", .phone = "", .created_at = 1};
  User b{.id = 7, .name = "B", .avatar = "", .phone = "", .created_at = 1};
  ASSERT_TRUE(store().create_user(a, "h").ok());
  ASSERT_TRUE(store().create_user(b, "h").ok());
  EXPECT_EQ(store().user_by_id(7)->phone, "");
  EXPECT_EQ(store().user_by_phone("").error().code, Errc::not_found);
}

TEST_P(StoreContract, DuplicatePhoneIsAConflict) {
  add_user(1, "Alice");
  auto r = store().create_user(make_user(2, "Bob", "+15551"), "h");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().message, "phone already registered");
  auto same_id = store().create_user(make_user(1, "Carol", "+17777"), "h");
  EXPECT_EQ(same_id.error().code, Errc::conflict);
  EXPECT_EQ(same_id.error().message, "user id already exists");
}

TEST_P(StoreContract, PhonesAndCidsCompareExactly) {
  // Case, and trailing spaces, make different keys (no case folding, no PAD SPACE).
  ASSERT_TRUE(store().create_user(make_user(1, "a", "+1555x"), "h").ok());
  ASSERT_TRUE(store().create_user(make_user(2, "b", "+1555X"), "h").ok());
  ASSERT_TRUE(store().create_user(make_user(3, "c", "+1555x "), "h").ok());
  EXPECT_EQ(store().user_by_phone("+1555X")->user.id, 2u);
  EXPECT_EQ(store().user_by_phone("+1555x ")->user.id, 3u);
  auto out = append_ok({dm_msg(10, 1, 2, "cid"), dm_msg(11, 1, 2, "CID"), dm_msg(12, 1, 2, "cid "),
                        dm_msg(13, 1, 2, "cid")});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_FALSE(out[1].duplicate);
  EXPECT_FALSE(out[2].duplicate);
  EXPECT_TRUE(out[3].duplicate);
  EXPECT_EQ(out[3].msg.id, 10u);
}

TEST_P(StoreContract, UsersByNameIsCaseInsensitiveAndExact) {
  add_user(1, "Alice");
  add_user(2, "ALICE");
  add_user(3, "Alicia");
  add_user(4, "alice");
  add_user(5, "alice ");
  auto r = store().users_by_name("aLiCe", 10);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id, 1u);
  EXPECT_EQ((*r)[1].id, 2u);
  EXPECT_EQ((*r)[2].id, 4u);
  auto limited = store().users_by_name("alice", 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 2u);
  EXPECT_TRUE(store().users_by_name("nobody", 10)->empty());
}

// The ids of a list of users, in order (none when the call failed, which fails the test).
std::vector<Id> ids(const Result<std::vector<User>>& r) {
  std::vector<Id> out;
  EXPECT_TRUE(r.ok());
  if (r.ok()) {
    for (const auto& u : *r) out.push_back(u.id);
  }
  return out;
}

// The directory: a case-insensitive prefix in (name, id) order after the cursor, never the
// viewer or a deactivated user, with shared_space_only only people sharing a space.
TEST_P(StoreContract, DirectoryUsersArePrefixedPagedAndVisible) {
  add_user(1, "viewer");
  add_user(2, "alice");
  add_user(3, "ALBERT");
  add_user(4, "Alice");
  add_user(5, "alina");
  add_user(6, "Alistair");
  add_user(7, "bob");
  add_user(8, "al%x");
  add_space(10, 1);
  for (Id u : {1, 2, 3, 4, 5, 7, 8}) ASSERT_TRUE(store().add_space_member(10, u, 5).ok());
  ASSERT_TRUE(store().set_account_state(5, 0, true, 9).ok());  // alina, deactivated
  using V = std::vector<Id>;
  // Alistair shares no space; "alice" and "Alice" tie on the name, then go by id.
  EXPECT_EQ(ids(store().directory_users(1, "ALI", "", 0, true, 10)), (V{2, 4}));
  EXPECT_EQ(ids(store().directory_users(1, "ali", "", 0, false, 10)), (V{2, 4, 6}));
  EXPECT_EQ(ids(store().directory_users(1, "al", "", 0, true, 2)), (V{8, 3}));
  EXPECT_EQ(ids(store().directory_users(1, "al", "ALBERT", 3, true, 2)), (V{2, 4}));
  EXPECT_EQ(ids(store().directory_users(1, "al", "alice", 2, true, 2)), (V{4}));
  EXPECT_EQ(ids(store().directory_users(1, "al%", "", 0, true, 10)), (V{8}));
  EXPECT_TRUE(ids(store().directory_users(1, "a_", "", 0, true, 10)).empty());
  EXPECT_EQ(ids(store().directory_users(1, "", "", 0, true, 10)), (V{8, 3, 2, 4, 7}));
  EXPECT_EQ(ids(store().directory_users(7, "v", "", 0, true, 10)), (V{1}));
  EXPECT_TRUE(ids(store().directory_users(6, "", "", 0, true, 10)).empty());
  auto all = store().directory_users(1, "", "", 0, true, 10);
  ASSERT_TRUE(all.ok());
  for (const auto& u : *all) EXPECT_EQ(u.phone, "");  // phones are not read
}

// The same answers when the viewer's spaces hold many members (the name index's walk rather
// than reading the co-members: kDirectoryByMembersBelow in sql_store_impl.hpp).
TEST_P(StoreContract, DirectoryUsersWithManyCoMembers) {
  add_user(1, "viewer");
  add_space(10, 1);
  ASSERT_TRUE(store().add_space_member(10, 1, 5).ok());
  for (Id u = 2; u <= 5002; ++u) {
    add_user(u, "m" + std::to_string(u));
    ASSERT_TRUE(store().add_space_member(10, u, 5).ok());
  }
  add_user(6000, "Zed");
  add_user(6001, "Zoe");  // in no space
  add_user(6002, "Zack");
  for (Id u : {6000, 6002}) ASSERT_TRUE(store().add_space_member(10, u, 5).ok());
  ASSERT_TRUE(store().set_account_state(6002, 0, true, 9).ok());
  using V = std::vector<Id>;
  EXPECT_EQ(ids(store().directory_users(1, "z", "", 0, true, 10)), (V{6000}));
  EXPECT_EQ(ids(store().directory_users(1, "", "", 0, true, 3)), (V{10, 100, 1000}));
  EXPECT_EQ(ids(store().directory_users(1, "M", "m1000", 1000, true, 2)), (V{1001, 1002}));
  EXPECT_EQ(ids(store().directory_users(1, "m5002", "", 0, true, 10)), (V{5002}));
}

TEST_P(StoreContract, TextIsStoredAsUtf8) {
  User u{.id = 1, .name = "Zoë 🚀", .avatar = "ä.png", .phone = "+15550", .created_at = 1};
  ASSERT_TRUE(store().create_user(u, "h").ok());
  EXPECT_EQ(store().user_by_id(1)->name, "Zoë 🚀");
  // Only ASCII case folding is common to every adapter (SQLite's NOCASE).
  auto found = store().users_by_name("zoë 🚀", 10);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  add_user(2, "Bob");
  const std::string body = "emoji 😀, CJK 漢字, RTL שלום, NUL-free \t tab";
  append_ok({dm_msg(5, 1, 2, "c-😀", body)});
  auto page = store().messages(ConvKey::dm(1, 2), newest());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].body, body);
  EXPECT_EQ((*page)[0].cid, "c-😀");
  auto dup = append_ok({dm_msg(6, 1, 2, "c-😀", "again")});
  EXPECT_TRUE(dup[0].duplicate);
}

TEST_P(StoreContract, UpdatesUserFieldsThatAreGiven) {
  add_user(1, "Alice");
  auto renamed = store().update_user(1, std::string("Alicia"), std::nullopt);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->name, "Alicia");
  EXPECT_EQ(renamed->avatar, "a1");
  auto avatar = store().update_user(1, std::nullopt, std::string("new.png"));
  ASSERT_TRUE(avatar.ok());
  EXPECT_EQ(avatar->name, "Alicia");
  EXPECT_EQ(avatar->avatar, "new.png");
  EXPECT_EQ(store().user_by_id(1)->avatar, "new.png");
  auto same = store().update_user(1, std::string("Alicia"), std::nullopt);  // no change: found
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->name, "Alicia");
  EXPECT_EQ(store().update_user(9, std::string("x"), std::nullopt).error().code, Errc::not_found);
}

// An update that matches a row finds it whatever it sets: counting changed rows instead of
// matched ones (MariaDB without CLIENT_FOUND_ROWS) would make these not_found.
TEST_P(StoreContract, UpdatesThatChangeNothingStillFindTheRow) {
  add_user(1, "Alice");
  add_space(10, 1);
  auto user = store().update_user(1, std::nullopt, std::nullopt);
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->name, "Alice");
  EXPECT_EQ(user->phone, "+15551");
  EXPECT_EQ(user->created_at, 1001);
  auto space = store().update_space(10, std::string("space10"), std::nullopt);
  ASSERT_TRUE(space.ok()) << space.error().message;
  EXPECT_EQ(space->name, "space10");
  EXPECT_EQ(space->owner_id, 1u);
  EXPECT_EQ(store().update_space(99, std::nullopt, std::nullopt).error().code, Errc::not_found);
  EXPECT_EQ(store().update_user(99, std::nullopt, std::nullopt).error().code, Errc::not_found);
}

TEST_P(StoreContract, RefreshTokensAreSingleUse) {
  add_user(1, "Alice");
  ASSERT_TRUE(store().save_refresh_token({"t1", 1, 10'000}).ok());
  EXPECT_EQ(store().save_refresh_token({"t1", 1, 10'000}).error().code, Errc::conflict);

  // No reuse window: the token ends when it is taken.
  auto taken = store().take_refresh_token("t1", 5'000, 5'000);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  EXPECT_EQ(taken->token_hash, "t1");
  EXPECT_EQ(taken->user_id, 1u);
  EXPECT_EQ(taken->expires_at, 10'000);
  EXPECT_EQ(store().take_refresh_token("t1", 5'000, 5'000).error().code, Errc::not_found);

  ASSERT_TRUE(store().save_refresh_token({"t2", 1, 10'000}).ok());
  EXPECT_EQ(store().take_refresh_token("t2", 10'000, 10'000).error().code,
            Errc::not_found);  // expired
  EXPECT_TRUE(store().take_refresh_token("t2", 9'999, 9'999).ok());

  ASSERT_TRUE(store().save_refresh_token({"t3", 1, 10'000}).ok());
  ASSERT_TRUE(store().revoke_refresh_token("t3").ok());
  EXPECT_EQ(store().take_refresh_token("t3", 1, 1).error().code, Errc::not_found);
  EXPECT_TRUE(store().revoke_refresh_token("t3").ok());
  EXPECT_EQ(store().revoke_refresh_token("nope").error().code, Errc::not_found);
  EXPECT_EQ(store().take_refresh_token("nope", 1, 1).error().code, Errc::not_found);
  // A token for a user that does not exist.
  EXPECT_EQ(store().save_refresh_token({"t4", 99, 10'000}).error().code, Errc::not_found);
}

// A used token works until its reuse window ends (a retry whose answer was lost), and a later
// use never lengthens the window; revoking (logout everywhere) ends it at once.
TEST_P(StoreContract, UsedRefreshTokensWorkUntilTheirReuseWindowEnds) {
  add_user(1, "Alice");
  ASSERT_TRUE(store().save_refresh_token({"r1", 1, 100'000}).ok());
  ASSERT_TRUE(store().take_refresh_token("r1", 1'000, 3'000).ok());
  ASSERT_TRUE(store().take_refresh_token("r1", 2'999, 50'000).ok());  // within; not lengthened
  EXPECT_EQ(store().take_refresh_token("r1", 3'000, 60'000).error().code, Errc::not_found);

  // The window never outlives the token itself.
  ASSERT_TRUE(store().save_refresh_token({"r2", 1, 5'000}).ok());
  ASSERT_TRUE(store().take_refresh_token("r2", 4'000, 9'000).ok());
  EXPECT_EQ(store().take_refresh_token("r2", 5'000, 9'000).error().code, Errc::not_found);

  ASSERT_TRUE(store().save_refresh_token({"r3", 1, 100'000}).ok());
  ASSERT_TRUE(store().take_refresh_token("r3", 1'000, 61'000).ok());
  auto revoked = store().revoke_refresh_tokens_of(1);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(store().take_refresh_token("r3", 1'001, 61'001).error().code, Errc::not_found);
}

namespace {
LoginSession login_session(Id id, Id user, Millis at, Millis expires_at = 1'000'000) {
  return LoginSession{.id = id,
                      .user_id = user,
                      .created_at = at,
                      .last_used_at = at,
                      .expires_at = expires_at,
                      .user_agent = "Firefox/1",
                      .ip = "10.0.0.1"};
}
}  // namespace

// A session lives until it ends or expires; refresh tokens carry it, and ending it revokes
// them; only its user can end it.
TEST_P(StoreContract, SessionsAreListedTouchedAndEnded) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  ASSERT_TRUE(store().create_session(login_session(100, 1, 1'000), 10).ok());
  ASSERT_TRUE(store().create_session(login_session(101, 1, 2'000, 50'000), 10).ok());
  ASSERT_TRUE(store().create_session(login_session(200, 2, 2'000), 10).ok());
  EXPECT_EQ(store().create_session(login_session(300, 99, 2'000), 10).error().code,
            Errc::not_found);
  EXPECT_EQ(store().create_session(login_session(100, 1, 3'000), 10).error().code, Errc::conflict);

  auto listed = store().sessions_of(1, 3'000, 10);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, 101u);  // most recently used first
  EXPECT_EQ((*listed)[0].user_agent, "Firefox/1");
  EXPECT_EQ((*listed)[0].ip, "10.0.0.1");
  EXPECT_EQ((*listed)[0].created_at, 2'000);
  EXPECT_EQ((*listed)[0].ended_at, 0);
  EXPECT_EQ((*listed)[1].id, 100u);
  // Expired: no longer listed.
  EXPECT_EQ(store().sessions_of(1, 50'000, 10)->size(), 1u);

  ASSERT_TRUE(store().touch_session(100, 4'000, 900'000, "10.0.0.2").ok());
  listed = store().sessions_of(1, 4'000, 10);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, 100u);
  EXPECT_EQ((*listed)[0].last_used_at, 4'000);
  EXPECT_EQ((*listed)[0].expires_at, 900'000);
  EXPECT_EQ((*listed)[0].ip, "10.0.0.2");
  EXPECT_EQ((*listed)[0].created_at, 1'000);

  ASSERT_TRUE(store().save_refresh_token({"s1", 1, 100'000, 100}).ok());
  ASSERT_TRUE(store().save_refresh_token({"s2", 1, 100'000, 101}).ok());
  auto taken = store().take_refresh_token("s1", 5'000, 5'000);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->session_id, 100u);
  ASSERT_TRUE(store().save_refresh_token({"s3", 1, 100'000, 100}).ok());

  EXPECT_EQ(store().end_session(2, 100, 6'000).error().code, Errc::not_found);  // not Bob's
  EXPECT_EQ(store().end_session(1, 999, 6'000).error().code, Errc::not_found);
  ASSERT_TRUE(store().end_session(1, 100, 6'000).ok());
  EXPECT_EQ(store().end_session(1, 100, 7'000).error().code, Errc::not_found);  // ended
  EXPECT_EQ(store().take_refresh_token("s3", 6'001, 6'001).error().code, Errc::not_found);
  EXPECT_TRUE(store().take_refresh_token("s2", 6'001, 6'001).ok());  // the other session's
  EXPECT_EQ(store().touch_session(100, 7'000, 900'000, "").error().code, Errc::not_found);
  listed = store().sessions_of(1, 7'000, 10);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, 101u);

  auto revoked = store().revoke_refresh_token("s2");
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->user_id, 1u);
  EXPECT_EQ(revoked->session_id, 101u);

  auto ended = store().end_sessions_of(1, 8'000);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(*ended, 1u);
  EXPECT_TRUE(store().sessions_of(1, 8'000, 10)->empty());
  EXPECT_EQ(store().sessions_of(2, 8'000, 10)->size(), 1u);
}

// What every process polls: the sessions ended since a time, in the order they ended.
TEST_P(StoreContract, EndedSessionsArePolledByTheirEnd) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  for (Id id : {100, 101, 102})
    ASSERT_TRUE(store().create_session(login_session(id, 1, 10), 10).ok());
  ASSERT_TRUE(store().create_session(login_session(200, 2, 10), 10).ok());
  EXPECT_TRUE(store().sessions_ended(0, 10)->empty());  // live ones are not listed
  ASSERT_TRUE(store().end_session(1, 101, 3'000).ok());
  ASSERT_TRUE(store().end_session(2, 200, 2'000).ok());
  ASSERT_TRUE(store().end_session(1, 100, 4'000).ok());
  auto all = store().sessions_ended(0, 10);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, 200u);
  EXPECT_EQ((*all)[0].user_id, 2u);
  EXPECT_EQ((*all)[0].ended_at, 2'000);
  EXPECT_EQ((*all)[1].id, 101u);
  EXPECT_EQ((*all)[2].id, 100u);
  auto later = store().sessions_ended(3'000, 10);
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[0].id, 101u);
  EXPECT_EQ(store().sessions_ended(0, 1)->size(), 1u);
}

// Beyond the cap, a new session ends the least recently used ones (and says which).
TEST_P(StoreContract, SessionsBeyondTheCapEndLeastRecentlyUsedFirst) {
  add_user(1, "Alice");
  ASSERT_TRUE(store().create_session(login_session(100, 1, 1'000), 2).ok());
  ASSERT_TRUE(store().create_session(login_session(101, 1, 2'000), 2).ok());
  ASSERT_TRUE(store().touch_session(100, 3'000, 1'000'000, "").ok());  // 101 is now the oldest
  ASSERT_TRUE(store().save_refresh_token({"c1", 1, 100'000, 101}).ok());
  auto beyond = store().create_session(login_session(102, 1, 4'000), 2);
  ASSERT_TRUE(beyond.ok()) << beyond.error().message;
  ASSERT_EQ(beyond->size(), 1u);
  EXPECT_EQ(beyond->front(), 101u);
  EXPECT_EQ(store().take_refresh_token("c1", 4'001, 4'001).error().code, Errc::not_found);
  auto listed = store().sessions_of(1, 4'000, 10);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, 102u);
  EXPECT_EQ((*listed)[1].id, 100u);
  auto ended = store().sessions_ended(0, 10);
  ASSERT_EQ(ended->size(), 1u);
  EXPECT_EQ((*ended)[0].ended_at, 4'000);
}

TEST_P(StoreContract, ConcurrentTakesOfOneRefreshTokenSucceedOnce) {
  add_user(1, "Alice");
  constexpr int kThreads = 6, kTokens = 10;
  for (int t = 0; t < kTokens; ++t) {
    ASSERT_TRUE(store().save_refresh_token({"race" + std::to_string(t), 1, 10'000}).ok());
  }
  std::atomic<int> won{0}, lost{0}, failed{0};
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int t = 0; t < kTokens; ++t) {
        auto r = store().take_refresh_token("race" + std::to_string(t), 5'000, 5'000);
        if (r.ok()) {
          ++won;
        } else if (r.error().code == Errc::not_found) {
          ++lost;
        } else {
          ++failed;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), kTokens);
  EXPECT_EQ(lost.load(), kTokens * (kThreads - 1));
  EXPECT_EQ(failed.load(), 0);
}

// --- spaces

TEST_P(StoreContract, SpacesAndMembership) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  auto space = store().space_by_id(10);
  ASSERT_TRUE(space.ok());
  EXPECT_EQ(space->owner_id, 1u);
  EXPECT_EQ(space->name, "space10");
  EXPECT_EQ(store().space_by_id(11).error().code, Errc::not_found);
  EXPECT_EQ(
      store()
          .create_space(Space{.id = 10, .name = "x", .avatar = "", .owner_id = 1, .created_at = 1})
          .error()
          .code,
      Errc::conflict);
  EXPECT_EQ(
      store()
          .create_space(Space{.id = 12, .name = "x", .avatar = "", .owner_id = 99, .created_at = 1})
          .error()
          .code,
      Errc::not_found);
  EXPECT_EQ(store().space_by_id(12).error().code, Errc::not_found);

  EXPECT_TRUE(*store().is_space_member(10, 1));  // the owner
  EXPECT_FALSE(*store().is_space_member(10, 2));
  EXPECT_TRUE(*store().add_space_member(10, 2, 50));
  EXPECT_FALSE(*store().add_space_member(10, 2, 60));
  EXPECT_TRUE(*store().is_space_member(10, 2));
  EXPECT_EQ(store().add_space_member(99, 2, 60).error().code, Errc::not_found);
  EXPECT_EQ(store().add_space_member(10, 99, 60).error().code, Errc::not_found);

  add_space(11, 2);
  auto of_bob = store().spaces_of_user(2, 0, 100);
  ASSERT_TRUE(of_bob.ok());
  ASSERT_EQ(of_bob->size(), 2u);
  EXPECT_EQ((*of_bob)[0].id, 10u);
  EXPECT_EQ((*of_bob)[1].id, 11u);
  EXPECT_EQ(store().spaces_of_user(1, 0, 100)->size(), 1u);
  // Keyset pages: after an id, at most `limit`.
  auto first = store().spaces_of_user(2, 0, 1);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().id, 10u);
  auto second = store().spaces_of_user(2, 10, 1);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ(second->front().id, 11u);
  EXPECT_TRUE(store().spaces_of_user(2, 11, 1)->empty());
  // Quota counts.
  EXPECT_EQ(*store().count(Store::Counted::spaces_owned_by, 2), 1u);
  EXPECT_EQ(*store().count(Store::Counted::spaces_owned_by, 3), 0u);
  EXPECT_EQ(*store().count(Store::Counted::members_in_space, 10), 2u);

  auto updated = store().update_space(10, std::nullopt, std::string("s.png"));
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "space10");
  EXPECT_EQ(updated->avatar, "s.png");
  EXPECT_EQ(store().update_space(99, std::string("x"), std::nullopt).error().code, Errc::not_found);
}

// --- access: roles, discoverable spaces, invitations, bans, blocks

TEST_P(StoreContract, RolesTransferAndDiscoverableSpaces) {
  add_user(1, "Owner");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_space(11, 2);
  ASSERT_TRUE(*store().add_space_member(10, 2, 5));
  EXPECT_EQ(*store().space_role(10, 1), SpaceRole::owner);
  EXPECT_EQ(*store().space_role(10, 2), SpaceRole::member);
  EXPECT_EQ(store().space_role(10, 3).error().code, Errc::not_found);
  EXPECT_TRUE(*store().set_space_role(10, 2, SpaceRole::admin));
  EXPECT_TRUE(*store().set_space_role(10, 2, SpaceRole::admin));  // unchanged, still a member
  EXPECT_EQ(*store().space_role(10, 2), SpaceRole::admin);
  EXPECT_FALSE(*store().set_space_role(10, 3, SpaceRole::admin));   // not a member
  EXPECT_FALSE(*store().set_space_role(10, 1, SpaceRole::member));  // the owner's row stays
  auto members = store().space_members(10, 0, 10);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].role, SpaceRole::owner);
  EXPECT_EQ((*members)[1].role, SpaceRole::admin);

  EXPECT_EQ(store().transfer_space(10, 1, 3).error().code, Errc::forbidden);  // not a member
  EXPECT_EQ(store().transfer_space(10, 2, 1).error().code, Errc::conflict);   // not the owner
  EXPECT_EQ(*store().space_role(10, 1), SpaceRole::owner);  // the failed attempt rolled back
  auto moved = store().transfer_space(10, 1, 2);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->owner_id, 2u);
  EXPECT_EQ(*store().space_role(10, 2), SpaceRole::owner);
  EXPECT_EQ(*store().space_role(10, 1), SpaceRole::admin);

  EXPECT_FALSE(store().space_by_id(10)->discoverable);
  EXPECT_TRUE(store().discoverable_spaces(0, 10)->empty());
  EXPECT_TRUE(store().set_space_discoverable(11, true)->discoverable);
  EXPECT_TRUE(store().set_space_discoverable(10, true)->discoverable);
  auto listed = store().discoverable_spaces(0, 1);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, 10u);
  EXPECT_EQ(store().discoverable_spaces(10, 10)->front().id, 11u);
  EXPECT_TRUE(store().discoverable_spaces(~Id{0}, 10)->empty());
  EXPECT_FALSE(store().set_space_discoverable(11, false)->discoverable);
  EXPECT_EQ(store().discoverable_spaces(0, 10)->size(), 1u);
  EXPECT_EQ(store().set_space_discoverable(99, true).error().code, Errc::not_found);
}

TEST_P(StoreContract, InvitationsAreUsedAtMostMaxUsesTimes) {
  for (Id u = 1; u <= 12; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 1);
  const Invite inv{.code = "c0de",
                   .space_id = 10,
                   .created_by = 1,
                   .created_at = 100,
                   .expires_at = 1000,
                   .max_uses = 3,
                   .uses = 0};
  ASSERT_TRUE(store().create_invite(inv).ok());
  EXPECT_EQ(store().create_invite(inv).error().code, Errc::conflict);
  EXPECT_EQ(store().usable_invite("c0de", 999)->space_id, 10u);
  EXPECT_EQ(store().usable_invite("c0de", 1000).error().code, Errc::not_found);  // expired
  EXPECT_EQ(store().usable_invite("C0DE", 999).error().code, Errc::not_found);   // exact
  EXPECT_EQ(store().accept_invite("c0de", 2, 1000).error().code, Errc::not_found);

  auto owner = store().accept_invite("c0de", 1, 500);  // a member consumes nothing
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(owner->outcome, InviteOutcome::already_member);
  // Ten users race for three uses: three get in.
  std::vector<std::thread> racers;
  std::atomic<int> joined{0}, gone{0};
  for (Id u = 3; u <= 12; ++u) {
    racers.emplace_back([&, u] {
      auto r = store().accept_invite("c0de", u, 500);
      if (r.ok() && r->outcome == InviteOutcome::joined) ++joined;
      if (!r.ok() && r.error().code == Errc::not_found) ++gone;
    });
  }
  for (auto& t : racers) t.join();
  EXPECT_EQ(joined.load(), 3);
  EXPECT_EQ(gone.load(), 7);
  EXPECT_EQ(*store().count(Store::Counted::members_in_space, 10), 4u);
  EXPECT_EQ(store().usable_invite("c0de", 500).error().code, Errc::not_found);
  EXPECT_TRUE(store().invites_of_space(10, 500, 10)->empty());

  ASSERT_TRUE(store()
                  .create_invite(Invite{.code = "two",
                                        .space_id = 10,
                                        .created_by = 1,
                                        .created_at = 200,
                                        .expires_at = 1000,
                                        .max_uses = 5})
                  .ok());
  auto live = store().invites_of_space(10, 500, 10);
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ(live->front().code, "two");
  EXPECT_EQ(live->front().max_uses, 5u);
  EXPECT_FALSE(*store().revoke_invite(11, "two"));  // another space's
  EXPECT_TRUE(*store().revoke_invite(10, "two"));
  EXPECT_EQ(store().accept_invite("two", 2, 500).error().code, Errc::not_found);
}

TEST_P(StoreContract, BansRemoveAndBar) {
  for (Id u = 1; u <= 3; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 1);
  add_channel(20, 10, 1);
  ASSERT_TRUE(*join(20, 2, 5));
  ASSERT_TRUE(store()
                  .create_invite(Invite{.code = "in",
                                        .space_id = 10,
                                        .created_by = 1,
                                        .created_at = 1,
                                        .expires_at = 1000,
                                        .max_uses = 9})
                  .ok());
  EXPECT_TRUE(*store().ban_space_member(10, 2, 1, 7));
  EXPECT_FALSE(*store().is_space_member(10, 2));
  EXPECT_FALSE(*store().is_channel_member(20, 2));
  EXPECT_FALSE(*store().ban_space_member(10, 2, 1, 8));  // banned already, not a member
  EXPECT_FALSE(*store().ban_space_member(10, 3, 1, 8));  // a non-member may be banned
  EXPECT_EQ(store().accept_invite("in", 2, 9)->outcome, InviteOutcome::banned);
  EXPECT_EQ(*store().join_unless_banned(10, 2, 9), InviteOutcome::banned);
  EXPECT_EQ(*store().join_unless_banned(10, 1, 9), InviteOutcome::already_member);
  EXPECT_TRUE(store().usable_invite("in", 9)->uses == 0);  // nothing consumed
  auto bans = store().space_bans(10, 0, 10);
  ASSERT_EQ(bans->size(), 2u);
  EXPECT_EQ((*bans)[0].user_id, 2u);
  EXPECT_EQ((*bans)[0].joined_at, 7);
  EXPECT_TRUE(*store().unban_space_member(10, 2));
  EXPECT_FALSE(*store().unban_space_member(10, 2));
  EXPECT_EQ(*store().join_unless_banned(10, 2, 9), InviteOutcome::joined);
}

TEST_P(StoreContract, PrivateChannelsAndDmPolicy) {
  for (Id u = 1; u <= 4; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 1);
  ASSERT_TRUE(*store().add_space_member(10, 2, 5));
  add_channel(20, 10, 1);
  ASSERT_TRUE(store()
                  .create_channel(Channel{.id = 21,
                                          .space_id = 10,
                                          .name = "secret",
                                          .avatar = "",
                                          .owner_id = 1,
                                          .created_at = 3,
                                          .is_private = true})
                  .ok());
  EXPECT_TRUE(store().channel_by_id(21)->is_private);
  EXPECT_FALSE(store().channel_by_id(20)->is_private);
  auto ids = [&](Id viewer) {
    std::vector<Id> out;
    auto listed = store().visible_channels_of_space(10, viewer, 0, 10);
    EXPECT_TRUE(listed.ok());
    if (listed.ok()) {
      for (const auto& c : *listed) out.push_back(c.id);
    }
    return out;
  };
  EXPECT_EQ(ids(1), (std::vector<Id>{20, 21}));
  EXPECT_EQ(ids(2), std::vector<Id>{20});
  ASSERT_TRUE(*store().add_channel_member(21, 2, 6));
  EXPECT_EQ(ids(2), (std::vector<Id>{20, 21}));
  EXPECT_EQ(store().channels_of_space(10, 0, 10)->size(), 2u);
  auto renamed = store().update_channel(21, std::string("hidden"), std::nullopt);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->name, "hidden");
  EXPECT_TRUE(renamed->is_private);
  EXPECT_EQ(renamed->space_id, 10u);
  EXPECT_EQ(store().update_channel(99, std::string("x"), std::nullopt).error().code,
            Errc::not_found);

  auto policy = store().dm_policy(2, 1);
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->shares_space);
  EXPECT_FALSE(policy->has_conversation);
  EXPECT_FALSE(store().dm_policy(3, 1)->shares_space);
  EXPECT_TRUE(*store().block_user(1, 2, 9));
  EXPECT_FALSE(*store().block_user(1, 2, 9));
  EXPECT_EQ(store().block_user(1, 99, 9).error().code, Errc::not_found);
  EXPECT_TRUE(store().dm_policy(2, 1)->blocked_by_peer);
  EXPECT_TRUE(store().dm_policy(1, 2)->blocked_peer);
  EXPECT_FALSE(store().dm_policy(1, 2)->blocked_by_peer);
  auto blocks = store().blocks_of(1, 0, 10);
  ASSERT_EQ(blocks->size(), 1u);
  EXPECT_EQ(blocks->front().user_id, 2u);
  EXPECT_EQ(blocks->front().name, "u2");
  EXPECT_TRUE(*store().unblock_user(1, 2));
  EXPECT_FALSE(*store().unblock_user(1, 2));
  EXPECT_FALSE(store().dm_policy(2, 1)->blocked_by_peer);

  NewMessage nm;
  nm.msg = Message{.id = 500,
                   .conv = ConvKey::dm(3, 4),
                   .from = 3,
                   .to = 4,
                   .type = "text",
                   .body = "hi",
                   .created_at = 10,
                   .cid = "c1"};
  append_ok({nm});
  EXPECT_TRUE(store().dm_policy(4, 3)->has_conversation);
  EXPECT_FALSE(store().dm_policy(4, 3)->shares_space);
}

TEST_P(StoreContract, SpaceMembersPageByUserId) {
  for (Id u = 1; u <= 5; ++u) add_user(u, "u" + std::to_string(u));
  add_space(10, 3);
  for (Id u : {5, 1, 4, 2}) ASSERT_TRUE(*store().add_space_member(10, u, 100 + u));

  std::vector<Id> seen;
  Id after_id = 0;
  for (int page = 0; page < 3; ++page) {
    auto r = store().space_members(10, after_id, 2);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), page < 2 ? 2u : 1u);
    for (const Member& m : *r) seen.push_back(m.user_id);
    after_id = r->back().user_id;
  }
  EXPECT_EQ(seen, (std::vector<Id>{1, 2, 3, 4, 5}));
  auto past_end = store().space_members(10, 5, 2);
  ASSERT_TRUE(past_end.ok());
  EXPECT_TRUE(past_end->empty());
  auto first = store().space_members(10, 0, 1);
  EXPECT_EQ((*first)[0].name, "u1");
  EXPECT_EQ((*first)[0].avatar, "a1");
  EXPECT_EQ((*first)[0].joined_at, 101);
  EXPECT_TRUE(store().space_members(10, ~0ull, 10)->empty());
}

TEST_P(StoreContract, RemoveSpaceMemberAlsoLeavesItsChannels) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_space(20, 1);
  add_channel(100, 10, 1);
  add_channel(101, 10, 1);
  add_channel(200, 20, 1);
  ASSERT_TRUE(*store().add_space_member(10, 2, 1));
  ASSERT_TRUE(*store().add_space_member(20, 2, 1));
  for (Id ch : {100, 101, 200}) ASSERT_TRUE(*store().add_channel_member(ch, 2, 1));

  auto removed = store().remove_space_member(10, 2);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(*store().is_space_member(10, 2));
  EXPECT_FALSE(*store().is_channel_member(100, 2));
  EXPECT_FALSE(*store().is_channel_member(101, 2));
  EXPECT_TRUE(*store().is_channel_member(200, 2));  // another space's channel
  EXPECT_TRUE(*store().is_channel_member(100, 1));  // other members untouched
  EXPECT_FALSE(*store().remove_space_member(10, 2));
  EXPECT_EQ(store().conversations(2)->size(), 1u);
  // Outside the space, its channels cannot be joined.
  EXPECT_EQ(store().add_channel_member(100, 2, 1).error().code, Errc::forbidden);
}

// The user cache's loader: both id lists, ascending; not_found for no such user.
TEST_P(StoreContract, MembershipsOfUserListSpacesAndChannelsInOrder) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(20, 1);
  add_space(10, 1);
  add_channel(200, 20, 1);
  add_channel(101, 10, 1);
  add_channel(100, 10, 1);
  auto alice = store().memberships_of_user(1);
  ASSERT_TRUE(alice.ok()) << alice.error().message;
  EXPECT_EQ(alice->spaces, (std::vector<Id>{10, 20}));
  EXPECT_EQ(alice->channels, (std::vector<Id>{100, 101, 200}));

  auto bob = store().memberships_of_user(2);
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(bob->spaces.empty());
  EXPECT_TRUE(bob->channels.empty());
  ASSERT_TRUE(*store().add_space_member(10, 2, 1));
  ASSERT_TRUE(*join(101, 2, 1));
  EXPECT_EQ(*store().memberships_of_user(2), (Memberships{{10}, {101}}));
  ASSERT_TRUE(*store().remove_space_member(10, 2));
  EXPECT_EQ(*store().memberships_of_user(2), (Memberships{}));

  auto nobody = store().memberships_of_user(999);
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.error().code, Errc::not_found);
}

// --- channels

TEST_P(StoreContract, ChannelsAndMembership) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  // Only space members may create channels in it.
  EXPECT_EQ(store()
                .create_channel(
                    Channel{.id = 101, .space_id = 10, .name = "y", .avatar = "", .owner_id = 2})
                .error()
                .code,
            Errc::forbidden);
  EXPECT_EQ(store().channel_by_id(101).error().code, Errc::not_found);
  ASSERT_TRUE(*store().add_space_member(10, 2, 3));
  add_channel(101, 10, 2);

  auto ch = store().channel_by_id(100);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->space_id, 10u);
  EXPECT_EQ(ch->name, "chan100");
  EXPECT_EQ(ch->avatar, "c.png");
  EXPECT_EQ(ch->owner_id, 1u);
  EXPECT_EQ(ch->created_at, 2);
  EXPECT_EQ(ch->last_seq, 0u);
  EXPECT_EQ(store().channel_by_id(999).error().code, Errc::not_found);
  auto of_space = store().channels_of_space(10, 0, 100);
  ASSERT_TRUE(of_space.ok());
  ASSERT_EQ(of_space->size(), 2u);
  EXPECT_EQ((*of_space)[1].id, 101u);
  EXPECT_EQ((*of_space)[1].space_id, 10u);
  EXPECT_TRUE(store().channels_of_space(11, 0, 100)->empty());
  auto after_first = store().channels_of_space(10, (*of_space)[0].id, 100);
  ASSERT_EQ(after_first->size(), 1u);
  EXPECT_EQ(after_first->front().id, 101u);
  EXPECT_EQ(*store().count(Store::Counted::channels_in_space, 10), 2u);
  EXPECT_EQ(store()
                .create_channel(
                    Channel{.id = 102, .space_id = 99, .name = "x", .avatar = "", .owner_id = 1})
                .error()
                .code,
            Errc::not_found);
  EXPECT_EQ(store().channel_by_id(102).error().code, Errc::not_found);  // rolled back
  EXPECT_EQ(store()
                .create_channel(
                    Channel{.id = 100, .space_id = 10, .name = "x", .avatar = "", .owner_id = 1})
                .error()
                .code,
            Errc::conflict);

  EXPECT_TRUE(*store().is_channel_member(100, 1));  // the owner
  EXPECT_TRUE(*join(100, 3, 7));
  EXPECT_TRUE(*join(100, 2, 7));
  EXPECT_FALSE(*join(100, 2, 8));
  EXPECT_EQ(store().add_channel_member(999, 2, 8).error().code, Errc::not_found);
  // An unknown user is no member of the space either.
  EXPECT_EQ(store().add_channel_member(100, 99, 8).error().code, Errc::forbidden);
  add_user(4, "Dave");  // known, but not in the space
  EXPECT_EQ(store().add_channel_member(100, 4, 8).error().code, Errc::forbidden);
  EXPECT_FALSE(*store().is_channel_member(100, 4));

  EXPECT_EQ(*store().channel_member_ids(100), (std::vector<Id>{1, 2, 3}));
  auto page = store().channel_members(100, 1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].user_id, 2u);
  EXPECT_EQ((*page)[0].name, "Bob");
  EXPECT_EQ((*page)[0].joined_at, 7);
  EXPECT_TRUE(store().channel_members(100, 3, 10)->empty());
  EXPECT_TRUE(store().channel_members(100, ~0ull, 10)->empty());

  EXPECT_TRUE(*store().remove_channel_member(100, 2));
  EXPECT_FALSE(*store().remove_channel_member(100, 2));
  EXPECT_EQ(*store().channel_member_ids(100), (std::vector<Id>{1, 3}));
}

TEST_P(StoreContract, NewChannelMemberStartsAtTheChannelsLastSeq) {
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
  EXPECT_EQ(backend_->scalar(kLastAckMessageId, 100, 2), 3);
  // History before joining stays readable.
  EXPECT_EQ(seqs(ConvKey::channel(100), newest()), (std::vector<std::uint64_t>{1, 2, 3}));
}

// --- messages

TEST_P(StoreContract, AssignsDenseSeqPerConversationAcrossBatches) {
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
  auto ch = store().channel_by_id(100);
  EXPECT_EQ(ch->last_seq, 12u);
  EXPECT_EQ(ch->last_message_id, 34u);  // the 12th message to channel 100: id 1 + 3*11

  auto dm = store().messages(ConvKey::dm(1, 3), newest(1));
  ASSERT_EQ(dm->size(), 1u);
  EXPECT_EQ((*dm)[0].from, 3u);
  EXPECT_EQ((*dm)[0].to, 1u);
  EXPECT_EQ((*dm)[0].conv, ConvKey::dm(1, 3));
  EXPECT_EQ((*dm)[0].body, "hi");
  EXPECT_EQ((*dm)[0].type, "text");
  EXPECT_EQ((*dm)[0].cid, "c36");
  EXPECT_EQ((*dm)[0].created_at, 5036);
}

TEST_P(StoreContract, LargeIdsRoundTripExactly) {
  // Snowflake ids use 63 bits; above 2^53 a detour through a double would change them.
  constexpr Id kBase = (Id{1} << 62) + 12345;
  const Id u1 = kBase + 1, u2 = kBase + 2, space = kBase + 10, chan = kBase + 100;
  ASSERT_TRUE(store().create_user(make_user(u1, "big1"), "h").ok());
  ASSERT_TRUE(store().create_user(make_user(u2, "big2"), "h").ok());
  add_space(space, u1);
  add_channel(chan, space, u1);
  ASSERT_TRUE(*join(chan, u2, 1));
  auto out = append_ok({channel_msg(kBase + 1000, chan, u1, "x"), dm_msg(kBase + 1001, u2, u1, "y"),
                        channel_msg(kBase + 1002, chan, u2, "z")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].msg.conv, ConvKey::channel(chan));
  EXPECT_EQ(out[2].msg.seq, 2u);
  auto ch = store().channel_by_id(chan);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->space_id, space);
  EXPECT_EQ(ch->last_message_id, kBase + 1002);
  auto page = store().messages(ConvKey::channel(chan), newest());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, kBase + 1000);
  EXPECT_EQ((*page)[1].from, u2);
  auto dm = conversation(u1, ConvKey::dm(u1, u2));
  ASSERT_TRUE(dm);
  ASSERT_TRUE(dm->last);
  EXPECT_EQ(dm->last->id, kBase + 1001);
  EXPECT_EQ(dm->last->to, u1);
  EXPECT_EQ(*store().advance_read(u2, ConvKey::channel(chan), 2), 2u);
  EXPECT_EQ(*store().channel_member_ids(chan), (std::vector<Id>{u1, u2}));
  auto dup = append_ok({channel_msg(kBase + 2000, chan, u1, "x")});
  EXPECT_TRUE(dup[0].duplicate);
  EXPECT_EQ(dup[0].msg.id, kBase + 1000);
}

TEST_P(StoreContract, DuplicateCidAcrossBatchesReturnsTheOriginal) {
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
  EXPECT_EQ(store().channel_by_id(100)->last_seq, 2u);  // no seq spent on the retry

  // A retry that names another conversation still finds the original (and writes nothing).
  auto cross = append_ok({dm_msg(6, 1, 2, "x", "retry into a dm")});
  EXPECT_TRUE(cross[0].duplicate);
  EXPECT_EQ(cross[0].msg.conv, ConvKey::channel(100));
  EXPECT_EQ(seqs(ConvKey::dm(1, 2), newest()), (std::vector<std::uint64_t>{1}));
}

TEST_P(StoreContract, DuplicateCidWithinOneBatchIsADuplicateOfTheFirst) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  auto out = append_ok({dm_msg(1, 1, 2, "same", "first"), dm_msg(2, 1, 2, "same", "second"),
                        dm_msg(3, 1, 2, "", "no cid"), dm_msg(4, 1, 2, "", "no cid either")});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_TRUE(out[1].duplicate);
  EXPECT_EQ(out[1].msg.id, 1u);
  EXPECT_EQ(out[1].msg.body, "first");
  EXPECT_EQ(out[1].msg.seq, 1u);
  EXPECT_FALSE(out[2].duplicate);  // an empty cid opts out of de-duplication
  EXPECT_FALSE(out[3].duplicate);
  EXPECT_EQ(out[3].msg.seq, 3u);
  EXPECT_EQ(out[3].msg.cid, "");
  EXPECT_EQ(seqs(ConvKey::dm(1, 2), newest()), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_P(StoreContract, AFailedItemLeavesItsCidFreeForALaterItem) {
  add_user(1, "Alice");
  add_space(10, 1);
  add_channel(100, 10, 1);
  // The first use of cid "k" fails (no such channel): the second one is stored, not a dup.
  auto r = store().append_messages(
      std::vector<NewMessage>{channel_msg(1, 999, 1, "k"), channel_msg(2, 100, 1, "k")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].error().code, Errc::not_found);
  ASSERT_TRUE((*r)[1].ok());
  EXPECT_FALSE((*r)[1]->duplicate);
  EXPECT_EQ((*r)[1]->msg.seq, 1u);
}

TEST_P(StoreContract, PerItemFailuresDoNotFailTheBatch) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  NewMessage bad_dm = dm_msg(3, 1, 2, "c3");
  bad_dm.msg.from = 7;  // not a participant of (1, 2)
  NewMessage bad_key = dm_msg(6, 1, 2, "c6");
  bad_key.msg.conv = ConvKey{ConvKind::dm, 2, 1};  // not ordered
  auto r = store().append_messages(
      std::vector<NewMessage>{channel_msg(1, 100, 1, "c1"), channel_msg(2, 999, 1, "c2"), bad_dm,
                              channel_msg(4, 100, 1, "c4"), bad_key, channel_msg(5, 0, 1, "c5")});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ((*r)[0]->msg.seq, 1u);
  EXPECT_EQ((*r)[1].error().code, Errc::not_found);
  EXPECT_EQ((*r)[2].error().code, Errc::invalid_argument);
  EXPECT_EQ((*r)[3]->msg.seq, 2u);
  EXPECT_EQ((*r)[4].error().code, Errc::invalid_argument);
  EXPECT_EQ((*r)[5].error().code, Errc::invalid_argument);
  // The failed item's cid stays free.
  auto retry = append_ok({channel_msg(7, 100, 1, "c2")});
  EXPECT_FALSE(retry[0].duplicate);
  EXPECT_TRUE(store().conversations(7)->empty());
}

TEST_P(StoreContract, AnEngineErrorRollsBackTheWholeBatch) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  // Message id 1 twice with different cids: the second insert violates UNIQUE(message_id).
  auto r = store().append_messages(std::vector<NewMessage>{
      dm_msg(7, 1, 2, "z"), channel_msg(1, 100, 1, "a"), channel_msg(1, 100, 1, "b")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(store().channel_by_id(100)->last_seq, 0u);
  EXPECT_TRUE(store().messages(ConvKey::channel(100), newest())->empty());
  EXPECT_TRUE(store().messages(ConvKey::dm(1, 2), newest())->empty());
  EXPECT_TRUE(store().conversations(2)->empty());
  auto again = append_ok({channel_msg(1, 100, 1, "a")});
  EXPECT_FALSE(again[0].duplicate);
  EXPECT_EQ(again[0].msg.seq, 1u);
  auto z = append_ok({dm_msg(7, 1, 2, "z")});
  EXPECT_FALSE(z[0].duplicate);  // the rolled-back cid is free again
}

TEST_P(StoreContract, SendingMovesOnlyTheSendersReadCursor) {
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
  EXPECT_EQ(backend_->scalar(kLastAckMessageId, 100, 1), 0);
  EXPECT_FALSE(conversation(3, ConvKey::channel(100)));
  EXPECT_FALSE(*store().is_channel_member(100, 3));

  auto bob_dm = conversation(2, ConvKey::dm(2, 3));
  ASSERT_TRUE(bob_dm);
  EXPECT_EQ(bob_dm->read_seq, 2u);
  EXPECT_EQ(bob_dm->ack_seq, 0u);
  auto carol_dm = conversation(3, ConvKey::dm(2, 3));
  ASSERT_TRUE(carol_dm);
  EXPECT_EQ(carol_dm->read_seq, 0u);
  EXPECT_EQ(carol_dm->ack_seq, 0u);
  EXPECT_EQ(carol_dm->last_seq, 2u);

  // A sender's read cursor never moves back: an older own message after reading further.
  ASSERT_TRUE(store().advance_read(2, ConvKey::channel(100), 4).ok());
  append_ok({channel_msg(7, 100, 1, "g")});
  EXPECT_EQ(conversation(2, ConvKey::channel(100))->read_seq, 4u);
}

TEST_P(StoreContract, HistoryPagesBeforeAfterAndNewest) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  std::vector<NewMessage> batch;
  for (Id i = 1; i <= 10; ++i) batch.push_back(channel_msg(i, 100, 1, "c" + std::to_string(i)));
  for (Id i = 11; i <= 15; ++i) {
    batch.push_back(dm_msg(i, 1 + i % 2, 2 - i % 2, "d" + std::to_string(i)));
  }
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
  EXPECT_EQ(seqs(dm, after(~0ull)), (V{}));
  EXPECT_EQ(seqs(dm, before(~0ull, 2)), (V{4, 5}));
  auto msgs = store().messages(dm, after(0, 1));
  EXPECT_EQ((*msgs)[0].id, 11u);
  EXPECT_EQ((*msgs)[0].from, 2u);
  EXPECT_EQ((*msgs)[0].to, 1u);
  EXPECT_EQ(seqs(ConvKey::dm(1, 3), newest()), (V{}));

  auto both = store().messages(ch, [] {
    HistoryQuery q = before(5);
    q.after_seq = 1;
    return q;
  }());
  EXPECT_EQ(both.error().code, Errc::invalid_argument);
  auto bad = store().messages(ConvKey{ConvKind::dm, 2, 1}, newest());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

// A message known only by its id and conversation.
Message message_at(Id id, const ConvKey& conv) {
  Message m;
  m.id = id;
  m.conv = conv;
  return m;
}

// A change of a stored message (edit, erase), as MessagingService::change queues it.
NewMessage change_of(const Message& m, Change kind, Id by, Id change_id, std::string body = {}) {
  NewMessage n;
  n.change = kind;
  n.change_id = change_id;
  n.msg.id = m.id;
  n.msg.conv = m.conv;
  n.msg.from = by;
  n.msg.body = std::move(body);
  n.msg.created_at = 9000 + static_cast<Millis>(change_id);
  return n;
}

// Edits and deletes: a rev per conversation (dense, separate from seq), the message's current
// state everywhere it is read (history, by id, the conversation list), the tombstone keeps its
// seq and loses its body, and only the sender may change it.
TEST_P(StoreContract, ChangesNumberEachConversationAndLeaveTheCurrentState) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(join(100, 2, 3).ok());
  auto stored = append_ok({channel_msg(1, 100, 1, "c1", "one"), channel_msg(2, 100, 1, "c2", "two"),
                           channel_msg(3, 100, 2, "c3", "three"), dm_msg(4, 1, 2, "d1", "dm one"),
                           dm_msg(5, 2, 1, "d2", "dm two")});
  ASSERT_EQ(stored.size(), 5u);
  const ConvKey ch = ConvKey::channel(100), dm = ConvKey::dm(1, 2);

  auto by_id = store().message_by_id(4);
  ASSERT_TRUE(by_id.ok()) << by_id.error().message;
  EXPECT_EQ(by_id->conv, dm);
  EXPECT_EQ(by_id->rev, 0u);
  EXPECT_EQ(store().message_by_id(3)->conv, ch);
  EXPECT_EQ(store().message_by_id(999).error().code, Errc::not_found);

  auto r = store().change_messages(std::vector<NewMessage>{
      change_of(stored[0].msg, Change::edit, 1, 71, "one, edited"),
      change_of(stored[1].msg, Change::erase, 1, 72),
      change_of(stored[3].msg, Change::edit, 1, 73, "dm one, edited"),
      change_of(stored[2].msg, Change::edit, 1, 74, "not hers"),          // forbidden
      change_of(stored[1].msg, Change::edit, 1, 75, "after the delete"),  // not_found
      change_of(message_at(999, ch), Change::erase, 1, 76),               // not_found
      change_of(message_at(4, ch), Change::erase, 1, 77),                 // another conversation
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 7u);
  ASSERT_TRUE((*r)[0].ok()) << (*r)[0].error().message;
  EXPECT_EQ((*r)[0]->msg.rev, 1u);
  EXPECT_EQ((*r)[0]->msg.change, Change::edit);
  EXPECT_EQ((*r)[0]->msg.body, "one, edited");
  EXPECT_EQ((*r)[0]->msg.edited_at, 9071);
  ASSERT_TRUE((*r)[1].ok());
  EXPECT_EQ((*r)[1]->msg.rev, 2u);
  EXPECT_TRUE((*r)[1]->msg.deleted);
  EXPECT_TRUE((*r)[1]->msg.body.empty());
  ASSERT_TRUE((*r)[2].ok());
  EXPECT_EQ((*r)[2]->msg.rev, 1u);  // the DM counts its own changes
  EXPECT_EQ((*r)[3].error().code, Errc::forbidden);
  EXPECT_EQ((*r)[4].error().code, Errc::not_found);
  EXPECT_EQ((*r)[5].error().code, Errc::not_found);
  EXPECT_EQ((*r)[6].error().code, Errc::not_found);

  // History shows the current state; the tombstone keeps seq 2 and has no body.
  auto page = store().messages(ch, newest());
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].body, "one, edited");
  EXPECT_EQ((*page)[0].edited_at, 9071);
  EXPECT_EQ((*page)[1].seq, 2u);
  EXPECT_TRUE((*page)[1].deleted);
  EXPECT_TRUE((*page)[1].body.empty());
  EXPECT_EQ((*page)[2].body, "three");
  EXPECT_EQ((*page)[2].rev, 0u);
  EXPECT_EQ(backend_->scalar("SELECT COUNT(*) FROM channel_message WHERE body = 'two' AND "
                             "channel_id = ? AND seq = ?",
                             100, 2),
            0);
  EXPECT_EQ(store().message_by_id(4)->body, "dm one, edited");
  EXPECT_EQ(conversation(2, ch)->last_rev, 2u);
  EXPECT_EQ(conversation(1, dm)->last_rev, 1u);
  EXPECT_EQ(conversation(2, dm)->last_rev, 1u);

  // The same change again (a redelivery) is a duplicate: nothing written, no new rev.
  auto again = store().change_messages(
      std::vector<NewMessage>{change_of(stored[0].msg, Change::edit, 1, 71, "one, edited")});
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)[0].ok());
  EXPECT_TRUE((*again)[0]->duplicate);
  EXPECT_EQ((*again)[0]->msg.rev, 1u);
  EXPECT_EQ(conversation(2, ch)->last_rev, 2u);
}

// Reactions: anyone's, toggled per (emoji, user), each a change with its rev; a reaction that
// changes nothing writes nothing; bounded per message; gone with a delete.
TEST_P(StoreContract, ReactionsAreChangesBoundedPerMessage) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  auto stored = append_ok({dm_msg(1, 1, 2, "d1", "react to me")});
  ASSERT_EQ(stored.size(), 1u);
  const Message& m = stored[0].msg;
  Id next = 100;
  auto react = [&](Id by, std::string emoji, bool on) {
    NewMessage n = change_of(m, Change::react, by, ++next, std::move(emoji));
    n.react_on = on;
    auto r = store().change_messages(std::vector<NewMessage>{n});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? (*r)[0] : Result<Changed>(make_error(Errc::internal, "engine"));
  };
  auto r1 = react(2, "\xf0\x9f\x91\x8d", true);  // bob, thumbs up
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->msg.rev, 1u);
  EXPECT_EQ(r1->msg.change, Change::react);
  auto r2 = react(1, "\xf0\x9f\x91\x8d", true);  // alice too
  ASSERT_TRUE(r2.ok());
  auto r3 = react(1, "ok", true);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->msg.rev, 3u);
  EXPECT_EQ(r3->msg.reactions, (std::vector<Reaction>{{"\xf0\x9f\x91\x8d", {1, 2}}, {"ok", {1}}}));
  auto again = react(1, "ok", true);  // already there: nothing written
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  auto absent = react(2, "ok", false);
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->duplicate);
  auto off = react(1, "ok", false);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->msg.rev, 4u);
  EXPECT_EQ(off->msg.reactions, (std::vector<Reaction>{{"\xf0\x9f\x91\x8d", {1, 2}}}));
  // Read back everywhere: history, by id, changes.
  auto page = store().messages(ConvKey::dm(1, 2), newest());
  ASSERT_TRUE(page.ok());
  EXPECT_EQ((*page)[0].reactions, off->msg.reactions);
  EXPECT_EQ(store().message_by_id(1)->reactions, off->msg.reactions);
  auto changed =
      store().changes(ConvKey::dm(1, 2),
                      {.after_rev = 0, .up_to_rev = 9, .after_seq = 0, .up_to_seq = 9, .limit = 9});
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].rev, 4u);
  EXPECT_EQ((*changed)[0].reactions, off->msg.reactions);
  // At most kMaxReactionEmoji emoji.
  for (std::size_t i = 1; i < kMaxReactionEmoji; ++i) {
    ASSERT_TRUE(react(2, "e" + std::to_string(i), true).ok());
  }
  auto full = react(2, "one-too-many", true);
  EXPECT_EQ(full.error().code, Errc::payload_too_large);
  // A delete takes them with the body.
  auto erased =
      store().change_messages(std::vector<NewMessage>{change_of(m, Change::erase, 1, 999)});
  ASSERT_TRUE(erased.ok() && (*erased)[0].ok());
  EXPECT_TRUE((*erased)[0]->msg.reactions.empty());
  EXPECT_TRUE(store().message_by_id(1)->reactions.empty());
  EXPECT_EQ(react(2, "late", true).error().code, Errc::not_found);
}

// Mentions are stored with the messages that carry them and count, per member and
// conversation, what lies after the member's read marker.
TEST_P(StoreContract, MentionsCountAfterTheReadMarker) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(join(100, 2, 3).ok());
  ASSERT_TRUE(join(100, 3, 3).ok());
  auto mention = [](NewMessage n, std::vector<Id> who) {
    n.mentions = std::move(who);
    return n;
  };
  append_ok({mention(channel_msg(1, 100, 1, "c1"), {2, 3}), channel_msg(2, 100, 1, "c2"),
             mention(channel_msg(3, 100, 1, "c3"), {2}), mention(dm_msg(4, 1, 2, "d1"), {2})});
  // A duplicate of a stored cid adds nothing.
  append_ok({mention(channel_msg(5, 100, 1, "c3"), {2})});
  const ConvKey ch = ConvKey::channel(100), dm = ConvKey::dm(1, 2);
  EXPECT_EQ(conversation(2, ch)->mentions, 2u);
  EXPECT_EQ(conversation(3, ch)->mentions, 1u);
  EXPECT_EQ(conversation(1, ch)->mentions, 0u);
  EXPECT_EQ(conversation(2, dm)->mentions, 1u);
  ASSERT_TRUE(store().advance_read(2, ch, 2).ok());
  EXPECT_EQ(conversation(2, ch)->mentions, 1u);
  ASSERT_TRUE(store().advance_read(2, ch, 3).ok());
  ASSERT_TRUE(store().advance_read(2, dm, 1).ok());
  EXPECT_EQ(conversation(2, ch)->mentions, 0u);
  EXPECT_EQ(conversation(2, dm)->mentions, 0u);
  EXPECT_EQ(conversation(3, ch)->mentions, 1u);
}

// Changes by rev cursor: each changed message once, at its current state, ascending by rev,
// within the rev and seq bounds, paged by rev.
TEST_P(StoreContract, ChangesAreReadByRevWithinBounds) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  std::vector<NewMessage> batch;
  for (Id i = 1; i <= 6; ++i) batch.push_back(dm_msg(i, 1, 2, "d" + std::to_string(i)));
  auto stored = append_ok(batch);
  ASSERT_EQ(stored.size(), 6u);
  const ConvKey dm = ConvKey::dm(1, 2);
  // seq 2 edited (rev 1), seq 5 edited (rev 2), seq 2 edited again (rev 3), seq 4 erased (rev 4).
  auto r = store().change_messages(
      std::vector<NewMessage>{change_of(stored[1].msg, Change::edit, 1, 81, "2a"),
                              change_of(stored[4].msg, Change::edit, 1, 82, "5a"),
                              change_of(stored[1].msg, Change::edit, 1, 83, "2b"),
                              change_of(stored[3].msg, Change::erase, 1, 84)});
  ASSERT_TRUE(r.ok());
  for (auto& c : *r) ASSERT_TRUE(c.ok()) << c.error().message;

  auto read = [&](ChangeQuery q) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;  // (rev, seq)
    auto got = store().changes(dm, q);
    EXPECT_TRUE(got.ok()) << got.error().message;
    if (got.ok()) {
      for (const auto& m : *got) out.emplace_back(m.rev, m.seq);
    }
    return out;
  };
  using V = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_EQ(read({.after_rev = 0, .up_to_rev = 4, .after_seq = 0, .up_to_seq = 6, .limit = 10}),
            (V{{2, 5}, {3, 2}, {4, 4}}));  // seq 2's first edit is superseded by rev 3
  EXPECT_EQ(read({.after_rev = 2, .up_to_rev = 4, .after_seq = 0, .up_to_seq = 6, .limit = 10}),
            (V{{3, 2}, {4, 4}}));
  EXPECT_EQ(read({.after_rev = 0, .up_to_rev = 3, .after_seq = 0, .up_to_seq = 6, .limit = 10}),
            (V{{2, 5}, {3, 2}}));
  EXPECT_EQ(read({.after_rev = 0, .up_to_rev = 4, .after_seq = 0, .up_to_seq = 4, .limit = 10}),
            (V{{3, 2}, {4, 4}}));
  EXPECT_EQ(read({.after_rev = 0, .up_to_rev = 4, .after_seq = 2, .up_to_seq = 6, .limit = 10}),
            (V{{2, 5}, {4, 4}}));
  EXPECT_EQ(read({.after_rev = 0, .up_to_rev = 4, .after_seq = 0, .up_to_seq = 6, .limit = 2}),
            (V{{2, 5}, {3, 2}}));
  EXPECT_EQ(
      read({.after_rev = 0, .up_to_rev = ~0ull, .after_seq = 0, .up_to_seq = ~0ull, .limit = 10})
          .size(),
      3u);
  auto rows = store().changes(
      dm, {.after_rev = 3, .up_to_rev = 4, .after_seq = 0, .up_to_seq = 6, .limit = 10});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_TRUE((*rows)[0].deleted);
  EXPECT_EQ((*rows)[0].change, Change::erase);
  EXPECT_TRUE(
      store()
          .changes(ConvKey::dm(1, 3),
                   {.after_rev = 0, .up_to_rev = 9, .after_seq = 0, .up_to_seq = 9, .limit = 10})
          ->empty());
  EXPECT_EQ(store().changes(ConvKey{ConvKind::dm, 2, 1}, {}).error().code, Errc::invalid_argument);
}

// An archived channel keeps its history and refuses new messages and edits (a delete still
// goes); unarchived, it takes them again.
TEST_P(StoreContract, ArchivedChannelsAreReadOnly) {
  add_user(1, "Alice");
  add_space(10, 1);
  add_channel(100, 10, 1);
  auto first = append_ok({channel_msg(1, 100, 1, "c1", "before"), channel_msg(2, 100, 1, "c2")});
  ASSERT_EQ(first.size(), 2u);
  auto set = store().set_channel_settings(100, true, std::nullopt);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_TRUE(set->archived);
  EXPECT_FALSE(set->history_from_join);
  EXPECT_TRUE(store().channel_by_id(100)->archived);
  EXPECT_TRUE(store().channels_of_space(10, 0, 10)->front().archived);
  EXPECT_EQ(store().set_channel_settings(999, true, std::nullopt).error().code, Errc::not_found);

  auto r = store().append_messages(
      std::vector<NewMessage>{channel_msg(3, 100, 1, "c3"), channel_msg(4, 100, 1, "c1")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  ASSERT_FALSE((*r)[0].ok());
  EXPECT_EQ((*r)[0].error().code, Errc::forbidden);
  ASSERT_TRUE((*r)[1].ok()) << "a retry of a stored send is still its duplicate";
  EXPECT_TRUE((*r)[1]->duplicate);
  EXPECT_EQ(seqs(ConvKey::channel(100), newest()), (std::vector<std::uint64_t>{1, 2}));

  auto changed = store().change_messages(std::vector<NewMessage>{
      change_of(first[0].msg, Change::edit, 1, 71, "edited"),
      change_of(first[1].msg, Change::erase, 1, 72),
  });
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  ASSERT_FALSE((*changed)[0].ok());
  EXPECT_EQ((*changed)[0].error().code, Errc::forbidden);
  ASSERT_TRUE((*changed)[1].ok()) << (*changed)[1].error().message;
  EXPECT_TRUE((*changed)[1]->msg.deleted);
  EXPECT_EQ(store().message_by_id(1)->body, "before");

  ASSERT_TRUE(store().set_channel_settings(100, false, true).ok());
  EXPECT_FALSE(store().channel_by_id(100)->archived);
  EXPECT_TRUE(store().channel_by_id(100)->history_from_join);
  auto again = append_ok({channel_msg(5, 100, 1, "c5")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].msg.seq, 3u);
}

// history_from_join: a member's floor is the channel's last_seq when they joined, while the
// channel says so; the conversation list carries it and shows no last message below it.
TEST_P(StoreContract, HistoryFloorIsTheJoinSeqWhileTheChannelSaysSo) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  append_ok({channel_msg(1, 100, 1, "c1"), channel_msg(2, 100, 1, "c2")});
  ASSERT_TRUE(*join(100, 2, 3));
  EXPECT_EQ(*store().history_floor(100, 2), 0u);
  ASSERT_TRUE(store().set_channel_settings(100, std::nullopt, true).ok());
  EXPECT_EQ(*store().history_floor(100, 2), 2u);
  EXPECT_EQ(*store().history_floor(100, 1), 0u) << "the creator joined at 0";
  EXPECT_EQ(store().history_floor(100, 3).error().code, Errc::not_found);
  auto st = conversation(2, ConvKey::channel(100));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->history_floor, 2u);
  EXPECT_FALSE(st->last) << "the last message is before the floor";
  append_ok({channel_msg(3, 100, 1, "c3")});
  st = conversation(2, ConvKey::channel(100));
  ASSERT_TRUE(st && st->last);
  EXPECT_EQ(st->last->seq, 3u);
  EXPECT_EQ(conversation(1, ConvKey::channel(100))->history_floor, 0u);
  ASSERT_TRUE(store().set_channel_settings(100, std::nullopt, false).ok());
  EXPECT_EQ(*store().history_floor(100, 2), 0u);
}

// A deleted channel leaves nothing of itself: no row, membership, message, cid or mention; its
// members and file messages are handed back; other channels keep theirs.
TEST_P(StoreContract, DeletedChannelsLeaveNothingBehind) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  add_channel(101, 10, 1);
  ASSERT_TRUE(*join(100, 2, 3));
  NewMessage file = channel_msg(3, 100, 2, "c3", "{\"id\":\"f\"}\ncaption");
  file.msg.type = "file";
  NewMessage mention = channel_msg(4, 100, 1, "c4", "hi <@2>");
  mention.mentions = {2};
  append_ok({channel_msg(1, 100, 1, "c1"), channel_msg(2, 100, 2, "c2"), file, mention,
             channel_msg(5, 101, 1, "c5")});
  ASSERT_EQ(conversation(2, ConvKey::channel(100))->mentions, 1u);

  auto deleted = store().delete_channel(100);
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted->channel.space_id, 10u);
  EXPECT_EQ(deleted->members, (std::vector<Id>{1, 2}));
  ASSERT_EQ(deleted->file_messages.size(), 1u);
  EXPECT_EQ(deleted->file_messages[0].id, 3u);
  EXPECT_EQ(deleted->file_messages[0].body, "{\"id\":\"f\"}\ncaption");

  EXPECT_EQ(store().channel_by_id(100).error().code, Errc::not_found);
  EXPECT_EQ(store().delete_channel(100).error().code, Errc::not_found);
  EXPECT_TRUE(store().channel_member_ids(100)->empty());
  EXPECT_FALSE(conversation(2, ConvKey::channel(100)));
  EXPECT_EQ(store().message_by_id(1).error().code, Errc::not_found);
  EXPECT_TRUE(store().messages(ConvKey::channel(100), newest())->empty());
  EXPECT_EQ(backend_->scalar("SELECT COUNT(*) FROM channel_message WHERE channel_id = ? OR ? = 0",
                             100, 1),
            0);
  EXPECT_EQ(backend_->scalar("SELECT COUNT(*) FROM mention WHERE conv_a = ? OR ? = 0", 100, 1), 0);
  EXPECT_EQ(
      backend_->scalar("SELECT COUNT(*) FROM message_cid WHERE message_id < ? OR ? = 0", 5, 1), 0);
  EXPECT_EQ(*store().count(Store::Counted::channels_in_space, 10), 1u);
  // A retried send of a deleted message finds no channel: not a duplicate of something gone.
  auto retry = store().append_messages(std::vector<NewMessage>{channel_msg(1, 100, 1, "c1")});
  ASSERT_TRUE(retry.ok());
  ASSERT_FALSE((*retry)[0].ok());
  EXPECT_EQ((*retry)[0].error().code, Errc::not_found);
  // The other channel is whole.
  EXPECT_EQ(seqs(ConvKey::channel(101), newest()), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(store().message_by_id(5)->body, "hi");
}

TEST_P(StoreContract, CursorsMoveForwardOnlyAndClampToLastSeq) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(*join(100, 2, 1));
  append_ok({channel_msg(1, 100, 1, "a"), channel_msg(2, 100, 1, "b"), channel_msg(3, 100, 1, "c"),
             dm_msg(4, 1, 2, "d"), dm_msg(5, 1, 2, "e")});
  const ConvKey ch = ConvKey::channel(100);

  EXPECT_EQ(*store().advance_read(2, ch, 2), 2u);
  EXPECT_EQ(*store().advance_read(2, ch, 1), 2u);   // never backwards
  EXPECT_EQ(*store().advance_read(2, ch, 99), 3u);  // clamped
  // advance_delivery returns the stored cursor (the cursor cache keeps only that).
  EXPECT_EQ(*store().advance_delivery(2, ch, 2), 2u);
  EXPECT_EQ(conversation(2, ch)->ack_seq, 2u);
  EXPECT_EQ(backend_->scalar(kLastAckMessageId, 100, 2), 2);
  EXPECT_EQ(*store().advance_delivery(2, ch, 1), 2u);
  EXPECT_EQ(conversation(2, ch)->ack_seq, 2u);
  EXPECT_EQ(backend_->scalar(kLastAckMessageId, 100, 2), 2);
  EXPECT_EQ(*store().advance_delivery(2, ch, ~0ull), 3u);
  EXPECT_EQ(conversation(2, ch)->ack_seq, 3u);
  EXPECT_EQ(backend_->scalar(kLastAckMessageId, 100, 2), 3);
  EXPECT_EQ(conversation(2, ch)->read_seq, 3u);  // the cursors are independent

  EXPECT_EQ(store().advance_read(3, ch, 1).error().code, Errc::forbidden);
  EXPECT_EQ(store().advance_delivery(3, ch, 1).error().code, Errc::forbidden);
  EXPECT_EQ(store().advance_read(2, ConvKey::channel(999), 1).error().code, Errc::forbidden);

  const ConvKey dm = ConvKey::dm(1, 2);
  EXPECT_EQ(*store().advance_read(2, dm, 1), 1u);
  EXPECT_EQ(*store().advance_read(2, dm, 10), 2u);
  ASSERT_TRUE(store().advance_delivery(2, dm, 2).ok());
  EXPECT_EQ(conversation(2, dm)->ack_seq, 2u);
  EXPECT_EQ(backend_->scalar(
                "SELECT last_ack_message_id FROM dm_user WHERE user_id = ? AND peer_id = ?", 2, 1),
            5);
  EXPECT_EQ(store().advance_read(3, dm, 1).error().code, Errc::forbidden);  // not a participant
  // A pair that never exchanged a message has no cursor rows yet.
  EXPECT_EQ(store().advance_read(3, ConvKey::dm(1, 3), 1).error().code, Errc::forbidden);
  EXPECT_EQ(store().advance_delivery(3, ConvKey::dm(1, 3), 1).error().code, Errc::forbidden);
  EXPECT_EQ(store().advance_read(2, ConvKey{ConvKind::dm, 2, 1}, 1).error().code,
            Errc::invalid_argument);
}

// The batch form returns the stored cursor of every item it did not skip, in input order.
TEST_P(StoreContract, AdvanceDeliveriesReturnsTheStoredCursors) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_user(3, "Carol");
  add_space(10, 1);
  add_channel(100, 10, 1);
  ASSERT_TRUE(*join(100, 2, 1));
  append_ok({channel_msg(1, 100, 1, "a"), channel_msg(2, 100, 1, "b"), dm_msg(3, 1, 2, "c")});
  const ConvKey ch = ConvKey::channel(100), dm = ConvKey::dm(1, 2);
  std::vector<DeliveryUpdate> batch = {{2, ch, 1},
                                       {3, ch, 1},   // not a member: skipped
                                       {2, dm, 99},  // clamped to last_seq
                                       {2, ch, 50}};
  auto r = store().advance_deliveries(batch);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].conv, ch);
  EXPECT_EQ((*r)[0].seq, 1u);
  EXPECT_EQ((*r)[1].conv, dm);
  EXPECT_EQ((*r)[1].seq, 1u);
  EXPECT_EQ((*r)[2].user, 2u);
  EXPECT_EQ((*r)[2].seq, 2u);
  std::vector<DeliveryUpdate> older = {{2, ch, 1}};
  auto again = store().advance_deliveries(older);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].seq, 2u);  // the cursor as stored, not the older ACK
}

TEST_P(StoreContract, ConversationsCarryUnreadAndTheLastMessage) {
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
  ASSERT_TRUE(store().advance_read(2, ConvKey::channel(100), 1).ok());

  auto all = store().conversations(2);
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
  EXPECT_EQ(busy.last->id, 3u);
  EXPECT_EQ(busy.last->cid, "c");
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

  auto carol = store().conversations(3);
  ASSERT_EQ(carol->size(), 1u);
  EXPECT_EQ((*carol)[0].name, "Bob");
  EXPECT_EQ((*carol)[0].last_seq - (*carol)[0].read_seq, 0u);
  EXPECT_TRUE(store().conversations(99)->empty());
}

// The message path has no foreign keys: a DM with a user the store does not know is stored,
// and listed with an empty name and avatar.
TEST_P(StoreContract, ADmWithAnUnknownPeerIsListedWithoutAName) {
  add_user(1, "Alice");
  append_ok({dm_msg(1, 1, 42, "c1", "hello?")});
  auto st = conversation(1, ConvKey::dm(1, 42));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->name, "");
  EXPECT_EQ(st->avatar, "");
  EXPECT_EQ(st->last_seq, 1u);
  EXPECT_EQ(st->read_seq, 1u);  // one's own message is read
  ASSERT_TRUE(st->last);
  EXPECT_EQ(st->last->body, "hello?");
  EXPECT_EQ(st->last->to, 42u);
}

TEST_P(StoreContract, DataSurvivesAReopenWithoutReapplyingMigrations) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  append_ok({channel_msg(1, 100, 1, "a"), dm_msg(2, 1, 2, "b")});
  EXPECT_GT(backend_->migrations_applied(), 0);
  close();
  open();
  EXPECT_EQ(backend_->migrations_applied(), 0);
  EXPECT_EQ(store().user_by_id(2)->name, "Bob");
  EXPECT_EQ(store().channel_by_id(100)->last_seq, 1u);
  EXPECT_EQ(seqs(ConvKey::dm(1, 2), newest()), (std::vector<std::uint64_t>{1}));
  auto dup = append_ok({channel_msg(3, 100, 1, "a")});
  EXPECT_TRUE(dup[0].duplicate);
  auto next = append_ok({channel_msg(4, 100, 1, "z")});
  EXPECT_EQ(next[0].msg.seq, 2u);
}

// Several consumers storing into one channel at once: the conversation's row lock serializes
// the seq allocation, so the seqs are exactly 1..N.
TEST_P(StoreContract, ConcurrentWritersKeepSeqDense) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  constexpr int kThreads = 4, kBatches = 25, kPerBatch = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::barrier start(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int b = 0; b < kBatches; ++b) {
        std::vector<NewMessage> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          const Id id = 1 + static_cast<Id>((t * kBatches + b) * kPerBatch + i);
          const std::string cid = "c" + std::to_string(id);
          // Mostly the shared channel; some DMs between the same two users (both directions).
          if (i % 5 == 4) {
            batch.push_back(dm_msg(id, t % 2 == 0 ? 1 : 2, t % 2 == 0 ? 2 : 1, cid));
          } else {
            batch.push_back(channel_msg(id, 100, 1 + t % 2, cid));
          }
        }
        auto r = store().append_messages(batch);
        if (!r.ok()) {
          ++failures;
          ADD_FAILURE() << r.error().message;
          continue;
        }
        for (auto& item : *r) {
          if (!item.ok() || item->duplicate) ++failures;
        }
        if (!store().messages(ConvKey::channel(100), newest(10)).ok()) ++failures;
        if (!store().conversations(1).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  constexpr std::uint64_t kDms = kThreads * kBatches * (kPerBatch / 5);
  constexpr std::uint64_t kChannel = kThreads * kBatches * kPerBatch - kDms;
  EXPECT_EQ(store().channel_by_id(100)->last_seq, kChannel);
  expect_dense(ConvKey::channel(100), kChannel);
  expect_dense(ConvKey::dm(1, 2), kDms);
  EXPECT_EQ(conversation(2, ConvKey::dm(1, 2))->last_seq, kDms);
}

// The same (sender, cid) sent by several consumers at once (a redelivered batch racing the
// original) is stored once; every other copy returns it as the duplicate.
TEST_P(StoreContract, ConcurrentRetriesOfOneSendStoreItOnce) {
  add_user(1, "Alice");
  add_user(2, "Bob");
  add_space(10, 1);
  add_channel(100, 10, 1);
  constexpr int kThreads = 4, kSends = 30;
  std::vector<std::vector<Appended>> seen(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int s = 0; s < kSends; ++s) {
        // Each copy carries its own message id, as a re-sent request would.
        const Id id = 1000 + static_cast<Id>(s * kThreads + t);
        const std::string cid = "send" + std::to_string(s);
        auto item = s % 3 == 0 ? dm_msg(id, 1, 2, cid) : channel_msg(id, 100, 1, cid);
        auto r = store().append_messages(std::vector<NewMessage>{item});
        ASSERT_TRUE(r.ok()) << r.error().message;
        ASSERT_TRUE((*r)[0].ok()) << (*r)[0].error().message;
        seen[t].push_back(*(*r)[0]);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int s = 0; s < kSends; ++s) {
    int originals = 0;
    std::set<Id> ids;
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(seen[t].size(), static_cast<std::size_t>(kSends));
      originals += seen[t][s].duplicate ? 0 : 1;
      ids.insert(seen[t][s].msg.id);
    }
    EXPECT_EQ(originals, 1) << "send " << s;
    EXPECT_EQ(ids.size(), 1u) << "send " << s;  // everyone got the one stored message
  }
  expect_dense(ConvKey::channel(100), kSends - kSends / 3);
  expect_dense(ConvKey::dm(1, 2), kSends / 3);
}

TEST_P(StoreContract, AppendThroughput) {
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
    auto r = store().append_messages(batch);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double total = static_cast<double>(kBatch) * kBatches;
  std::printf(
      "[ throughput ] %s append_messages: %.0f messages/s (%d batches of %d, %.3f s, "
      "one thread)\n",
      backend_->engine().c_str(), total / seconds, kBatches, kBatch, seconds);
}

std::string param_name(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

// --- the FileStore port on the same database

FileMeta file_meta(char c, Id uploader, std::uint64_t size, Millis created_at) {
  FileMeta f;
  f.id = std::string(32, c);
  f.uploader = uploader;
  f.name = std::string("n\xE6\xB6\x88-") + c + ".png";
  f.size = size;
  f.type = "image/png";
  f.sha256 = std::string(64, 'e');
  f.width = 640;
  f.height = 480;
  f.created_at = created_at;
  return f;
}

TEST_P(StoreContract, FilesReadBackAndCountAgainstTheirUploader) {
  FileStore& files = backend_->files();
  ASSERT_TRUE(files.create_file(file_meta('a', 7, 1000, 10)));
  ASSERT_TRUE(files.create_file(file_meta('b', 7, 3000000000ull, 20)));  // past 32 bits
  ASSERT_TRUE(files.create_file(file_meta('c', 8, 5, 30)));
  auto a = files.file_by_id(std::string(32, 'a'));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->uploader, 7u);
  EXPECT_EQ(a->name, "n\xE6\xB6\x88-a.png");
  EXPECT_EQ(a->size, 1000u);
  EXPECT_EQ(a->type, "image/png");
  EXPECT_EQ(a->sha256, std::string(64, 'e'));
  EXPECT_EQ(a->width, 640u);
  EXPECT_EQ(a->height, 480u);
  EXPECT_EQ(a->created_at, 10);
  EXPECT_EQ(a->deleted_at, 0);
  EXPECT_EQ(files.file_by_id(std::string(32, 'f')).error().code, Errc::not_found);
  EXPECT_EQ(files.create_file(file_meta('a', 9, 1, 1)).error().code, Errc::conflict);
  EXPECT_EQ(*files.bytes_of_uploader(7), 3000001000u);
  EXPECT_EQ(*files.bytes_of_uploader(99), 0u);
  // Removed bytes no longer count; marking twice is a no-op.
  EXPECT_TRUE(*files.mark_deleted(std::string(32, 'b'), 50));
  EXPECT_FALSE(*files.mark_deleted(std::string(32, 'b'), 60));
  EXPECT_EQ(files.file_by_id(std::string(32, 'b'))->deleted_at, 50);
  EXPECT_EQ(*files.bytes_of_uploader(7), 1000u);
}

TEST_P(StoreContract, FileSharesAreIdempotentAndKeepTheirConversation) {
  FileStore& files = backend_->files();
  const std::string id(32, 'd');
  ASSERT_TRUE(files.create_file(file_meta('d', 7, 10, 10)));
  ASSERT_TRUE(files.add_share(id, FileShare{100, ConvKey::dm(7, 8)}));
  ASSERT_TRUE(files.add_share(id, FileShare{100, ConvKey::dm(7, 8)}));
  ASSERT_TRUE(files.add_share(id, FileShare{101, ConvKey::channel(55)}));
  auto shares = files.shares_of(id);
  ASSERT_TRUE(shares);
  ASSERT_EQ(shares->size(), 2u);
  EXPECT_EQ((*shares)[0].message_id, 100u);
  EXPECT_EQ((*shares)[0].conv, ConvKey::dm(7, 8));
  EXPECT_EQ((*shares)[1].conv, ConvKey::channel(55));
  ASSERT_TRUE(files.remove_share(id, 100));
  ASSERT_TRUE(files.remove_share(id, 100));
  EXPECT_EQ(files.shares_of(id)->size(), 1u);
}

TEST_P(StoreContract, OrphansAreOldLiveFilesNobodyShared) {
  FileStore& files = backend_->files();
  ASSERT_TRUE(files.create_file(file_meta('1', 7, 1, 100)));  // old, never shared: an orphan
  ASSERT_TRUE(files.create_file(file_meta('2', 7, 1, 100)));  // old, shared
  ASSERT_TRUE(files.create_file(file_meta('3', 7, 1, 900)));  // too young
  ASSERT_TRUE(files.create_file(file_meta('4', 7, 1, 50)));   // old, bytes already gone
  ASSERT_TRUE(files.add_share(std::string(32, '2'), FileShare{1, ConvKey::channel(1)}));
  ASSERT_TRUE(files.mark_deleted(std::string(32, '4'), 60));
  auto orphans = files.orphans(500, 10);
  ASSERT_TRUE(orphans) << orphans.error().message;
  EXPECT_EQ(*orphans, std::vector<std::string>{std::string(32, '1')});
  EXPECT_EQ(files.orphans(500, 0)->size(), 0u);
}

TEST_P(StoreContract, AThumbnailTypeReadsBack) {
  FileStore& files = backend_->files();
  FileMeta f = file_meta('t', 7, 10, 10);
  f.thumb_type = "image/webp";
  ASSERT_TRUE(files.create_file(f));
  ASSERT_TRUE(files.create_file(file_meta('u', 7, 10, 10)));
  EXPECT_EQ(files.file_by_id(std::string(32, 't'))->thumb_type, "image/webp");
  EXPECT_EQ(files.file_by_id(std::string(32, 'u'))->thumb_type, "");
}

TEST_P(StoreContract, AnAvatarIsOnePerOwnerAndKindAndTellsWhatItReplaced) {
  FileStore& files = backend_->files();
  const std::string k1(32, '1'), k2(32, '2'), k3(40, '3');
  EXPECT_EQ(*files.avatar_key(AvatarOf::user, 7), "");
  EXPECT_EQ(*files.set_avatar(AvatarOf::user, 7, k1, 100), "");
  EXPECT_EQ(*files.set_avatar(AvatarOf::space, 7, k2, 100), "");  // same id, another kind
  EXPECT_EQ(*files.avatar_key(AvatarOf::user, 7), k1);
  EXPECT_EQ(*files.avatar_key(AvatarOf::space, 7), k2);
  EXPECT_EQ(*files.avatar_key(AvatarOf::channel, 7), "");
  EXPECT_EQ(*files.set_avatar(AvatarOf::user, 7, k3, 200), k1);
  EXPECT_EQ(*files.avatar_key(AvatarOf::user, 7), k3);
  EXPECT_EQ(*files.avatar_key(AvatarOf::user, 8), "");
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(BackendParam{"sqlite", make_sqlite}), param_name);
INSTANTIATE_TEST_SUITE_P(Mysql, StoreContract, ::testing::Values(BackendParam{"mysql", make_mysql}),
                         param_name);

}  // namespace
}  // namespace imd
