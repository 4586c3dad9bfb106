#include "store_mysql/mysql_search.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "store_sql/search_sql.hpp"

namespace imd {

namespace {

// MariaDB's error when max_statement_time ran out.
constexpr unsigned kStatementTimeout = 1969;

// A term as a required phrase of Mroonga's boolean mode: +"...", with " and \ escaped. Inside
// the quotes nothing is an operator.
std::string required_phrase(std::string_view term) {
  std::string s = "+\"";
  for (char ch : term) {
    if (ch == '"' || ch == '\\') s += '\\';
    s += ch;
  }
  s += '"';
  return s;
}

Result<std::uint64_t> nth_below(MysqlConnection& c, std::string_view sql, std::uint64_t lo,
                                std::uint64_t hi, std::uint32_t n) {
  auto s = c.run(sql, lo, hi, std::uint64_t{n - 1});
  if (!s.ok()) return s.error();
  auto row = (*s)->fetch();
  if (!row.ok()) return row.error();
  std::uint64_t v = *row ? (*s)->column_id(0) : 0;
  while (*row) {
    row = (*s)->fetch();
    if (!row.ok()) return row.error();
  }
  return v;
}

}  // namespace

MysqlSearch::MysqlSearch(std::shared_ptr<MysqlDatabase> db, MysqlSearchOptions options)
    : db_(std::move(db)), options_(options) {}

void MysqlSearch::start_backfill() {
  if (filler_) return;
  filler_ = std::make_unique<StepThread>(
      "imd-search-fill", [this] { return backfill_step(); },
      std::chrono::milliseconds(options_.backfill_pause_ms));
}

Result<bool> MysqlSearch::backfill_step() {
  const std::uint32_t batch = std::max<std::uint32_t>(options_.backfill_batch, 1);
  return db_->write([&](MysqlConnection& c) -> Result<bool> {
    auto st = c.run("SELECT pending_lo, pending_hi FROM search_state WHERE id = 1 FOR UPDATE");
    if (!st.ok()) return st.error();
    auto row = (*st)->fetch();
    if (!row.ok()) return row.error();
    if (!*row) return false;
    const std::uint64_t lo = (*st)->column_id(0), hi = (*st)->column_id(1);
    while (*row) {
      row = (*st)->fetch();
      if (!row.ok()) return row.error();
    }
    if (hi <= lo) return false;
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
    const std::uint64_t from = std::max({lo, *ch, *dm});
    // INSERT ... SELECT reads the source rows with shared locks: a concurrent edit waits, or
    // committed first and is what gets copied.
    IMD_TRY(
        c.run("REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type,"
              " created_at, edited_at) SELECT message_id, body, 1, channel_id, 0, seq,"
              " `from`, type, created_at, edited_at FROM channel_message"
              " WHERE message_id >= ? AND message_id < ? AND deleted = 0",
              from, hi));
    IMD_TRY(
        c.run("REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type,"
              " created_at, edited_at) SELECT id, body, 2, user_a, user_b, seq, `from`,"
              " type, created_at, edited_at FROM message"
              " WHERE id >= ? AND id < ? AND deleted = 0",
              from, hi));
    const bool done = from == lo;
    IMD_TRY(c.run("UPDATE search_state SET pending_lo = ?, pending_hi = ? WHERE id = 1",
                  done ? std::uint64_t{0} : lo, done ? std::uint64_t{0} : from));
    return !done;
  });
}

Result<bool> MysqlSearch::indexing() {
  return db_->read([](MysqlConnection& c) -> Result<bool> {
    auto s = c.run("SELECT pending_hi > pending_lo FROM search_state WHERE id = 1");
    if (!s.ok()) return s.error();
    auto row = (*s)->fetch();
    if (!row.ok()) return row.error();
    bool pending = *row && (*s)->column_int64(0) != 0;
    while (*row) {
      row = (*s)->fetch();
      if (!row.ok()) return row.error();
    }
    return pending;
  });
}

Result<SearchPage> MysqlSearch::search(Id user, const SearchQuery& q) {
  std::string against;
  std::vector<std::string> likes;
  for (const auto& t : q.terms) {
    if (!against.empty()) against += ' ';
    against += required_phrase(t);
    likes.push_back(sql::like_pattern(t));
  }
  // Built from constant pieces (the time budget is ours, the number of terms decides the LIKE
  // filters); every value is bound.
  char budget[32];
  std::snprintf(budget, sizeof budget, "%.3f", options_.timeout_ms / 1000.0);
  std::string text = std::string("SET STATEMENT max_statement_time = ") + budget +
                     " FOR SELECT f.id, f.kind, f.conv_a, f.conv_b, f.seq, f.sender, f.type,"
                     " f.created_at, f.edited_at, COALESCE(cm.body, m.body)"
                     " FROM message_fts f"
                     " LEFT JOIN channel_message cm ON f.kind = 1 AND cm.message_id = f.id"
                     "  AND cm.deleted = 0"
                     " LEFT JOIN message m ON f.kind = 2 AND m.id = f.id AND m.deleted = 0"
                     " WHERE MATCH(f.body) AGAINST(? IN BOOLEAN MODE)"
                     " AND f.id < ? AND f.created_at > ? AND f.created_at < ?"
                     " AND (? = 0 OR f.sender = ?)"
                     " AND (? = 0 OR (f.kind = ? AND f.conv_a = ? AND f.conv_b = ?))"
                     " AND ((f.kind = 1 AND EXISTS (SELECT 1 FROM channel_user cu"
                     "       WHERE cu.channel_id = f.conv_a AND cu.user_id = ?))"
                     "   OR (f.kind = 2 AND (f.conv_a = ? OR f.conv_b = ?)))"
                     " AND (cm.message_id IS NOT NULL OR m.id IS NOT NULL)";
  for (std::size_t i = 0; i < likes.size(); ++i) {
    text += " AND COALESCE(cm.body, m.body) COLLATE utf8mb4_general_ci LIKE ?";
  }
  text += " ORDER BY f.id DESC LIMIT ?";

  const std::uint32_t limit = std::max<std::uint32_t>(q.limit, 1);
  const std::uint64_t in_kind = q.in ? static_cast<std::uint64_t>(q.in->kind) : 0;
  const std::uint64_t in_a = q.in ? q.in->a : 0, in_b = q.in ? q.in->b : 0;
  auto page = db_->read([&](MysqlConnection& c) -> Result<SearchPage> {
    auto stmt = c.prepare(text);
    if (!stmt.ok()) return stmt.error();
    MysqlStatement& s = **stmt;
    s.bind_all(against, q.before_id == 0 ? UINT64_MAX : q.before_id, q.after, q.before, q.from,
               q.from, in_kind, in_kind, in_a, in_b, user, user, user);
    for (const auto& l : likes) s.bind(l);
    s.bind(std::uint64_t{limit} + 1);
    IMD_TRY(s.execute());
    SearchPage out;
    for (;;) {
      auto row = s.fetch();
      if (!row.ok()) return row.error();
      if (!*row) break;
      if (out.hits.size() == limit) {
        out.next_before = out.hits.back().id;
        continue;  // read the rest of the result (at most one row)
      }
      out.hits.push_back(sql::search_hit(s));
    }
    return out;
  });
  if (!page.ok()) {
    if (page.error().message.find("max_statement_time") != std::string::npos ||
        page.error().message.find(std::to_string(kStatementTimeout)) != std::string::npos ||
        page.error().message.find("interrupted") != std::string::npos) {
      return make_error(Errc::unavailable, "the search took longer than " +
                                               std::to_string(options_.timeout_ms) +
                                               " ms: narrow it (in=, from=, after=, longer words)");
    }
    return page.error();
  }
  auto pending = indexing();
  if (!pending.ok()) return pending.error();
  page->indexing = *pending;
  return page;
}

}  // namespace imd
