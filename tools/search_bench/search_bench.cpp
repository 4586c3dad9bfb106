// search_bench: what the SQLite search index costs and how fast it answers, measured on the
// adapters themselves (SqliteStore, SqliteSearch) in a fresh database:
//
//   search_bench <dir> <messages> [channels=200] [members_per_channel=50] [batch=1024]
//   search_bench --backfill <sqlite db> <batch>
//   search_bench --fill <sqlite db> <messages>   (search on only, then the queries)
//   search_bench --queries <sqlite db>           (the queries on a database --fill made)
//   search_bench --mysql <host> <port> <user> <password> <empty db> <another empty db> <messages>
//   search_bench --mysql <host> <port> <user> <password> <empty db> - <messages>   (index only)
//   search_bench --mysql-queries <host> <port> <user> <password> <db>   (the queries again)
//
// 1. insert: <messages> channel messages and DMs of generated text (Latin words and Chinese),
//    through SqliteStore::append_messages in batches of <batch> (the consumer's group commit:
//    under load tens of messages), once with search off and once with search on (the triggers
//    queue them, then SqliteSearch::index_step indexes the queue, timed apart): messages/s of
//    each, on a database of its own each.
// 2. back-fill: the database filled with search off gets SqliteSearch and its back-fill runs
//    to the end: how long, messages/s, and the longest single chunk (the writer's pause).
// 3. queries: latency percentiles of SqliteSearch::search for kinds of queries, as a user who
//    is a member of `members_per_channel`/`channels` of the channels.
// With --mysql: MysqlStore and MysqlSearch (Mroonga) in the first empty database, MysqlStore
// without the index's triggers in the second: the insert rates (alternating rounds), and the
// same queries.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "store/sqlite_search.hpp"
#include "store/sqlite_store.hpp"
#include "store_mysql/mysql_search.hpp"
#include "store_mysql/mysql_store.hpp"

namespace {

using namespace imd;
using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// A deterministic corpus: words from syllables, and Chinese from a fixed phrase list.
class Corpus {
 public:
  explicit Corpus(unsigned seed) : rng_(seed) {
    const char* syl[] = {"ka", "lo", "mi", "ne", "ru",  "sa", "to", "vi", "de", "po",
                         "ba", "ze", "qu", "fi", "gho", "an", "er", "in", "os", "ul"};
    for (int i = 0; i < 5000; ++i) {
      std::string w;
      int n = 2 + static_cast<int>(rng_() % 3);
      for (int k = 0; k < n; ++k) w += syl[rng_() % 20];
      words_.push_back(w);
    }
  }
  std::string message() {
    static const char* kCjk[] = {"离线消息缓存", "服务器",   "数据库", "今天开会", "发布计划",
                                 "用户反馈",     "性能测试", "明天见", "请确认",   "已经完成"};
    std::string s;
    int n = 4 + static_cast<int>(rng_() % 12);
    for (int i = 0; i < n; ++i) {
      if (!s.empty()) s += ' ';
      // Zipf-like: small indexes are common words.
      std::size_t r = rng_() % words_.size();
      std::size_t idx = (r * r) / words_.size();
      s += (rng_() % 8 == 0) ? std::string(kCjk[rng_() % 10]) : words_[idx];
    }
    return s;
  }
  const std::string& word(std::size_t i) const { return words_[i]; }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> words_;
};

struct Setup {
  std::uint32_t channels;
  std::uint32_t members;
  std::uint64_t messages;
  std::uint32_t batch = 1024;  // messages per append_messages call
};

constexpr Id kUserBase = 1'000'000;
constexpr Id kChannelBase = 2'000'000;
constexpr Id kSpace = 3'000'000;
constexpr Id kMsgBase = 1ull << 40;

std::shared_ptr<SqliteDatabase> open(const std::string& path) {
  return std::make_shared<SqliteDatabase>(SqliteConfig{.path = path, .read_connections = 4});
}

void check(const Result<void>& r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().message.c_str());
    std::exit(1);
  }
}

void populate_members(Store& store, const Setup& s) {
  const std::uint32_t users = s.members * 4;
  for (Id u = 0; u < users; ++u) {
    check(store.create_user(
              User{.id = kUserBase + u, .name = "u" + std::to_string(u), .avatar = "", .phone = ""},
              "h"),
          "user");
  }
  check(store.create_space(Space{.id = kSpace, .name = "s", .avatar = "", .owner_id = kUserBase}),
        "space");
  for (Id u = 1; u < users; ++u) (void)store.add_space_member(kSpace, kUserBase + u, 1);
  for (Id c = 0; c < s.channels; ++c) {
    check(store.create_channel(Channel{.id = kChannelBase + c,
                                       .space_id = kSpace,
                                       .name = "c" + std::to_string(c),
                                       .avatar = "",
                                       .owner_id = kUserBase}),
          "channel");
    // Members: a window of the users, so each user is in about a quarter of the channels.
    for (Id m = 0; m < s.members; ++m) {
      Id u = (c * 7 + m) % users;
      if (u != 0) (void)store.add_channel_member(kChannelBase + c, kUserBase + u, 1);
    }
  }
}

// Appends messages [first, last) of the corpus (7 in 8 in channels, the rest DMs) in batches
// of s.batch; returns the seconds it took. `corpus` continues where the previous call stopped.
// With `search`, the queue is indexed as its indexer thread does under load (index_step each
// time a full indexer batch waits, and at the end), and that time is added to `*index_s`.
double fill(Store& store, const Setup& s, Corpus& corpus, std::uint64_t first, std::uint64_t last,
            SqliteSearch* search = nullptr, double* index_s = nullptr) {
  const std::uint32_t users = s.members * 4;
  std::vector<NewMessage> batch;
  batch.reserve(s.batch);
  std::uint64_t indexed = 0;  // of [first, i]
  auto t0 = Clock::now();
  for (std::uint64_t i = first; i < last; ++i) {
    NewMessage nm;
    const Id id = kMsgBase + i;
    const Id from = kUserBase + corpus.rng()() % users;
    if (i % 8 != 7) {
      nm.msg.conv = ConvKey::channel(kChannelBase + corpus.rng()() % s.channels);
    } else {
      Id to = kUserBase + corpus.rng()() % users;
      if (to == from) to = kUserBase + (to - kUserBase + 1) % users;
      nm.msg.conv = ConvKey::dm(from, to);
      nm.msg.to = to;
    }
    nm.msg.id = id;
    nm.msg.from = from;
    nm.msg.type = "text";
    nm.msg.body = corpus.message();
    nm.msg.created_at = 1'700'000'000'000 + static_cast<Millis>(i);
    nm.msg.cid = std::to_string(i);
    batch.push_back(std::move(nm));
    if (batch.size() == s.batch || i + 1 == last) {
      auto r = store.append_messages(batch);
      if (!r.ok()) {
        std::fprintf(stderr, "append: %s\n", r.error().message.c_str());
        std::exit(1);
      }
      batch.clear();
      const std::uint64_t queued = i + 1 - first - indexed;
      if (search && (queued >= SqliteSearchOptions{}.index_batch || i + 1 == last)) {
        indexed += queued;
        const auto i0 = Clock::now();
        for (;;) {
          auto more = search->index_step();
          if (!more.ok()) {
            std::fprintf(stderr, "index: %s\n", more.error().message.c_str());
            std::exit(1);
          }
          if (!*more) break;
        }
        *index_s += secs(Clock::now() - i0);
        t0 += Clock::now() - i0;  // not the storing's time
      }
    }
  }
  return secs(Clock::now() - t0);
}

void queries(Search& search) {
  Corpus corpus(42);
  const Id user = kUserBase + 3;  // a member of about a quarter of the channels
  struct Kind {
    const char* name;
    std::vector<std::string> terms;
    bool in = false;
  };
  std::vector<Kind> kinds = {
      {"common word", {corpus.word(0)}},
      {"rare word", {corpus.word(4990)}},
      {"two words", {corpus.word(3), corpus.word(40)}},
      {"CJK 2 chars", {"消息"}},
      {"CJK 3 chars", {"服务器"}},
      {"absent word", {"zzzqqq"}},
      {"common word, in= a channel", {corpus.word(0)}, true},
  };
  for (const auto& k : kinds) {
    std::vector<double> ms;
    std::size_t hits = 0, errors = 0;
    for (int i = 0; i < 200; ++i) {
      SearchQuery q;
      q.terms = k.terms;
      q.limit = 20;
      if (k.in) q.in = ConvKey::channel(kChannelBase);  // users 0..49 are its members
      auto t0 = Clock::now();
      auto r = search.search(user, q);
      ms.push_back(secs(Clock::now() - t0) * 1e3);
      if (r.ok()) {
        hits = r->hits.size();
      } else {
        ++errors;
      }
    }
    std::sort(ms.begin(), ms.end());
    std::printf("query %-28s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%zu hits, %zu errors)\n",
                k.name, ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back(), hits, errors);
    std::fflush(stdout);
  }
}

MysqlConfig mysql_config(char** argv) {
  MysqlConfig mc;
  mc.host = argv[2];
  mc.port = static_cast<unsigned>(std::atoi(argv[3]));
  mc.user = argv[4];
  mc.password = argv[5];
  mc.database = argv[6];
  mc.pool_size = 4;
  return mc;
}

// --mysql ... <db> - <messages>: only the database with the index (a large one), then the
// queries; --mysql-queries: the queries on a database filled so.
int run_mysql_indexed(char** argv, bool fill_first) {
  auto db = std::make_shared<MysqlDatabase>(mysql_config(argv));
  MysqlStore store(db);
  MysqlSearch search(db);
  if (fill_first) {
    Setup s{200, 50, std::strtoull(argv[8], nullptr, 10)};
    populate_members(store, s);
    Corpus corpus(42);
    double took = 0;
    constexpr std::uint64_t kReport = 250'000;
    for (std::uint64_t at = 0; at < s.messages; at += kReport) {
      const std::uint64_t to = std::min(s.messages, at + kReport);
      took += fill(store, s, corpus, at, to);
      std::printf("mariadb: filled %llu, %.0f msgs/s with the index triggers\n",
                  static_cast<unsigned long long>(to), to / took);
      std::fflush(stdout);
    }
  }
  queries(search);
  return 0;
}

int run_mysql(char** argv) {
  if (std::string(argv[7]) == "-") return run_mysql_indexed(argv, true);
  MysqlConfig mc = mysql_config(argv);
  MysqlConfig off_mc = mc;
  off_mc.database = argv[7];
  Setup s{200, 50, std::strtoull(argv[8], nullptr, 10)};
  auto db = std::make_shared<MysqlDatabase>(mc);
  auto off_db = std::make_shared<MysqlDatabase>(off_mc);
  // The second database without the index's triggers: what the inserts cost without search.
  for (const char* t : {"search_channel_insert", "search_channel_change", "search_channel_delete",
                        "search_dm_insert", "search_dm_change", "search_dm_delete"}) {
    const std::string drop = std::string("DROP TRIGGER IF EXISTS ") + t;
    auto r = off_db->write([&](MysqlConnection& c) { return c.execute_text(drop); });
    check(r, "drop trigger");
  }
  MysqlStore store(db), off_store(off_db);
  MysqlSearch search(db);
  populate_members(store, s);
  populate_members(off_store, s);
  Corpus on_corpus(42), off_corpus(42);
  double on_s = 0, off_s = 0;
  constexpr std::uint64_t kRound = 50'000;
  for (std::uint64_t at = 0; at < s.messages; at += kRound) {
    const std::uint64_t to = std::min(s.messages, at + kRound);
    on_s += fill(store, s, on_corpus, at, to);
    off_s += fill(off_store, s, off_corpus, at, to);
  }
  const double on_rate = s.messages / on_s, off_rate = s.messages / off_s;
  std::printf(
      "mariadb: insert %llu messages, batches of 1024: index triggers off %.0f msgs/s "
      "(%.2f us/msg), on %.0f msgs/s (%.2f us/msg): indexing costs %.2f us per message\n",
      static_cast<unsigned long long>(s.messages), off_rate, 1e6 / off_rate, on_rate, 1e6 / on_rate,
      1e6 / on_rate - 1e6 / off_rate);
  std::fflush(stdout);
  queries(search);
  return 0;
}

}  // namespace

// --backfill <db> <batch>: the back-fill of a database whose index is empty (search_state
// enabled = 0), in chunks of <batch> messages per table.
int run_backfill(char** argv) {
  auto db = open(argv[2]);
  SqliteSearchOptions o;
  o.backfill_batch = static_cast<std::uint32_t>(std::atoi(argv[3]));
  SqliteSearch search(db, o);
  auto t0 = Clock::now();
  double longest = 0;
  std::uint64_t chunks = 0;
  for (;;) {
    auto c0 = Clock::now();
    auto more = search.backfill_step();
    longest = std::max(longest, secs(Clock::now() - c0));
    if (!more.ok()) {
      std::fprintf(stderr, "backfill: %s\n", more.error().message.c_str());
      return 1;
    }
    ++chunks;
    if (!*more) break;
  }
  std::printf("back-fill, batch %s: %llu chunks in %.1f s; longest chunk (writer held) %.1f ms\n",
              argv[3], static_cast<unsigned long long>(chunks), secs(Clock::now() - t0),
              longest * 1e3);
  return 0;
}

// --fill <db> <messages>: only the database with the index (a large one, e.g. 5 M messages,
// without a second one to compare with), then the queries.
int run_fill(char** argv) {
  const std::string path = argv[2];
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(path + ext);
  Setup s{200, 50, std::strtoull(argv[3], nullptr, 10)};
  double store_s = 0, index_s = 0;
  {
    auto db = open(path);
    SqliteStore store(db);
    SqliteSearch search(db);
    populate_members(store, s);
    Corpus corpus(42);
    constexpr std::uint64_t kReport = 500'000;
    for (std::uint64_t at = 0; at < s.messages; at += kReport) {
      const std::uint64_t to = std::min(s.messages, at + kReport);
      store_s += fill(store, s, corpus, at, to, &search, &index_s);
      std::printf("filled %llu: store %.0f msgs/s, indexer %.2f us/msg so far\n",
                  static_cast<unsigned long long>(to), to / store_s, 1e6 * index_s / to);
      std::fflush(stdout);
    }
  }
  std::printf("file size: %.1f MB for %llu messages\n", std::filesystem::file_size(path) / 1e6,
              static_cast<unsigned long long>(s.messages));
  auto db = open(path);
  SqliteSearch search(db);
  queries(search);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--backfill") return run_backfill(argv);
  if (argc == 4 && std::string(argv[1]) == "--fill") return run_fill(argv);
  if (argc == 3 && std::string(argv[1]) == "--queries") {
    auto db = open(argv[2]);
    SqliteSearch search(db);
    queries(search);
    return 0;
  }
  if (argc == 9 && std::string(argv[1]) == "--mysql") return run_mysql(argv);
  if (argc == 7 && std::string(argv[1]) == "--mysql-queries") return run_mysql_indexed(argv, false);
  if (argc < 3) {
    std::fprintf(stderr, "usage: search_bench <dir> <messages> [channels] [members]\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  Setup s{200, 50, std::strtoull(argv[2], nullptr, 10)};
  if (argc > 3) s.channels = static_cast<std::uint32_t>(std::atoi(argv[3]));
  if (argc > 4) s.members = static_cast<std::uint32_t>(std::atoi(argv[4]));
  if (argc > 5) s.batch = static_cast<std::uint32_t>(std::max(1, std::atoi(argv[5])));
  std::filesystem::create_directories(dir);
  const auto off_path = (dir / "off.db").string(), on_path = (dir / "on.db").string();
  for (const auto& p : {off_path, on_path}) {
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(p + ext);
  }

  // 1. insert, search on and off: alternating rounds of 50,000 messages, so that both see the
  //    same machine load and the same database sizes.
  double on_s = 0, off_s = 0, index_s = 0;
  {
    auto on_db = open(on_path), off_db = open(off_path);
    SqliteStore on_store(on_db), off_store(off_db);
    SqliteSearch search(on_db);
    populate_members(on_store, s);
    populate_members(off_store, s);
    Corpus on_corpus(42), off_corpus(42);
    constexpr std::uint64_t kRound = 50'000;
    for (std::uint64_t at = 0; at < s.messages; at += kRound) {
      const std::uint64_t to = std::min(s.messages, at + kRound);
      on_s += fill(on_store, s, on_corpus, at, to, &search, &index_s);
      off_s += fill(off_store, s, off_corpus, at, to);
    }
  }
  const double on_rate = s.messages / on_s, off_rate = s.messages / off_s;
  std::printf(
      "insert %llu messages, batches of %u: search off %.0f msgs/s (%.2f us/msg), "
      "on %.0f msgs/s (%.2f us/msg): the send path pays %.2f us per message for search (the "
      "queue); the indexer %.2f us per message in batches of %u\n",
      static_cast<unsigned long long>(s.messages), s.batch, off_rate, 1e6 / off_rate, on_rate,
      1e6 / on_rate, 1e6 / on_rate - 1e6 / off_rate, 1e6 * index_s / s.messages,
      SqliteSearchOptions{}.index_batch);
  std::printf("file sizes: off %.1f MB, on %.1f MB\n", std::filesystem::file_size(off_path) / 1e6,
              std::filesystem::file_size(on_path) / 1e6);
  std::fflush(stdout);

  // 2. back-fill of the database filled with search off.
  {
    auto db = open(off_path);
    auto t_open = Clock::now();
    SqliteSearch search(db);
    const double enable_s = secs(Clock::now() - t_open);
    auto t0 = Clock::now();
    double longest = 0;
    std::uint64_t chunks = 0;
    for (;;) {
      auto c0 = Clock::now();
      auto more = search.backfill_step();
      longest = std::max(longest, secs(Clock::now() - c0));
      if (!more.ok()) {
        std::fprintf(stderr, "backfill: %s\n", more.error().message.c_str());
        return 1;
      }
      ++chunks;
      if (!*more) break;
    }
    const double t = secs(Clock::now() - t0);
    std::printf(
        "back-fill: enabling took %.3f s; %llu chunks of %u per table in %.1f s = %.0f msgs/s; "
        "longest chunk (writer held) %.1f ms\n",
        enable_s, static_cast<unsigned long long>(chunks), SqliteSearchOptions{}.backfill_batch, t,
        static_cast<double>(s.messages) / t, longest * 1e3);
  }

  // 3. queries on the database indexed live.
  auto db = open(on_path);
  SqliteSearch search(db);
  queries(search);
  return 0;
}
