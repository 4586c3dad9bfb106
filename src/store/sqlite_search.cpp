#include "store/sqlite_search.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "common/log.hpp"
#include "store_sql/search_sql.hpp"

namespace imd {

namespace {

// Kept in step by the writer connection alone (see the header): new messages are queued for
// the indexer, edits and deletes change the index at once. A change of a message still queued
// indexes it early; the indexer then re-writes it with the same text (OR REPLACE).
constexpr const char* kTriggers = R"sql(
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_insert AFTER INSERT ON main.channel_message
WHEN NEW.deleted = 0 BEGIN
  INSERT OR IGNORE INTO search_queue (id, kind) VALUES (NEW.message_id, 1);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_change
AFTER UPDATE OF body, deleted ON main.channel_message BEGIN
  DELETE FROM message_fts WHERE rowid = OLD.message_id;
  INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, created_at, edited_at)
  SELECT NEW.message_id, NEW.body, 1, NEW.channel_id, 0, NEW.seq, NEW."from", NEW.type, NEW.created_at,
    NEW.edited_at
  WHERE NEW.deleted = 0;
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_channel_delete AFTER DELETE ON main.channel_message
BEGIN
  DELETE FROM message_fts WHERE rowid = OLD.message_id;
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_insert AFTER INSERT ON main.message
WHEN NEW.deleted = 0 BEGIN
  INSERT OR IGNORE INTO search_queue (id, kind) VALUES (NEW.id, 2);
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_change AFTER UPDATE OF body, deleted ON main.message
BEGIN
  DELETE FROM message_fts WHERE rowid = OLD.id;
  INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, created_at, edited_at)
  SELECT NEW.id, NEW.body, 2, NEW.user_a, NEW.user_b, NEW.seq, NEW."from", NEW.type, NEW.created_at,
    NEW.edited_at
  WHERE NEW.deleted = 0;
END;
CREATE TEMP TRIGGER IF NOT EXISTS search_dm_delete AFTER DELETE ON main.message BEGIN
  DELETE FROM message_fts WHERE rowid = OLD.id;
END;
)sql";

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

// The indexer's statements: the queue's oldest `batch` ids up to ?1, copied from their tables.
// A message deleted (or removed with its channel) while queued is skipped and leaves the queue.
// CROSS JOIN keeps the queue the outer loop: left to itself, the planner walked the message
// table's whole id range below ?1 and probed the queue, a cost that grew with the history.
constexpr const char* kIndexQueued[] = {
    "INSERT OR REPLACE INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type,"
    " created_at, edited_at)"
    " SELECT m.message_id, m.body, 1, m.channel_id, 0, m.seq, m.\"from\", m.type, m.created_at,"
    " m.edited_at FROM search_queue q CROSS JOIN channel_message m ON m.message_id = q.id"
    " WHERE q.id <= ?1 AND q.kind = 1 AND m.deleted = 0",
    "INSERT OR REPLACE INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type,"
    " created_at, edited_at)"
    " SELECT m.id, m.body, 2, m.user_a, m.user_b, m.seq, m.\"from\", m.type, m.created_at,"
    " m.edited_at FROM search_queue q CROSS JOIN message m ON m.id = q.id"
    " WHERE q.id <= ?1 AND q.kind = 2 AND m.deleted = 0",
    "DELETE FROM search_queue WHERE id <= ?1",
};

Result<bool> index_queued(SqliteConnection& c, std::uint32_t batch) {
  // The id `batch` rows in, or the newest when fewer are queued.
  auto nth = c.prepare("SELECT id FROM search_queue ORDER BY id LIMIT 1 OFFSET ?");
  if (!nth.ok()) return nth.error();
  nth->bind(1, std::int64_t{batch} - 1);
  auto row = nth->step();
  if (!row.ok()) return row.error();
  const bool full = *row;
  std::int64_t hi = full ? nth->column_int64(0) : 0;
  nth->reset();
  if (!full) {
    auto newest = scalar(c, "SELECT COALESCE(MAX(id), 0) FROM search_queue");
    if (!newest.ok()) return newest.error();
    if (*newest == 0) return false;
    hi = *newest;
  }
  for (const char* sql : kIndexQueued) {
    auto s = c.prepare(sql);
    if (!s.ok()) return s.error();
    s->bind_all(hi);
    IMD_TRY(s->run());
  }
  if (!full) return false;
  auto more = scalar(c, "SELECT EXISTS (SELECT 1 FROM search_queue)");
  if (!more.ok()) return more.error();
  return *more != 0;
}

}  // namespace

SqliteSearch::SqliteSearch(std::shared_ptr<SqliteDatabase> db, SqliteSearchOptions options)
    : db_(std::move(db)), options_(options) {
  // One transaction: a database that had search off gets its whole history queued for the
  // back-fill, and the triggers exist before the next write.
  auto installed = db_->write([](SqliteConnection& c) -> Result<void> {
    auto enabled = scalar(c, "SELECT enabled FROM search_state WHERE id = 1");
    if (!enabled.ok()) return enabled.error();
    if (*enabled == 0) {
      auto top = scalar(c,
                        "SELECT MAX(COALESCE((SELECT MAX(message_id) FROM channel_message), 0),"
                        " COALESCE((SELECT MAX(id) FROM message), 0))");
      if (!top.ok()) return top.error();
      auto s = c.prepare(
          "UPDATE search_state SET enabled = 1, pending_lo = 0, pending_hi = ? WHERE id = 1");
      if (!s.ok()) return s.error();
      s->bind_all(*top + 1);
      IMD_TRY(s->run());
    }
    return c.exec_script(kTriggers);
  });
  if (!installed.ok()) {
    throw std::runtime_error("search: cannot install the index triggers: " +
                             installed.error().message);
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
        // Sends waiting for the writer: a short transaction, so that they wait little.
        std::uint32_t small = 0;
        if (busy_ && busy_()) {
          small = std::max<std::uint32_t>(options_.index_batch_busy, 1);
          yielded_.fetch_add(1, std::memory_order_relaxed);
        }
        auto more = index_step(small);
        if (!more.ok() || *more) return more;
        return backfill_step(small);
      },
      std::chrono::milliseconds(options_.backfill_pause_ms),
      std::chrono::milliseconds(std::max(options_.index_idle_ms, 1)));
}

Result<bool> SqliteSearch::index_step(std::uint32_t batch) {
  if (batch == 0) batch = std::max<std::uint32_t>(options_.index_batch, 1);
  return db_->write([&](SqliteConnection& c) { return index_queued(c, batch); });
}

Result<std::int64_t> SqliteSearch::queued() const {
  return db_->read(
      [](SqliteConnection& c) { return scalar(c, "SELECT COUNT(*) FROM search_queue"); });
}

Result<bool> SqliteSearch::backfill_step(std::uint32_t batch) {
  if (batch == 0) batch = std::max<std::uint32_t>(options_.backfill_batch, 1);
  return db_->write([&](SqliteConnection& c) -> Result<bool> {
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
                        "SELECT message_id FROM channel_message WHERE message_id >= ?"
                        " AND message_id < ? ORDER BY message_id DESC LIMIT 1 OFFSET ?",
                        lo, hi, batch);
    if (!ch.ok()) return ch.error();
    auto dm = nth_below(c,
                        "SELECT id FROM message WHERE id >= ? AND id < ?"
                        " ORDER BY id DESC LIMIT 1 OFFSET ?",
                        lo, hi, batch);
    if (!dm.ok()) return dm.error();
    const std::int64_t from = std::max({lo, *ch, *dm});
    const char* const kSteps[] = {
        "DELETE FROM message_fts WHERE rowid >= ?1 AND rowid < ?2",
        "INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, "
        "created_at, edited_at)"
        " SELECT message_id, body, 1, channel_id, 0, seq, \"from\", type, created_at, edited_at"
        " FROM channel_message WHERE message_id >= ?1 AND message_id < ?2 AND deleted = 0",
        "INSERT INTO message_fts (rowid, body, kind, conv_a, conv_b, seq, sender, type, "
        "created_at, edited_at)"
        " SELECT id, body, 2, user_a, user_b, seq, \"from\", type, created_at, edited_at"
        " FROM message WHERE id >= ?1 AND id < ?2 AND deleted = 0",
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
  return db_->read([](SqliteConnection& c) -> Result<bool> {
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
      " AND ((kind = 1 AND EXISTS (SELECT 1 FROM channel_user cu"
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
  auto page = db_->read([&](SqliteConnection& c) -> Result<SearchPage> {
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
