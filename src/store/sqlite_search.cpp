#include "store/sqlite_search.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "common/log.hpp"
#include "store/sqlite_migrations.hpp"
#include "store_sql/search_sql.hpp"

namespace imd {

namespace {

// On imd.db's writer connection (the only one that writes it): every new, changed or removed
// message appends one row to search_queue inside the storing transaction; nothing else. The
// indexer reads the message as it is when it applies the row (op 1 index, 2 reindex, 3 remove).
constexpr const char* kTriggers = R"sql(
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_insert AFTER INSERT ON main.channel_message
WHEN NEW.deleted = 0 BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (NEW.message_id, 1, 1);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_change
AFTER UPDATE OF body, deleted ON main.channel_message BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (NEW.message_id, 1, 2);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_delete AFTER DELETE ON main.channel_message
BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (OLD.message_id, 1, 3);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_insert AFTER INSERT ON main.message
WHEN NEW.deleted = 0 BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (NEW.id, 2, 1);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_change AFTER UPDATE OF body, deleted ON main.message
BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (NEW.id, 2, 2);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_delete AFTER DELETE ON main.message BEGIN
  INSERT INTO search_queue (id, kind, op) VALUES (OLD.id, 2, 3);
END;
)sql";

// The schema name of imd.db on search.db's connections (attached read-only).
constexpr const char* kMainAs = "imd";

Result<std::int64_t> scalar(SqliteConnection& c, std::string_view sql) {
  auto s = c.prepare(sql);
  if (!s.ok()) return s.error();
  auto row = s->step();
  if (!row.ok()) return row.error();
  return *row ? s->column_int64(0) : 0;
}

// The id `n` rows down from the newest in [lo, hi) of one table's id index, or 0 when it
// holds fewer rows there.
Result<std::int64_t> nth_below(SqliteConnection& c, std::string_view sql, std::int64_t lo,
                               std::int64_t hi, std::uint32_t n) {
  auto s = c.prepare(sql);
  if (!s.ok()) return s.error();
  s->bind_all(lo, hi, std::int64_t{n} - 1);
  auto row = s->step();
  if (!row.ok()) return row.error();
  return *row ? s->column_int64(0) : 0;
}

// A trigram as an FTS5 string: double quotes around it, inner ones doubled. Inside a string
// nothing is syntax.
std::string fts_string(std::string_view term) {
  std::string s = "\"";
  for (char ch : term) {
    if (ch == '"') s += '"';
    s += ch;
  }
  s += '"';
  return s;
}

// The distinct three-character sequences of valid UTF-8 text (none when it is shorter).
std::vector<std::string> trigrams(std::string_view s) {
  std::vector<std::size_t> starts;  // byte offset of each character
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(s.size());
  std::vector<std::string> out;
  for (std::size_t k = 0; k + 3 < starts.size(); ++k) {
    std::string g(s.substr(starts[k], starts[k + 3] - starts[k]));
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(std::move(g));
  }
  return out;
}

struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool hit = false;
};

int past_deadline(void* arg) {
  auto* d = static_cast<Deadline*>(arg);
  if (std::chrono::steady_clock::now() < d->at) return 0;
  d->hit = true;
  return 1;  // interrupts the statement
}

// The indexer's statements, on search.db's writer (imd.db attached read-only as `imd`, read at
// the transaction's snapshot): the queue rows in (?1, ?2] applied to message_fts, and ?2
// recorded as applied in the same transaction. A reindexed or removed message leaves the index
// first; one that is (still) stored and not deleted goes (back) in as it is now. CROSS JOIN
// keeps the queue the outer loop: left to itself, the planner walked the message table's whole
// id range and probed the queue, a cost that grew with the history.
constexpr const char* kIndexQueued[] = {
    "DELETE FROM message_fts WHERE rowid IN (SELECT id FROM imd.search_queue"
    " WHERE seq > ?1 AND seq <= ?2 AND op <> 1)",
    "INSERT OR REPLACE INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type,"
    " created_at, edited_at)"
    " SELECT m.message_id, m.body, 1, m.channel_id, 0, m.seq, m.\"from\", m.type, m.created_at,"
    " m.edited_at FROM imd.search_queue q CROSS JOIN imd.channel_message m"
    " ON m.message_id = q.id"
    " WHERE q.seq > ?1 AND q.seq <= ?2 AND q.kind = 1 AND q.op <> 3 AND m.deleted = 0",
    "INSERT OR REPLACE INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type,"
    " created_at, edited_at)"
    " SELECT m.id, m.body, 2, m.user_a, m.user_b, m.seq, m.\"from\", m.type, m.created_at,"
    " m.edited_at FROM imd.search_queue q CROSS JOIN imd.message m ON m.id = q.id"
    " WHERE q.seq > ?1 AND q.seq <= ?2 AND q.kind = 2 AND q.op <> 3 AND m.deleted = 0",
    "UPDATE search_state SET applied = ?2 WHERE id = 1",
};

// One indexer transaction on search.db's writer: false when nothing more is queued.
Result<bool> index_queued(SqliteConnection& c, std::uint32_t batch) {
  auto mark = scalar(c, "SELECT applied FROM search_state WHERE id = 1");
  if (!mark.ok()) return mark.error();
  // The queue row `batch` rows past the mark, or the newest when fewer are queued.
  auto nth =
      c.prepare("SELECT seq FROM imd.search_queue WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?");
  if (!nth.ok()) return nth.error();
  nth->bind_all(*mark, std::int64_t{batch} - 1);
  auto row = nth->step();
  if (!row.ok()) return row.error();
  const bool full = *row;
  std::int64_t hi = full ? nth->column_int64(0) : 0;
  nth->reset();
  if (!full) {
    auto newest = scalar(c, "SELECT COALESCE(MAX(seq), 0) FROM imd.search_queue");
    if (!newest.ok()) return newest.error();
    if (*newest <= *mark) return false;
    hi = *newest;
  }
  for (const char* sql : kIndexQueued) {
    auto s = c.prepare(sql);
    if (!s.ok()) return s.error();
    s->bind_all(*mark, hi);
    IMD_TRY(s->run());
  }
  if (!full) return false;
  auto more = c.prepare("SELECT EXISTS (SELECT 1 FROM imd.search_queue WHERE seq > ?)");
  if (!more.ok()) return more.error();
  more->bind_all(hi);
  auto any = more->step();
  if (!any.ok()) return any.error();
  return *any && more->column_int64(0) != 0;
}

std::string index_path(const SqliteDatabase& db, const SqliteSearchOptions& o) {
  if (!o.index_path.empty()) return o.index_path;
  return (std::filesystem::path(db.config().path).parent_path() / "search.db").string();
}

// search.db: the same engine settings as imd.db, its own migrations, imd.db attached.
SqliteConfig index_config(const SqliteDatabase& db, const SqliteSearchOptions& o) {
  SqliteConfig c = db.config();
  c.path = index_path(db, o);
  c.attach_path = db.config().path;
  c.attach_as = kMainAs;
  return c;
}

// search.db is derived from imd.db: one that SQLite cannot open (not a database, a corrupt
// header or schema) is moved aside as search.db.corrupt and made again, and the back-fill
// rebuilds it.
std::shared_ptr<SqliteDatabase> open_index(const SqliteDatabase& db, const SqliteSearchOptions& o) {
  const SqliteConfig config = index_config(db, o);
  try {
    return std::make_shared<SqliteDatabase>(config, sqlite_search_migrations());
  } catch (const std::runtime_error& e) {
    LOG_WARN("search: " << e.what() << "; moving it aside as " << config.path
                        << ".corrupt, the index is rebuilt from the messages");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    std::filesystem::rename(config.path + suffix, config.path + ".corrupt" + suffix, ec);
  }
  return std::make_shared<SqliteDatabase>(config, sqlite_search_migrations());
}

}  // namespace

SqliteSearch::SqliteSearch(std::shared_ptr<SqliteDatabase> db, SqliteSearchOptions options)
    : db_(std::move(db)), options_(options), index_(open_index(*db_, options_)) {
  // Whether search.db is the index of this imd.db as it is: not when it is new (its back-fill
  // range is still the migration's), nor when search was disabled (edits and deletes since are
  // not in it), nor when it applied queue rows this imd.db never had (a restored imd.db beside a
  // newer search.db). Then the back-fill rewrites every message stored so far and the queue
  // rows so far count as applied. One imd.db transaction, which also installs the triggers, so
  // no message is stored in between; search.db commits first: a crash between the two leaves
  // enabled = 0, and the next start plans the rebuild again.
  auto installed = db_->write([&](SqliteConnection& c) -> Result<void> {
    auto enabled = scalar(c, "SELECT enabled FROM search_state WHERE id = 1");
    if (!enabled.ok()) return enabled.error();
    auto seq = scalar(c,
                      "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence"
                      " WHERE name = 'search_queue'");
    if (!seq.ok()) return seq.error();
    auto top = scalar(c,
                      "SELECT MAX(COALESCE((SELECT MAX(message_id) FROM channel_message), 0),"
                      " COALESCE((SELECT MAX(id) FROM message), 0))");
    if (!top.ok()) return top.error();
    IMD_TRY(index_->write([&](SqliteConnection& x) -> Result<void> {
      auto st = x.prepare("SELECT applied, pending_hi FROM search_state WHERE id = 1");
      if (!st.ok()) return st.error();
      IMD_TRY(st->step());
      const std::int64_t applied = st->column_int64(0), hi = st->column_int64(1);
      st->reset();
      if (*enabled != 0 && applied <= *seq && hi != INT64_MAX) return {};
      LOG_INFO("search: search.db is (re)built from the stored messages in the background");
      auto s = x.prepare(
          "UPDATE search_state SET pending_lo = 0, pending_hi = ?, applied = ? WHERE id = 1");
      if (!s.ok()) return s.error();
      s->bind_all(*top + 1, *seq);
      return s->run();
    }));
    IMD_TRY(c.exec("UPDATE search_state SET enabled = 1 WHERE id = 1"));
    return c.exec_script(kTriggers);
  });
  if (!installed.ok()) {
    throw std::runtime_error("search: cannot prepare the index: " + installed.error().message);
  }
}

void SqliteSearch::start(std::function<bool()> hold, std::function<bool()> busy) {
  if (indexer_) return;
  hold_ = std::move(hold);
  busy_ = std::move(busy);
  indexer_ = std::make_unique<StepThread>(
      "imd-search-idx",
      [this]() -> Result<bool> {
        if (hold_ && hold_()) {
          held_.fetch_add(1, std::memory_order_relaxed);
          return false;  // waits the idle period, then asks again
        }
        // Sends waiting to be stored: short transactions, so that the indexer takes the CPU
        // from them in small slices (it no longer takes imd.db's writer).
        std::uint32_t small = 0;
        if (busy_ && busy_()) {
          small = std::max<std::uint32_t>(options_.index_batch_busy, 1);
          yielded_.fetch_add(1, std::memory_order_relaxed);
        }
        auto more = index_step(small);
        if (!more.ok()) return more;
        if (++batches_since_trim_ >= kTrimEvery || !*more) {
          batches_since_trim_ = 0;
          IMD_TRY(trim_queue());
        }
        if (*more) return more;
        return backfill_step(small);
      },
      std::chrono::milliseconds(options_.backfill_pause_ms),
      std::chrono::milliseconds(std::max(options_.index_idle_ms, 1)));
}

Result<bool> SqliteSearch::index_step(std::uint32_t batch) {
  if (batch == 0) batch = std::max<std::uint32_t>(options_.index_batch, 1);
  return index_->write([&](SqliteConnection& c) { return index_queued(c, batch); });
}

Result<void> SqliteSearch::trim_queue() {
  auto applied = index_->read(
      [](SqliteConnection& c) { return scalar(c, "SELECT applied FROM search_state"); });
  if (!applied.ok()) return applied.error();
  if (*applied <= trimmed_.load(std::memory_order_relaxed)) return {};
  IMD_TRY(db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare("DELETE FROM search_queue WHERE seq <= ?");
    if (!s.ok()) return s.error();
    s->bind_all(*applied);
    return s->run();
  }));
  trimmed_.store(*applied, std::memory_order_relaxed);
  return {};
}

Result<std::int64_t> SqliteSearch::queued() const {
  return index_->read([](SqliteConnection& c) {
    return scalar(c,
                  "SELECT COUNT(*) FROM imd.search_queue"
                  " WHERE seq > (SELECT applied FROM search_state WHERE id = 1)");
  });
}

Result<bool> SqliteSearch::backfill_step(std::uint32_t batch) {
  if (batch == 0) batch = std::max<std::uint32_t>(options_.backfill_batch, 1);
  return index_->write([&](SqliteConnection& c) -> Result<bool> {
    auto st = c.prepare("SELECT pending_lo, pending_hi FROM search_state WHERE id = 1");
    if (!st.ok()) return st.error();
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) return false;
    const std::int64_t lo = st->column_int64(0), hi = st->column_int64(1);
    st->reset();
    if (hi <= lo) return false;
    // The chunk: [from, hi) holds at most `batch` rows of each table.
    auto ch = nth_below(c,
                        "SELECT message_id FROM imd.channel_message WHERE message_id >= ?"
                        " AND message_id < ? ORDER BY message_id DESC LIMIT 1 OFFSET ?",
                        lo, hi, batch);
    if (!ch.ok()) return ch.error();
    auto dm = nth_below(c,
                        "SELECT id FROM imd.message WHERE id >= ? AND id < ?"
                        " ORDER BY id DESC LIMIT 1 OFFSET ?",
                        lo, hi, batch);
    if (!dm.ok()) return dm.error();
    const std::int64_t from = std::max({lo, *ch, *dm});
    const char* const kSteps[] = {
        "DELETE FROM message_fts WHERE rowid >= ?1 AND rowid < ?2",
        "INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, "
        "created_at, edited_at)"
        " SELECT message_id, body, 1, channel_id, 0, seq, \"from\", type, created_at, edited_at"
        " FROM imd.channel_message WHERE message_id >= ?1 AND message_id < ?2 AND deleted = 0",
        "INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, "
        "created_at, edited_at)"
        " SELECT id, body, 2, user_a, user_b, seq, \"from\", type, created_at, edited_at"
        " FROM imd.message WHERE id >= ?1 AND id < ?2 AND deleted = 0",
    };
    for (const char* sql : kSteps) {
      auto s = c.prepare(sql);
      if (!s.ok()) return s.error();
      s->bind_all(from, hi);
      IMD_TRY(s->run());
    }
    const bool done = from == lo;
    if (done) LOG_INFO("search: the back-fill of older messages is done");
    auto up = c.prepare("UPDATE search_state SET pending_lo = ?, pending_hi = ? WHERE id = 1");
    if (!up.ok()) return up.error();
    up->bind_all(done ? std::int64_t{0} : lo, done ? std::int64_t{0} : from);
    IMD_TRY(up->run());
    return !done;
  });
}

Result<bool> SqliteSearch::indexing() {
  return index_->read([](SqliteConnection& c) -> Result<bool> {
    auto pending = scalar(c, "SELECT pending_hi > pending_lo FROM search_state WHERE id = 1");
    if (!pending.ok()) return pending.error();
    return *pending != 0;
  });
}

Result<SearchPage> SqliteSearch::search(Id user, const SearchQuery& q) {
  // The index knows which messages hold each trigram (detail = none), not where: a term of
  // three characters is one trigram; a longer one needs all of its trigrams, and then LIKE
  // checks that they are where the term says. A shorter one is LIKE alone.
  std::string match;
  std::vector<std::string> likes;
  for (const auto& t : q.terms) {
    const auto grams = trigrams(t);
    for (const auto& g : grams) {
      if (!match.empty()) match += ' ';
      match += fts_string(g);
    }
    if (json::utf8_length(t) != 3) likes.push_back(sql::like_pattern(t));
  }
  // The text is built from constant pieces (how many LIKE filters, MATCH or not); every value
  // is bound. ?1..?9 are the same in every shape.
  std::string sql =
      "SELECT rowid, kind, conv_a, conv_b, seq, sender, type, created_at, edited_at, body"
      " FROM message_fts"
      " WHERE rowid < ?1 AND created_at > ?2 AND created_at < ?3"
      " AND (?4 = 0 OR sender = ?4)"
      " AND (?5 = 0 OR (kind = ?5 AND conv_a = ?6 AND conv_b = ?7))"
      " AND ((kind = 1 AND EXISTS (SELECT 1 FROM imd.channel_user cu"
      "       WHERE cu.channel_id = conv_a AND cu.user_id = ?8))"
      "   OR (kind = 2 AND (conv_a = ?8 OR conv_b = ?8)))";
  int next = 10;
  if (!match.empty()) sql += " AND message_fts MATCH ?" + std::to_string(next++);
  // The unary + keeps the trigram index out of a short pattern (it would find nothing).
  for (std::size_t i = 0; i < likes.size(); ++i) {
    sql += " AND +body LIKE ?" + std::to_string(next++) + " ESCAPE '\\'";
  }
  sql += " ORDER BY rowid DESC LIMIT ?9";

  // What the send path queued is indexed first (bounded), so that what was sent is found;
  // an indexer that is further behind than that makes the page say `indexing`.
  bool behind = true;
  for (int i = 0; i < options_.flush_batches && behind; ++i) {
    auto more = index_step();
    if (!more.ok()) return more.error();
    behind = *more;
  }
  const std::uint32_t limit = std::max<std::uint32_t>(q.limit, 1);
  Deadline deadline{std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(options_.timeout_ms)};
  auto page = index_->read([&](SqliteConnection& c) -> Result<SearchPage> {
    sqlite3_progress_handler(c.handle(), 1000, &past_deadline, &deadline);
    struct Unhook {
      sqlite3* db;
      ~Unhook() { sqlite3_progress_handler(db, 0, nullptr, nullptr); }
    } unhook{c.handle()};

    auto s = c.prepare(sql);
    if (!s.ok()) return s.error();
    s->bind_all(to_db_bound(q.before_id == 0 ? UINT64_MAX : q.before_id), q.after, q.before,
                to_db(q.from), std::int64_t{q.in ? static_cast<int>(q.in->kind) : 0},
                to_db(q.in ? q.in->a : 0), to_db(q.in ? q.in->b : 0), to_db(user),
                std::int64_t{limit} + 1);
    int index = 10;
    if (!match.empty()) s->bind(index++, match);
    for (const auto& l : likes) s->bind(index++, l);

    SearchPage out;
    for (;;) {
      auto row = s->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      if (out.hits.size() == limit) {
        out.next_before = out.hits.back().id;
        break;
      }
      out.hits.push_back(sql::search_hit(*s));
    }
    s->reset();
    auto pending = scalar(c, "SELECT pending_hi > pending_lo FROM search_state WHERE id = 1");
    if (!pending.ok()) return pending.error();
    out.indexing = behind || *pending != 0;
    return out;
  });
  if (!page.ok() && deadline.hit) {
    return make_error(Errc::unavailable, "the search took longer than " +
                                             std::to_string(options_.timeout_ms) +
                                             " ms: narrow it (in=, from=, after=, longer words)");
  }
  return page;
}

void disable_sqlite_search(SqliteDatabase& db) {
  auto done = db.write([](SqliteConnection& c) -> Result<void> {
    // The rebuild on re-enabling covers what is queued now.
    IMD_TRY(c.exec("DELETE FROM search_queue"));
    return c.exec("UPDATE search_state SET enabled = 0 WHERE id = 1");
  });
  if (!done.ok()) throw std::runtime_error("search: " + done.error().message);
}

}  // namespace imd
