// SqliteStore and SqliteDialect (sqlite_store.hpp): SQLite's group commit and cursor write, the
// history row cache, and the instantiation of SqlStore<SqliteDialect>.
#include "store/sqlite_store.hpp"

#include <algorithm>
#include <utility>

#include "store_sql/sql_store_impl.hpp"

namespace imd {

template class SqlStore<SqliteDialect>;

namespace {

// --- the group commit

// Stores the items of one batch inside the caller's write transaction, with every statement
// prepared once for the whole batch.
class BatchAppender {
 public:
  explicit BatchAppender(SqliteConnection& c) : c_(c) {}

  Result<void> prepare() {
    IMD_TRY(prep(find_cid_, "SELECT message_id FROM message_cid WHERE sender_id = ? AND cid = ?"));
    IMD_TRY(prep(bump_channel_,
                 "UPDATE channel SET last_seq = last_seq + 1, last_message_id = ?2"
                 " WHERE id = ?1 AND archived = 0 RETURNING last_seq"));
    IMD_TRY(prep(channel_exists_, "SELECT 1 FROM channel WHERE id = ?1"));
    IMD_TRY(prep(insert_channel_,
                 "INSERT INTO channel_message"
                 "(channel_id, message_id, seq, \"from\", type, body, created_at, cid, reply_to)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    IMD_TRY(prep(cursor_channel_,
                 "UPDATE channel_user SET read_seq = MAX(read_seq, ?3)"
                 " WHERE channel_id = ?1 AND user_id = ?2"));
    IMD_TRY(prep(insert_dm_,
                 "INSERT INTO dm(user_a, user_b, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(user_a, user_b) DO NOTHING"));
    IMD_TRY(prep(insert_dm_user_,
                 "INSERT INTO dm_user(user_id, peer_id, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(user_id, peer_id) DO NOTHING"));
    IMD_TRY(prep(bump_dm_,
                 "UPDATE dm SET last_seq = last_seq + 1, last_message_id = ?3"
                 " WHERE user_a = ?1 AND user_b = ?2 RETURNING last_seq"));
    IMD_TRY(prep(insert_dm_message_,
                 "INSERT INTO message"
                 "(id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid,"
                 " reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    IMD_TRY(prep(cursor_dm_,
                 "UPDATE dm_user SET read_seq = MAX(read_seq, ?3)"
                 " WHERE user_id = ?1 AND peer_id = ?2"));
    IMD_TRY(
        prep(insert_cid_, "INSERT INTO message_cid(sender_id, cid, message_id) VALUES (?, ?, ?)"));
    return {};
  }

  // Appends the item's outcome to `out`; an error return is an engine failure (abort).
  Result<void> append(const Message& in, std::vector<Result<Appended>>& out) {
    if (!sql::valid_target(in)) {
      out.push_back(sql::bad_conv());
      return {};
    }
    std::optional<std::string> cid;
    if (!in.cid.empty()) {
      cid = in.cid;
      std::optional<Id> original_id;
      find_cid_.bind_all(to_db(in.from), in.cid);
      auto found =
          find_cid_.step_once([&](const SqliteStatement& s) { original_id = s.column_id(0); });
      find_cid_.reset();
      if (!found.ok()) return found.error();
      if (original_id) {
        auto original = sql::stored_duplicate<SqliteDialect>(c_, *original_id, in.conv.kind);
        if (!original.ok()) return original.error();
        out.push_back(std::move(*original));
        return {};
      }
    }

    Message m = in;
    std::optional<std::uint64_t> seq;
    auto take_seq = [&](const SqliteStatement& s) { seq = s.column_id(0); };
    if (m.conv.is_channel()) {
      m.conv = ConvKey::channel(in.conv.a);
      m.to = 0;
      bump_channel_.bind_all(to_db(m.conv.a), to_db(m.id));
      auto bumped = bump_channel_.step_once(take_seq);
      bump_channel_.reset();
      if (!bumped.ok()) return bumped.error();
      if (!seq) {
        // Missing, or archived (read-only): which one is asked only here, off the common path.
        bool exists = false;
        channel_exists_.bind_all(to_db(m.conv.a));
        auto found = channel_exists_.step_once([&](const SqliteStatement&) { exists = true; });
        channel_exists_.reset();
        if (!found.ok()) return found.error();
        out.push_back(exists ? sql::archived_channel()
                             : make_error(Errc::not_found, "channel not found"));
        return {};
      }
      m.seq = *seq;
      IMD_TRY(exec(insert_channel_, to_db(m.conv.a), to_db(m.id), to_db(m.seq), to_db(m.from),
                   m.type, m.body, m.created_at, cid, to_db(m.reply_to)));
      // Only when the sender has a member row: membership is the caller's check, not ours.
      IMD_TRY(exec(cursor_channel_, to_db(m.conv.a), to_db(m.from), to_db(m.seq)));
    } else {
      const Id a = m.conv.a, b = m.conv.b;
      m.to = m.conv.peer_of(m.from);
      // Bump first: the conversation almost always exists, and then the three inserts that
      // create it and both cursor rows (with its first message) are skipped.
      for (int attempt = 0; attempt < 2 && !seq; ++attempt) {
        if (attempt == 1) {
          IMD_TRY(exec(insert_dm_, to_db(a), to_db(b), m.created_at));
          IMD_TRY(exec(insert_dm_user_, to_db(a), to_db(b), m.created_at));
          IMD_TRY(exec(insert_dm_user_, to_db(b), to_db(a), m.created_at));
        }
        bump_dm_.bind_all(to_db(a), to_db(b), to_db(m.id));
        auto bumped = bump_dm_.step_once(take_seq);
        bump_dm_.reset();
        if (!bumped.ok()) return bumped.error();
      }
      if (!seq) return make_error(Errc::internal, "dm row missing right after its insert");
      m.seq = *seq;
      IMD_TRY(exec(insert_dm_message_, to_db(m.id), to_db(m.from), to_db(m.to), m.type, m.body,
                   m.created_at, to_db(a), to_db(b), to_db(m.seq), cid, to_db(m.reply_to)));
      IMD_TRY(exec(cursor_dm_, to_db(m.from), to_db(m.to), to_db(m.seq)));
    }
    if (cid) IMD_TRY(exec(insert_cid_, to_db(m.from), *cid, to_db(m.id)));
    out.push_back(Appended{.msg = std::move(m), .duplicate = false});
    return {};
  }

 private:
  Result<void> prep(SqliteStatement& s, std::string_view sql) {
    auto r = c_.prepare(sql);
    if (!r.ok()) return r.error();
    s = std::move(*r);
    return {};
  }

  template <class... Args>
  static Result<void> exec(SqliteStatement& s, const Args&... args) {
    s.bind_all(args...);
    auto r = s.run();
    s.reset();
    return r;
  }

  SqliteConnection& c_;
  SqliteStatement find_cid_;
  SqliteStatement bump_channel_, channel_exists_, insert_channel_, cursor_channel_;
  SqliteStatement insert_dm_, insert_dm_user_, bump_dm_, insert_dm_message_, cursor_dm_;
  SqliteStatement insert_cid_;
};

}  // namespace

Result<std::vector<Result<Appended>>> SqliteDialect::append_batch(
    SqliteConnection& c, std::span<const NewMessage> batch) {
  BatchAppender appender(c);
  IMD_TRY(appender.prepare());
  std::vector<Result<Appended>> out;
  out.reserve(batch.size());
  for (const NewMessage& item : batch) IMD_TRY(appender.append(item.msg, out));
  return out;
}

Result<std::uint64_t> SqliteDialect::write_cursor(SqliteConnection& c, const sql::CursorWrite& w) {
  const bool channel = w.conv.is_channel();
  auto updated = [&] {
    if (w.kind == sql::CursorKind::read) {
      return channel ? change(c,
                              "UPDATE channel_user SET read_seq = ?3"
                              " WHERE channel_id = ?1 AND user_id = ?2",
                              w.conv.a, w.user, w.target)
                     : change(c,
                              "UPDATE dm_user SET read_seq = ?3"
                              " WHERE user_id = ?1 AND peer_id = ?2",
                              w.user, w.peer, w.target);
    }
    return channel
               ? change(
                     c,
                     "UPDATE channel_user SET last_ack_seq = ?3, last_ack_message_id = COALESCE("
                     "(SELECT message_id FROM channel_message WHERE channel_id = ?1 AND seq = ?3),"
                     " last_ack_message_id) WHERE channel_id = ?1 AND user_id = ?2",
                     w.conv.a, w.user, w.target)
               : change(c,
                        "UPDATE dm_user SET last_ack_seq = ?3, last_ack_message_id = COALESCE("
                        "(SELECT id FROM message WHERE user_a = ?4 AND user_b = ?5 AND seq = ?3),"
                        " last_ack_message_id) WHERE user_id = ?1 AND peer_id = ?2",
                        w.user, w.peer, w.target, w.conv.a, w.conv.b);
  }();
  if (!updated.ok()) return updated.error();
  return w.target;
}

SqliteStore::SqliteStore(std::shared_ptr<SqliteDatabase> db, std::size_t row_cache_bytes)
    : SqlStore(std::move(db)) {
  if (row_cache_bytes > 0) rows_.emplace(row_cache_bytes);
}

std::optional<std::vector<Message>> SqliteStore::cached_messages(const ConvKey& conv,
                                                                 const HistoryQuery& q) {
  if (!rows_ || (q.before_seq && q.after_seq) || (!conv.is_channel() && !sql::valid_dm(conv))) {
    return std::nullopt;
  }
  const auto count =
      static_cast<std::size_t>(std::clamp<std::uint32_t>(q.limit, 1, sql::kMaxHistoryPage));
  if (q.before_seq && *q.before_seq > count) return rows_->rows(conv, *q.before_seq - count, count);
  if (q.after_seq && *q.after_seq < UINT64_MAX) return rows_->rows(conv, *q.after_seq + 1, count);
  return std::nullopt;
}

Result<std::vector<Message>> SqliteStore::messages(const ConvKey& conv, const HistoryQuery& q) {
  // cached_messages declines what SqlStore::messages rejects, so the errors stay its own.
  if (auto page = cached_messages(conv, q)) return std::move(*page);
  auto page = SqlStore::messages(conv, q);
  if (rows_ && page.ok()) rows_->remember(*page);
  return page;
}

Result<std::vector<Result<Changed>>> SqliteStore::change_messages(
    std::span<const NewMessage> batch) {
  auto changed = SqlStore::change_messages(batch);
  if (rows_ && changed.ok()) {
    std::vector<Message> now;
    for (const auto& c : *changed) {
      if (c.ok()) now.push_back(c->msg);
    }
    rows_->remember(now);
  }
  return changed;
}

Result<DeletedChannel> SqliteStore::delete_channel(Id id) {
  auto deleted = SqlStore::delete_channel(id);
  if (rows_ && deleted.ok()) rows_->forget(ConvKey::channel(id));
  return deleted;
}

Result<std::vector<DeliveryUpdate>> SqliteStore::advance_deliveries(
    std::span<const DeliveryUpdate> updates) {
  using Out = std::vector<DeliveryUpdate>;
  if (updates.empty()) return Out{};
  return db_->write([&](SqliteConnection& c) -> Result<Out> {
    Out out;
    out.reserve(updates.size());
    for (const auto& u : updates) {
      auto r = advance_cursor(c, u.user, u.conv, u.seq, sql::CursorKind::delivery);
      if (r) {
        out.push_back({u.user, u.conv, *r});
      } else if (r.error().code != Errc::forbidden && r.error().code != Errc::not_found &&
                 r.error().code != Errc::invalid_argument) {
        return r.error();
      }
    }
    return out;
  });
}

}  // namespace imd
