#include "store_mysql/mysql_store.hpp"

#include "store_sql/row_mappers.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <utility>

namespace imd {

namespace {

constexpr std::uint32_t kMaxHistoryPage = 100;

// --- multi-row statements

// A batch's rows are sent in chunks of these sizes (largest first), so each multi-row
// statement exists in four shapes only, each prepared once per connection.
constexpr std::array<std::size_t, 4> kChunkSizes = {128, 32, 8, 1};

// The text of one multi-row statement for each chunk size: head, then `row` repeated with
// `sep` between, then tail. Built from constant pieces only; values are always '?'.
class MultiRowSql {
 public:
  MultiRowSql(std::string_view head, std::string_view row, std::string_view sep,
              std::string_view tail) {
    for (std::size_t i = 0; i < kChunkSizes.size(); ++i) {
      std::string& sql = text_[i];
      sql.assign(head);
      for (std::size_t r = 0; r < kChunkSizes[i]; ++r) {
        if (r > 0) sql.append(sep);
        sql.append(row);
      }
      sql.append(tail);
    }
  }
  std::string_view operator()(std::size_t rows) const {
    for (std::size_t i = 0; i < kChunkSizes.size(); ++i) {
      if (kChunkSizes[i] == rows) return text_[i];
    }
    return {};  // unreachable: for_each_chunk only asks for the sizes above
  }

 private:
  std::array<std::string, kChunkSizes.size()> text_;
};

// How a list of rows is cut into statements.
enum class Chunking {
  // Largest chunks first, exactly: for INSERTs, where a row must not be sent twice.
  exact,
  // A short last chunk repeats its last row up to the next statement size, so a list of up to
  // 128 rows is one statement. For statements where a repeated row changes nothing: lookups,
  // locks, and UPDATEs that set the same value twice.
  padded,
};

// Calls fn(rows) for consecutive chunks covering indices [0, n), in order; `rows` holds the
// chunk's indices (with repeats when padded), one per row of a kChunkSizes statement.
template <class F>
Result<void> for_each_chunk(std::size_t n, Chunking how, F&& fn) {
  std::vector<std::size_t> rows;
  for (std::size_t done = 0; done < n;) {
    const std::size_t left = n - done;
    std::size_t size = kChunkSizes.front();
    if (how == Chunking::exact) {
      // The largest size that fits (the list ends with 1).
      size = *std::find_if(kChunkSizes.begin(), kChunkSizes.end(),
                           [&](std::size_t c) { return c <= left; });
    } else {
      // The smallest size that holds the rest, or the largest.
      for (std::size_t c : kChunkSizes) {
        if (c >= left) size = c;
      }
    }
    const std::size_t take = std::min(size, left);
    rows.clear();
    for (std::size_t k = 0; k < size; ++k) rows.push_back(done + std::min(k, take - 1));
    IMD_TRY(fn(std::span<const std::size_t>(rows)));
    done += take;
  }
  return {};
}

// Parameters in derived tables get their type from CAST: compared with a BIGINT UNSIGNED key
// as anything else (a string, a double) they would lose precision above 2^53.
const MultiRowSql kFindCids("SELECT sender_id, cid, message_id FROM message_cid WHERE ",
                            "(sender_id = ? AND cid = ?)", " OR ", "");
const MultiRowSql kLockChannels("SELECT id, last_seq, last_message_id FROM channel WHERE id IN (",
                                "?", ", ", ") ORDER BY id FOR UPDATE");
const MultiRowSql kLockDms("SELECT user_a, user_b, last_seq, last_message_id FROM dm WHERE ",
                           "(user_a = ? AND user_b = ?)", " OR ",
                           " ORDER BY user_a, user_b FOR UPDATE");
const MultiRowSql kInsertDms("INSERT INTO dm (user_a, user_b, created_at) VALUES ", "(?, ?, ?)",
                             ", ", "");
const MultiRowSql kInsertDmUsers("INSERT INTO dm_user (user_id, peer_id, created_at) VALUES ",
                                 "(?, ?, ?)", ", ", "");
const MultiRowSql kInsertChannelMessages(
    "INSERT INTO channel_message"
    " (channel_id, message_id, seq, `from`, type, body, created_at, cid) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?)", ", ", "");
const MultiRowSql kInsertDmMessages(
    "INSERT INTO message"
    " (id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ", ", "");
const MultiRowSql kInsertCids("INSERT INTO message_cid (sender_id, cid, message_id) VALUES ",
                              "(?, ?, ?)", ", ", "");
const MultiRowSql kBumpChannels(
    "UPDATE channel ch JOIN (",
    "SELECT CAST(? AS UNSIGNED) AS k, CAST(? AS UNSIGNED) AS s, CAST(? AS UNSIGNED) AS m",
    " UNION ALL ", ") v ON ch.id = v.k SET ch.last_seq = v.s, ch.last_message_id = v.m");
const MultiRowSql kBumpDms(
    "UPDATE dm d JOIN (",
    "SELECT CAST(? AS UNSIGNED) AS a, CAST(? AS UNSIGNED) AS b, CAST(? AS UNSIGNED) AS s,"
    " CAST(? AS UNSIGNED) AS m",
    " UNION ALL ",
    ") v ON d.user_a = v.a AND d.user_b = v.b SET d.last_seq = v.s, d.last_message_id = v.m");
const MultiRowSql kReadChannels(
    "UPDATE channel_user cu JOIN (",
    "SELECT CAST(? AS UNSIGNED) AS c, CAST(? AS UNSIGNED) AS u, CAST(? AS UNSIGNED) AS s",
    " UNION ALL ",
    ") v ON cu.channel_id = v.c AND cu.user_id = v.u SET cu.read_seq = GREATEST(cu.read_seq, v.s)");
const MultiRowSql kReadDms(
    "UPDATE dm_user du JOIN (",
    "SELECT CAST(? AS UNSIGNED) AS u, CAST(? AS UNSIGNED) AS p, CAST(? AS UNSIGNED) AS s",
    " UNION ALL ",
    ") v ON du.user_id = v.u AND du.peer_id = v.p SET du.read_seq = GREATEST(du.read_seq, v.s)");

// --- history pages, indexed by shape: 0 before, 1 after, 2 newest. Parameters: the
// conversation (channel_id, or user_a and user_b), the bound seq (not for newest), the limit.
// Each is a range read of the clustered primary key (conversation, seq); DESC pages are
// reversed by the caller.
constexpr std::string_view kChannelHistory[] = {
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ? ORDER BY seq DESC LIMIT ?",
};
constexpr std::string_view kDmHistory[] = {
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid FROM message"
    " WHERE user_a = ? AND user_b = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid FROM message"
    " WHERE user_a = ? AND user_b = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid FROM message"
    " WHERE user_a = ? AND user_b = ? ORDER BY seq DESC LIMIT ?",
};

// --- row mappers (store_sql/row_mappers.hpp documents the column lists they expect)
User read_user(const MysqlStatement& s, int c = 0) {
  return rows::user(s, c);
}
Space read_space(const MysqlStatement& s) {
  return rows::space(s);
}
Channel read_channel(const MysqlStatement& s) {
  return rows::channel(s);
}
Member read_member(const MysqlStatement& s) {
  return rows::member(s);
}
Message read_channel_message(const MysqlStatement& s, int c = 0) {
  return rows::channel_message(s, c);
}
Message read_dm_message(const MysqlStatement& s, int c = 0) {
  return rows::dm_message(s, c);
}

// --- small helpers over an executed statement

template <class T, class F>
Result<std::vector<T>> collect(MysqlStatement& s, F&& fn) {
  std::vector<T> out;
  for (;;) {
    auto row = s.fetch();
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(fn(s));
  }
}

// The first row mapped by fn, or not_found with `what`.
template <class T, class F>
Result<T> one(MysqlStatement& s, F&& fn, std::string_view what) {
  auto row = s.fetch();
  if (!row.ok()) return row.error();
  if (!*row) return make_error(Errc::not_found, std::string(what) + " not found");
  return fn(s);
}

Result<bool> exists(MysqlStatement& s) {
  return s.fetch();
}

// Runs `sql` with `args` and maps its rows with fn.
template <class T, class F, class... Args>
Result<std::vector<T>> query(MysqlConnection& c, std::string_view sql, F&& fn,
                             const Args&... args) {
  auto s = c.run(sql, args...);
  if (!s.ok()) return s.error();
  return collect<T>(**s, fn);
}

template <class T, class F, class... Args>
Result<T> query_one(MysqlConnection& c, std::string_view sql, F&& fn, std::string_view what,
                    const Args&... args) {
  auto s = c.run(sql, args...);
  if (!s.ok()) return s.error();
  return one<T>(**s, fn, what);
}

template <class... Args>
Result<bool> query_exists(MysqlConnection& c, std::string_view sql, const Args&... args) {
  auto s = c.run(sql, args...);
  if (!s.ok()) return s.error();
  return exists(**s);
}

// Runs a statement without rows; returns the affected (for UPDATE: matched) row count.
template <class... Args>
Result<std::uint64_t> change(MysqlConnection& c, std::string_view sql, const Args&... args) {
  auto s = c.run(sql, args...);
  if (!s.ok()) return s.error();
  return (*s)->affected_rows();
}

bool valid_dm(const ConvKey& conv) {
  return conv.is_dm() && conv.a != 0 && conv.a < conv.b;
}

Error bad_conv() {
  return make_error(Errc::invalid_argument, "invalid conversation key");
}

Millis wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> null_if_empty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// --- cursors

enum class CursorKind { delivery, read };

// Moves one member cursor forward, clamped to the conversation's last_seq, inside a write
// transaction. Only the member's own row is locked (by the UPDATE); the conversation row is
// read without a lock, so a cursor update never waits behind a batch that holds it (and never
// takes locks in the opposite order of append_messages). A last_seq read a moment early only
// clamps lower. GREATEST keeps the cursor monotonic against a concurrent advance.
Result<std::uint64_t> advance_cursor(MysqlConnection& c, Id user_id, const ConvKey& conv,
                                     std::uint64_t seq, CursorKind kind) {
  const bool channel = conv.is_channel();
  if (!channel && !valid_dm(conv)) return bad_conv();
  if (!channel && !conv.has_participant(user_id)) {
    return make_error(Errc::forbidden, "not a participant of this conversation");
  }
  const Id peer_id = channel ? 0 : conv.peer_of(user_id);
  struct Row {
    std::uint64_t ack, read, last;
  };
  auto map_row = [](const MysqlStatement& s) {
    return Row{s.column_id(0), s.column_id(1), s.column_id(2)};
  };
  auto row = channel
                 ? query_one<Row>(c,
                                  "SELECT cu.last_ack_seq, cu.read_seq, ch.last_seq"
                                  " FROM channel_user cu JOIN channel ch ON ch.id = cu.channel_id"
                                  " WHERE cu.channel_id = ? AND cu.user_id = ?",
                                  map_row, "member", conv.a, user_id)
                 : query_one<Row>(c,
                                  "SELECT du.last_ack_seq, du.read_seq, d.last_seq"
                                  " FROM dm_user du JOIN dm d ON d.user_a = ? AND d.user_b = ?"
                                  " WHERE du.user_id = ? AND du.peer_id = ?",
                                  map_row, "member", conv.a, conv.b, user_id, peer_id);
  if (!row.ok()) {
    if (row.error().code != Errc::not_found) return row.error();
    return make_error(Errc::forbidden, channel ? "not a member of this channel"
                                               : "no message exchanged in this conversation yet");
  }
  const std::uint64_t before = kind == CursorKind::delivery ? row->ack : row->read;
  const std::uint64_t target = std::min(seq, row->last);
  if (target <= before) return before;

  if (kind == CursorKind::read) {
    auto updated = channel ? change(c,
                                    "UPDATE channel_user SET read_seq = GREATEST(read_seq, ?)"
                                    " WHERE channel_id = ? AND user_id = ?",
                                    target, conv.a, user_id)
                           : change(c,
                                    "UPDATE dm_user SET read_seq = GREATEST(read_seq, ?)"
                                    " WHERE user_id = ? AND peer_id = ?",
                                    target, user_id, peer_id);
    if (!updated.ok()) return updated.error();
    // Our own update is visible to our snapshot: the cursor as it is now.
    return channel
               ? query_one<std::uint64_t>(
                     c, "SELECT read_seq FROM channel_user WHERE channel_id = ? AND user_id = ?",
                     [](const MysqlStatement& s) { return s.column_id(0); }, "member", conv.a,
                     user_id)
               : query_one<std::uint64_t>(
                     c, "SELECT read_seq FROM dm_user WHERE user_id = ? AND peer_id = ?",
                     [](const MysqlStatement& s) { return s.column_id(0); }, "member", user_id,
                     peer_id);
  }

  // Delivery: last_ack_message_id follows last_ack_seq (SET assigns left to right, so the IF
  // sees the old last_ack_seq).
  auto message_id =
      channel
          ? query_one<Id>(
                c, "SELECT message_id FROM channel_message WHERE channel_id = ? AND seq = ?",
                [](const MysqlStatement& s) { return s.column_id(0); }, "message", conv.a, target)
          : query_one<Id>(
                c, "SELECT id FROM message WHERE user_a = ? AND user_b = ? AND seq = ?",
                [](const MysqlStatement& s) { return s.column_id(0); }, "message", conv.a, conv.b,
                target);
  if (!message_id.ok()) return message_id.error();  // messages are never deleted
  auto updated = channel
                     ? change(c,
                              "UPDATE channel_user SET"
                              " last_ack_message_id = IF(? > last_ack_seq, ?, last_ack_message_id),"
                              " last_ack_seq = GREATEST(last_ack_seq, ?)"
                              " WHERE channel_id = ? AND user_id = ?",
                              target, *message_id, target, conv.a, user_id)
                     : change(c,
                              "UPDATE dm_user SET"
                              " last_ack_message_id = IF(? > last_ack_seq, ?, last_ack_message_id),"
                              " last_ack_seq = GREATEST(last_ack_seq, ?)"
                              " WHERE user_id = ? AND peer_id = ?",
                              target, *message_id, target, user_id, peer_id);
  if (!updated.ok()) return updated.error();
  return target;
}

// --- the group commit

struct CidKey {
  Id sender = 0;
  std::string cid;
  auto operator<=>(const CidKey&) const = default;
};

// A conversation's counters, read under its row lock and advanced in memory.
struct Counter {
  std::uint64_t last_seq = 0;
  Id last_message_id = 0;
  bool touched = false;  // a message of this batch was stored in it
};

using DmKey = std::pair<Id, Id>;  // (user_a, user_b)

// Stores one batch inside the caller's transaction. See MysqlStore's header for the plan.
class BatchAppender {
 public:
  BatchAppender(MysqlConnection& c, std::span<const NewMessage> batch)
      : c_(c),
        batch_(batch),
        out_(batch.size()),
        store_(batch.size(), false),
        dup_of_(batch.size()) {}

  Result<std::vector<Result<Appended>>> run() {
    validate();
    // Locks first, in one global order (channels, then DMs, each ascending), then the first
    // plain read. InnoDB fixes a transaction's snapshot at its first plain read, so a consumer
    // that waited for a lock here sees everything the holder committed: a racing copy of the
    // same send finds the original instead of colliding with it on insert.
    IMD_TRY(lock_channels());
    IMD_TRY(lock_dms());
    IMD_TRY(resolve_known_cids());
    reject_missing_channels();
    pick_items_to_store();
    IMD_TRY(create_missing_dms());
    assign_seqs();
    IMD_TRY(write_messages());
    IMD_TRY(write_cids());
    IMD_TRY(write_counters());
    IMD_TRY(write_sender_cursors());
    std::vector<Result<Appended>> out;
    out.reserve(out_.size());
    for (auto& item : out_) out.push_back(std::move(*item));
    return out;
  }

 private:
  const Message& in(std::size_t i) const { return batch_[i].msg; }
  bool pending(std::size_t i) const { return !out_[i].has_value(); }

  void validate() {
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const Message& m = in(i);
      const bool ok = m.conv.is_dm() ? valid_dm(m.conv) && m.conv.has_participant(m.from)
                                     : m.conv.is_channel() && m.conv.a != 0;
      if (!ok) out_[i] = bad_conv();
    }
  }

  // Items whose (from, cid) is already stored get the original, marked duplicate. This is the
  // transaction's first plain read: it fixes the snapshot, in which that original is visible.
  Result<void> resolve_known_cids() {
    std::vector<CidKey> asked;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (pending(i) && !in(i).cid.empty()) asked.push_back({in(i).from, in(i).cid});
    }
    std::sort(asked.begin(), asked.end());
    asked.erase(std::unique(asked.begin(), asked.end()), asked.end());
    std::map<CidKey, Id> known;
    IMD_TRY(for_each_chunk(
        asked.size(), Chunking::padded, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kFindCids(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) (*s)->bind_all(asked[k].sender, asked[k].cid);
          IMD_TRY((*s)->execute());
          for (;;) {
            auto row = (*s)->fetch();
            if (!row.ok()) return row.error();
            if (!*row) return {};
            known[CidKey{(*s)->column_id(0), (*s)->column_text(1)}] = (*s)->column_id(2);
          }
        }));
    if (known.empty()) return {};
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (!pending(i) || in(i).cid.empty()) continue;
      auto it = known.find(CidKey{in(i).from, in(i).cid});
      if (it == known.end()) continue;
      auto original = load(it->second, in(i).conv.kind);
      if (!original.ok()) return original.error();
      if (!*original) {
        out_[i] = make_error(Errc::internal, "message_cid points to a missing message");
      } else {
        out_[i] = Appended{.msg = std::move(**original), .duplicate = true};
      }
    }
    return {};
  }

  // The stored message `id`, looked up first in the table of `hint` (a retry normally names
  // the same conversation), then in the other one.
  Result<std::optional<Message>> load(Id id, ConvKind hint) {
    for (ConvKind kind : {hint, hint == ConvKind::dm ? ConvKind::channel : ConvKind::dm}) {
      auto s = kind == ConvKind::dm
                   ? c_.run(
                         "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b,"
                         " seq, cid FROM message WHERE id = ?",
                         id)
                   : c_.run(
                         "SELECT channel_id, message_id, seq, `from`, type, body, created_at,"
                         " cid FROM channel_message WHERE message_id = ?",
                         id);
      if (!s.ok()) return s.error();
      auto row = (*s)->fetch();
      if (!row.ok()) return row.error();
      if (*row) {
        return std::optional<Message>(kind == ConvKind::dm ? read_dm_message(**s)
                                                           : read_channel_message(**s));
      }
    }
    return std::optional<Message>();
  }

  // Locks the batch's channels, ascending by id, and reads their counters.
  Result<void> lock_channels() {
    std::vector<Id> ids;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (pending(i) && in(i).conv.is_channel()) ids.push_back(in(i).conv.a);
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    IMD_TRY(for_each_chunk(
        ids.size(), Chunking::padded, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kLockChannels(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) (*s)->bind(ids[k]);
          IMD_TRY((*s)->execute());
          for (;;) {
            auto row = (*s)->fetch();
            if (!row.ok()) return row.error();
            if (!*row) return {};
            channels_[(*s)->column_id(0)] = Counter{(*s)->column_id(1), (*s)->column_id(2), false};
          }
        }));
    return {};
  }

  // A retried send is a duplicate even when its channel has gone since; otherwise an item of a
  // missing channel is not_found (and its cid stays free).
  void reject_missing_channels() {
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (pending(i) && in(i).conv.is_channel() && !channels_.contains(in(i).conv.a)) {
        out_[i] = make_error(Errc::not_found, "channel not found");
      }
    }
  }

  // A repeated (from, cid) within the batch is a duplicate of its first stored occurrence.
  void pick_items_to_store() {
    std::map<CidKey, std::size_t> first;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (!pending(i)) continue;
      if (!in(i).cid.empty()) {
        auto [it, inserted] = first.emplace(CidKey{in(i).from, in(i).cid}, i);
        if (!inserted) {
          dup_of_[i] = it->second;
          continue;
        }
      }
      store_[i] = true;
    }
  }

  // Locks the batch's existing DMs, ascending by (user_a, user_b), and reads their counters.
  Result<void> lock_dms() {
    std::vector<DmKey> keys;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (pending(i) && in(i).conv.is_dm()) keys.emplace_back(in(i).conv.a, in(i).conv.b);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return for_each_chunk(keys.size(), Chunking::padded,
                          [&](std::span<const std::size_t> chunk) -> Result<void> {
                            auto s = c_.prepare(kLockDms(chunk.size()));
                            if (!s.ok()) return s.error();
                            for (std::size_t k : chunk)
                              (*s)->bind_all(keys[k].first, keys[k].second);
                            IMD_TRY((*s)->execute());
                            for (;;) {
                              auto row = (*s)->fetch();
                              if (!row.ok()) return row.error();
                              if (!*row) return {};
                              dms_[DmKey{(*s)->column_id(0), (*s)->column_id(1)}] =
                                  Counter{(*s)->column_id(2), (*s)->column_id(3), false};
                            }
                          });
  }

  // A DM starts with its first message: the missing ones that get a message are created here,
  // ascending, with both participants' cursor rows. A concurrent creator of the same DM makes
  // the insert fail (or deadlock on the gap locks); the re-run then finds the row.
  Result<void> create_missing_dms() {
    std::map<DmKey, Millis> missing;  // -> created_at of its first message in the batch
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const DmKey key{in(i).conv.a, in(i).conv.b};
      if (store_[i] && in(i).conv.is_dm() && !dms_.contains(key)) {
        missing.emplace(key, in(i).created_at);
      }
    }
    if (missing.empty()) return {};
    std::vector<std::pair<DmKey, Millis>> rows(missing.begin(), missing.end());
    IMD_TRY(for_each_chunk(
        rows.size(), Chunking::exact, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kInsertDms(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) {
            (*s)->bind_all(rows[k].first.first, rows[k].first.second, rows[k].second);
          }
          return conflict_means_retry((*s)->execute());
        }));
    struct Cursor {
      Id user, peer;
      Millis at;
      auto operator<=>(const Cursor&) const = default;
    };
    std::vector<Cursor> cursors;
    for (const auto& [key, at] : rows) {
      cursors.push_back({key.first, key.second, at});
      cursors.push_back({key.second, key.first, at});
      dms_[key] = Counter{};
    }
    std::sort(cursors.begin(), cursors.end());
    return for_each_chunk(cursors.size(), Chunking::exact,
                          [&](std::span<const std::size_t> chunk) -> Result<void> {
                            auto s = c_.prepare(kInsertDmUsers(chunk.size()));
                            if (!s.ok()) return s.error();
                            for (std::size_t k : chunk) {
                              (*s)->bind_all(cursors[k].user, cursors[k].peer, cursors[k].at);
                            }
                            return conflict_means_retry((*s)->execute());
                          });
  }

  // In batch order: each stored item takes the next seq of its conversation.
  void assign_seqs() {
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (store_[i]) {
        Message m = in(i);
        Counter* counter;
        if (m.conv.is_channel()) {
          m.conv = ConvKey::channel(m.conv.a);
          m.to = 0;
          counter = &channels_.at(m.conv.a);
        } else {
          m.to = m.conv.peer_of(m.from);
          counter = &dms_.at(DmKey{m.conv.a, m.conv.b});
        }
        m.seq = ++counter->last_seq;
        counter->last_message_id = m.id;
        counter->touched = true;
        auto& cursor = m.conv.is_channel() ? channel_cursors_[{m.conv.a, m.from}]
                                           : dm_cursors_[{m.from, m.to}];
        cursor = std::max(cursor, m.seq);
        out_[i] = Appended{.msg = std::move(m), .duplicate = false};
        stored_.push_back(i);
      } else if (dup_of_[i]) {
        out_[i] = Appended{.msg = (*out_[*dup_of_[i]])->msg, .duplicate = true};
      }
    }
  }

  const Message& stored(std::size_t i) const { return (*out_[i])->msg; }

  Result<void> write_messages() {
    std::vector<std::size_t> channel_rows, dm_rows;
    for (std::size_t i : stored_) {
      (stored(i).conv.is_channel() ? channel_rows : dm_rows).push_back(i);
    }
    IMD_TRY(for_each_chunk(channel_rows.size(), Chunking::exact,
                           [&](std::span<const std::size_t> chunk) -> Result<void> {
                             auto s = c_.prepare(kInsertChannelMessages(chunk.size()));
                             if (!s.ok()) return s.error();
                             for (std::size_t k : chunk) {
                               const Message& m = stored(channel_rows[k]);
                               (*s)->bind_all(m.conv.a, m.id, m.seq, m.from, m.type, m.body,
                                              m.created_at, null_if_empty(m.cid));
                             }
                             return (*s)->execute();
                           }));
    return for_each_chunk(dm_rows.size(), Chunking::exact,
                          [&](std::span<const std::size_t> chunk) -> Result<void> {
                            auto s = c_.prepare(kInsertDmMessages(chunk.size()));
                            if (!s.ok()) return s.error();
                            for (std::size_t k : chunk) {
                              const Message& m = stored(dm_rows[k]);
                              (*s)->bind_all(m.id, m.from, m.to, m.type, m.body, m.created_at,
                                             m.conv.a, m.conv.b, m.seq, null_if_empty(m.cid));
                            }
                            return (*s)->execute();
                          });
  }

  // In key order. A conflict here means another consumer stored the same (from, cid) after this
  // transaction's snapshot: a re-run finds it and returns it as the duplicate.
  Result<void> write_cids() {
    std::vector<std::pair<CidKey, Id>> rows;
    for (std::size_t i : stored_) {
      const Message& m = stored(i);
      if (!m.cid.empty()) rows.emplace_back(CidKey{m.from, m.cid}, m.id);
    }
    std::sort(rows.begin(), rows.end());
    return for_each_chunk(
        rows.size(), Chunking::exact, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kInsertCids(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) {
            (*s)->bind_all(rows[k].first.sender, rows[k].first.cid, rows[k].second);
          }
          return conflict_means_retry((*s)->execute());
        });
  }

  Result<void> write_counters() {
    std::vector<std::pair<Id, const Counter*>> chans;
    for (const auto& [id, counter] : channels_) {
      if (counter.touched) chans.emplace_back(id, &counter);
    }
    IMD_TRY(for_each_chunk(chans.size(), Chunking::padded,
                           [&](std::span<const std::size_t> chunk) -> Result<void> {
                             auto s = c_.prepare(kBumpChannels(chunk.size()));
                             if (!s.ok()) return s.error();
                             for (std::size_t k : chunk) {
                               (*s)->bind_all(chans[k].first, chans[k].second->last_seq,
                                              chans[k].second->last_message_id);
                             }
                             return (*s)->execute();
                           }));
    std::vector<std::pair<DmKey, const Counter*>> dms;
    for (const auto& [key, counter] : dms_) {
      if (counter.touched) dms.emplace_back(key, &counter);
    }
    return for_each_chunk(
        dms.size(), Chunking::padded, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kBumpDms(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) {
            (*s)->bind_all(dms[k].first.first, dms[k].first.second, dms[k].second->last_seq,
                           dms[k].second->last_message_id);
          }
          return (*s)->execute();
        });
  }

  // The sender's read cursor moves to its newest message (one's own message is not unread);
  // the delivery cursor stays. A sender without a member row (membership is the caller's
  // check) has nothing to move.
  Result<void> write_sender_cursors() {
    auto write = [&](const std::map<std::pair<Id, Id>, std::uint64_t>& cursors,
                     const MultiRowSql& sql) {
      std::vector<std::pair<std::pair<Id, Id>, std::uint64_t>> rows(cursors.begin(), cursors.end());
      return for_each_chunk(
          rows.size(), Chunking::padded, [&](std::span<const std::size_t> chunk) -> Result<void> {
            auto s = c_.prepare(sql(chunk.size()));
            if (!s.ok()) return s.error();
            for (std::size_t k : chunk) {
              (*s)->bind_all(rows[k].first.first, rows[k].first.second, rows[k].second);
            }
            return (*s)->execute();
          });
    };
    IMD_TRY(write(channel_cursors_, kReadChannels));
    return write(dm_cursors_, kReadDms);
  }

  Result<void> conflict_means_retry(Result<void> r) {
    if (!r.ok() && r.error().code == Errc::conflict) c_.request_retry();
    return r;
  }

  MysqlConnection& c_;
  std::span<const NewMessage> batch_;
  std::vector<std::optional<Result<Appended>>> out_;  // set once an item's outcome is known
  std::vector<bool> store_;                           // a new message to store
  std::vector<std::optional<std::size_t>> dup_of_;    // a repeat of an earlier item's cid
  std::vector<std::size_t> stored_;                   // indices of stored items, batch order
  std::map<Id, Counter> channels_;
  std::map<DmKey, Counter> dms_;
  std::map<std::pair<Id, Id>, std::uint64_t> channel_cursors_;  // (channel, sender) -> seq
  std::map<std::pair<Id, Id>, std::uint64_t> dm_cursors_;       // (sender, peer) -> seq
};

// Member listing shared by spaces and channels (same shape, different membership table).
Result<std::vector<Member>> list_members(MysqlDatabase& db, std::string_view sql, Id group_id,
                                         Id after_user_id, std::uint32_t limit) {
  return db.read([&](MysqlConnection& c) {
    return query<Member>(c, sql, read_member, group_id, after_user_id, limit);
  });
}

}  // namespace

MysqlStore::MysqlStore(std::shared_ptr<MysqlDatabase> db) : db_(std::move(db)) {}

// --- users and sessions

Result<void> MysqlStore::create_user(const User& user, const std::string& password_hash) {
  auto r = db_->write([&](MysqlConnection& c) -> Result<void> {
    auto inserted = change(c,
                           "INSERT INTO `user` (id, name, avatar, password, phone, created_at)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           user.id, user.name, user.avatar, password_hash,
                           null_if_empty(user.phone), user.created_at);
    if (!inserted.ok()) return inserted.error();
    return {};
  });
  if (!r.ok() && r.error().code == Errc::conflict) {
    // The phone is the only unique key besides the id (generated, so never reused).
    const bool phone = r.error().message.find("'user_phone'") != std::string::npos;
    return make_error(Errc::conflict,
                      phone ? "phone already registered" : "user id already exists");
  }
  return r;
}

Result<UserCredentials> MysqlStore::user_by_phone(std::string_view phone) {
  return db_->read([&](MysqlConnection& c) {
    return query_one<UserCredentials>(
        c,
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at, password"
        " FROM `user` WHERE phone = ?",
        [](const MysqlStatement& s) {
          return UserCredentials{.user = read_user(s), .password_hash = s.column_text(5)};
        },
        "user", phone);
  });
}

Result<User> MysqlStore::user_by_id(Id id) {
  return db_->read([&](MysqlConnection& c) {
    return query_one<User>(
        c, "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user` WHERE id = ?",
        [](const MysqlStatement& s) { return read_user(s); }, "user", id);
  });
}

Result<std::vector<User>> MysqlStore::users_by_name(std::string_view name, std::uint32_t limit) {
  return db_->read([&](MysqlConnection& c) {
    // name's column collation (case-insensitive) decides the comparison; user_name_ci serves
    // it, and its entries are ordered by (name, id), so ORDER BY id needs no sort.
    return query<User>(
        c,
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user`"
        " WHERE name = ? ORDER BY id LIMIT ?",
        [](const MysqlStatement& s) { return read_user(s); }, name, limit);
  });
}

Result<User> MysqlStore::update_user(Id id, const std::optional<std::string>& name,
                                     const std::optional<std::string>& avatar) {
  return db_->write([&](MysqlConnection& c) -> Result<User> {
    // No UPDATE ... RETURNING in MariaDB: the row is read back in the same transaction.
    auto updated = change(c,
                          "UPDATE `user` SET name = COALESCE(?, name), avatar = COALESCE(?, avatar)"
                          " WHERE id = ?",
                          name, avatar, id);
    if (!updated.ok()) return updated.error();
    if (*updated == 0) return make_error(Errc::not_found, "user not found");
    return query_one<User>(
        c, "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user` WHERE id = ?",
        [](const MysqlStatement& s) { return read_user(s); }, "user", id);
  });
}

Result<void> MysqlStore::save_refresh_token(const RefreshToken& token) {
  return db_->write([&](MysqlConnection& c) -> Result<void> {
    // created_at is bookkeeping only (never compared with a caller's clock), so wall time.
    auto inserted = change(c,
                           "INSERT INTO refresh_token"
                           " (token_hash, user_id, expires_at, revoked, created_at)"
                           " VALUES (?, ?, ?, 0, ?)",
                           token.token_hash, token.user_id, token.expires_at, wall_clock_ms());
    if (!inserted.ok()) return inserted.error();
    return {};
  });
}

Result<RefreshToken> MysqlStore::take_refresh_token(std::string_view token_hash, Millis now) {
  return db_->write([&](MysqlConnection& c) -> Result<RefreshToken> {
    // The locking read holds the row until COMMIT: a concurrent take of the same token waits,
    // then reads it revoked. (MariaDB has no UPDATE ... RETURNING.)
    auto token = query_one<RefreshToken>(
        c,
        "SELECT token_hash, user_id, expires_at FROM refresh_token"
        " WHERE token_hash = ? AND revoked = 0 AND expires_at > ? FOR UPDATE",
        [](const MysqlStatement& s) {
          return RefreshToken{.token_hash = s.column_text(0),
                              .user_id = s.column_id(1),
                              .expires_at = s.column_int64(2)};
        },
        "valid refresh token", token_hash, now);
    if (!token.ok()) return token.error();
    auto revoked =
        change(c, "UPDATE refresh_token SET revoked = 1 WHERE token_hash = ?", token_hash);
    if (!revoked.ok()) return revoked.error();
    return token;
  });
}

Result<void> MysqlStore::revoke_refresh_token(std::string_view token_hash) {
  return db_->write([&](MysqlConnection& c) -> Result<void> {
    auto revoked =
        change(c, "UPDATE refresh_token SET revoked = 1 WHERE token_hash = ?", token_hash);
    if (!revoked.ok()) return revoked.error();
    if (*revoked == 0) return make_error(Errc::not_found, "refresh token not found");
    return {};
  });
}

// --- spaces

Result<void> MysqlStore::create_space(const Space& space) {
  return db_->write([&](MysqlConnection& c) -> Result<void> {
    auto s = change(c,
                    "INSERT INTO space (id, name, avatar, owner_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    space.id, space.name, space.avatar, space.owner_id, space.created_at);
    if (!s.ok()) return s.error();
    auto m = change(c, "INSERT INTO space_user (space_id, user_id, created_at) VALUES (?, ?, ?)",
                    space.id, space.owner_id, space.created_at);
    if (!m.ok()) return m.error();
    return {};
  });
}

Result<Space> MysqlStore::space_by_id(Id id) {
  return db_->read([&](MysqlConnection& c) {
    return query_one<Space>(c,
                            "SELECT id, name, avatar, owner_id, created_at FROM space WHERE id = ?",
                            read_space, "space", id);
  });
}

Result<std::vector<Space>> MysqlStore::spaces_of_user(Id user_id) {
  return db_->read([&](MysqlConnection& c) {
    return query<Space>(c,
                        "SELECT s.id, s.name, s.avatar, s.owner_id, s.created_at"
                        " FROM space_user su JOIN space s ON s.id = su.space_id"
                        " WHERE su.user_id = ? ORDER BY su.space_id",
                        read_space, user_id);
  });
}

Result<Space> MysqlStore::update_space(Id id, const std::optional<std::string>& name,
                                       const std::optional<std::string>& avatar) {
  return db_->write([&](MysqlConnection& c) -> Result<Space> {
    auto updated = change(c,
                          "UPDATE space SET name = COALESCE(?, name), avatar = COALESCE(?, avatar)"
                          " WHERE id = ?",
                          name, avatar, id);
    if (!updated.ok()) return updated.error();
    if (*updated == 0) return make_error(Errc::not_found, "space not found");
    return query_one<Space>(c,
                            "SELECT id, name, avatar, owner_id, created_at FROM space WHERE id = ?",
                            read_space, "space", id);
  });
}

Result<bool> MysqlStore::is_space_member(Id space_id, Id user_id) {
  return db_->read([&](MysqlConnection& c) {
    return query_exists(c, "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?", space_id,
                        user_id);
  });
}

Result<bool> MysqlStore::add_space_member(Id space_id, Id user_id, Millis now) {
  return db_->write([&](MysqlConnection& c) -> Result<bool> {
    // A plain INSERT: a duplicate key is "already a member", a missing space or user fails its
    // foreign key (not_found). (INSERT IGNORE would turn the latter into a warning.)
    auto inserted =
        change(c, "INSERT INTO space_user (space_id, user_id, created_at) VALUES (?, ?, ?)",
               space_id, user_id, now);
    if (!inserted.ok()) {
      if (inserted.error().code == Errc::conflict) return false;
      return inserted.error();
    }
    return true;
  });
}

Result<bool> MysqlStore::remove_space_member(Id space_id, Id user_id) {
  return db_->write([&](MysqlConnection& c) -> Result<bool> {
    auto channels = change(c,
                           "DELETE cu FROM channel_user cu"
                           " JOIN space_channel sc ON sc.channel_id = cu.channel_id"
                           " WHERE sc.space_id = ? AND cu.user_id = ?",
                           space_id, user_id);
    if (!channels.ok()) return channels.error();
    auto removed =
        change(c, "DELETE FROM space_user WHERE space_id = ? AND user_id = ?", space_id, user_id);
    if (!removed.ok()) return removed.error();
    return *removed > 0;
  });
}

Result<std::vector<Member>> MysqlStore::space_members(Id space_id, Id after_user_id,
                                                      std::uint32_t limit) {
  return list_members(*db_,
                      "SELECT su.user_id, u.name, u.avatar, su.created_at"
                      " FROM space_user su JOIN `user` u ON u.id = su.user_id"
                      " WHERE su.space_id = ? AND su.user_id > ? ORDER BY su.user_id LIMIT ?",
                      space_id, after_user_id, limit);
}

// --- channels

Result<void> MysqlStore::create_channel(const Channel& channel) {
  return db_->write([&](MysqlConnection& c) -> Result<void> {
    // The owner's space membership is checked in the transaction that inserts, with a shared
    // lock on the membership row: a concurrent leave of the space waits for the commit (and
    // then removes the owner from the new channel too), it cannot slip in between.
    auto member = query_exists(
        c, "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ? LOCK IN SHARE MODE",
        channel.space_id, channel.owner_id);
    if (!member.ok()) return member.error();
    if (!*member) {
      auto known = query_exists(c, "SELECT 1 FROM space WHERE id = ?", channel.space_id);
      if (!known.ok()) return known.error();
      if (!*known) return make_error(Errc::not_found, "space not found");
      return make_error(Errc::forbidden, "not a member of this space");
    }
    auto s = change(c,
                    "INSERT INTO channel"
                    " (id, name, avatar, owner_id, created_at, last_seq, last_message_id)"
                    " VALUES (?, ?, ?, ?, ?, 0, 0)",
                    channel.id, channel.name, channel.avatar, channel.owner_id, channel.created_at);
    if (!s.ok()) return s.error();
    auto link =
        change(c, "INSERT INTO space_channel (space_id, channel_id, created_at) VALUES (?, ?, ?)",
               channel.space_id, channel.id, channel.created_at);
    if (!link.ok()) return link.error();
    auto m =
        change(c, "INSERT INTO channel_user (channel_id, user_id, created_at) VALUES (?, ?, ?)",
               channel.id, channel.owner_id, channel.created_at);
    if (!m.ok()) return m.error();
    return {};
  });
}

Result<Channel> MysqlStore::channel_by_id(Id id) {
  return db_->read([&](MysqlConnection& c) {
    return query_one<Channel>(
        c,
        "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.owner_id, ch.created_at,"
        " ch.last_seq, ch.last_message_id"
        " FROM channel ch LEFT JOIN space_channel sc ON sc.channel_id = ch.id WHERE ch.id = ?",
        read_channel, "channel", id);
  });
}

Result<std::vector<Channel>> MysqlStore::channels_of_space(Id space_id) {
  return db_->read([&](MysqlConnection& c) {
    return query<Channel>(c,
                          "SELECT ch.id, sc.space_id, ch.name, ch.avatar, ch.owner_id,"
                          " ch.created_at, ch.last_seq, ch.last_message_id"
                          " FROM space_channel sc JOIN channel ch ON ch.id = sc.channel_id"
                          " WHERE sc.space_id = ? ORDER BY sc.channel_id",
                          read_channel, space_id);
  });
}

Result<bool> MysqlStore::is_channel_member(Id channel_id, Id user_id) {
  return db_->read([&](MysqlConnection& c) {
    return query_exists(c, "SELECT 1 FROM channel_user WHERE channel_id = ? AND user_id = ?",
                        channel_id, user_id);
  });
}

Result<bool> MysqlStore::add_channel_member(Id channel_id, Id user_id, Millis now) {
  return db_->write([&](MysqlConnection& c) -> Result<bool> {
    // One statement: cursors start at the channel's last_seq, and only a member of the
    // channel's space is inserted. INSERT ... SELECT share-locks the rows it reads (channel,
    // space_channel, space_user), so a batch storing into the channel is either wholly before
    // the join or unread after it, and a concurrent leave of the space either waits for this
    // commit (and removes the new membership) or has already removed the space membership.
    auto inserted = change(c,
                           "INSERT INTO channel_user"
                           " (channel_id, user_id, last_ack_message_id, last_ack_seq, read_seq,"
                           " created_at)"
                           " SELECT ch.id, su.user_id, ch.last_message_id, ch.last_seq,"
                           " ch.last_seq, CAST(? AS SIGNED) FROM channel ch"
                           " JOIN space_channel sc ON sc.channel_id = ch.id"
                           " JOIN space_user su ON su.space_id = sc.space_id AND su.user_id = ?"
                           " WHERE ch.id = ?",
                           now, user_id, channel_id);
    if (!inserted.ok()) {
      if (inserted.error().code == Errc::conflict) return false;  // already a member
      return inserted.error();
    }
    if (*inserted > 0) return true;
    auto known = query_exists(c, "SELECT 1 FROM channel WHERE id = ?", channel_id);
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "channel not found");
    auto already = query_exists(
        c, "SELECT 1 FROM channel_user WHERE channel_id = ? AND user_id = ?", channel_id, user_id);
    if (!already.ok()) return already.error();
    if (*already) return false;
    return make_error(Errc::forbidden, "not a member of the channel's space");
  });
}

Result<bool> MysqlStore::remove_channel_member(Id channel_id, Id user_id) {
  return db_->write([&](MysqlConnection& c) -> Result<bool> {
    auto removed = change(c, "DELETE FROM channel_user WHERE channel_id = ? AND user_id = ?",
                          channel_id, user_id);
    if (!removed.ok()) return removed.error();
    return *removed > 0;
  });
}

Result<std::vector<Member>> MysqlStore::channel_members(Id channel_id, Id after_user_id,
                                                        std::uint32_t limit) {
  return list_members(*db_,
                      "SELECT cu.user_id, u.name, u.avatar, cu.created_at"
                      " FROM channel_user cu JOIN `user` u ON u.id = cu.user_id"
                      " WHERE cu.channel_id = ? AND cu.user_id > ? ORDER BY cu.user_id LIMIT ?",
                      channel_id, after_user_id, limit);
}

Result<std::vector<Id>> MysqlStore::channel_member_ids(Id channel_id) {
  return db_->read([&](MysqlConnection& c) {
    return query<Id>(
        c, "SELECT user_id FROM channel_user WHERE channel_id = ? ORDER BY user_id",
        [](const MysqlStatement& s) { return s.column_id(0); }, channel_id);
  });
}

Result<Memberships> MysqlStore::memberships_of_user(Id user_id) {
  return db_->read([&](MysqlConnection& c) -> Result<Memberships> {
    auto known = query_exists(c, "SELECT 1 FROM `user` WHERE id = ?", user_id);
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "no such user");
    auto id_column = [](const MysqlStatement& s) { return s.column_id(0); };
    auto spaces =
        query<Id>(c, "SELECT space_id FROM space_user WHERE user_id = ? ORDER BY space_id",
                  id_column, user_id);
    if (!spaces.ok()) return spaces.error();
    auto channels =
        query<Id>(c, "SELECT channel_id FROM channel_user WHERE user_id = ? ORDER BY channel_id",
                  id_column, user_id);
    if (!channels.ok()) return channels.error();
    return Memberships{std::move(*spaces), std::move(*channels)};
  });
}

// --- messages

Result<std::vector<Result<Appended>>> MysqlStore::append_messages(
    std::span<const NewMessage> batch) {
  using Out = std::vector<Result<Appended>>;
  if (batch.empty()) return Out{};
  auto r = db_->write([&](MysqlConnection& c) -> Result<Out> {
    BatchAppender appender(c, batch);
    return appender.run();
  });
  if (!r.ok()) {
    // The batch was rolled back as a whole; the queue may redeliver it.
    Error err = r.error();
    err.code = Errc::unavailable;
    return err;
  }
  return r;
}

Result<std::vector<Message>> MysqlStore::messages(const ConvKey& conv, const HistoryQuery& q) {
  if (q.before_seq && q.after_seq) {
    return make_error(Errc::invalid_argument, "before_seq and after_seq are exclusive");
  }
  if (!conv.is_channel() && !valid_dm(conv)) return bad_conv();
  const std::uint64_t limit = std::clamp<std::uint32_t>(q.limit, 1, kMaxHistoryPage);
  return db_->read([&](MysqlConnection& c) -> Result<std::vector<Message>> {
    const int shape = q.before_seq ? 0 : q.after_seq ? 1 : 2;
    auto s = c.prepare(conv.is_channel() ? kChannelHistory[shape] : kDmHistory[shape]);
    if (!s.ok()) return s.error();
    MysqlStatement& st = **s;
    st.bind(conv.a);
    if (conv.is_dm()) st.bind(conv.b);
    if (q.before_seq) st.bind(*q.before_seq);
    if (q.after_seq) st.bind(*q.after_seq);
    st.bind(limit);
    IMD_TRY(st.execute());
    auto rows = collect<Message>(st, [&](const MysqlStatement& row) {
      return conv.is_channel() ? read_channel_message(row) : read_dm_message(row);
    });
    if (rows.ok() && !q.after_seq) std::reverse(rows->begin(), rows->end());
    return rows;
  });
}

Result<std::uint64_t> MysqlStore::advance_delivery(Id user_id, const ConvKey& conv,
                                                   std::uint64_t seq) {
  return db_->write([&](MysqlConnection& c) {
    return advance_cursor(c, user_id, conv, seq, CursorKind::delivery);
  });
}

Result<std::uint64_t> MysqlStore::advance_read(Id user_id, const ConvKey& conv, std::uint64_t seq) {
  return db_->write(
      [&](MysqlConnection& c) { return advance_cursor(c, user_id, conv, seq, CursorKind::read); });
}

Result<std::vector<ConversationState>> MysqlStore::conversations(Id user_id) {
  return db_->read([&](MysqlConnection& c) -> Result<std::vector<ConversationState>> {
    // The last message is the row at seq = last_seq: one primary-key probe per conversation.
    auto out = query<ConversationState>(
        c,
        "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.last_seq,"
        " cu.read_seq, cu.last_ack_seq,"
        " m.channel_id, m.message_id, m.seq, m.`from`, m.type, m.body, m.created_at, m.cid"
        " FROM channel_user cu"
        " JOIN channel ch ON ch.id = cu.channel_id"
        " LEFT JOIN space_channel sc ON sc.channel_id = ch.id"
        " LEFT JOIN channel_message m ON m.channel_id = ch.id AND m.seq = ch.last_seq"
        " WHERE cu.user_id = ? ORDER BY cu.channel_id",
        [](const MysqlStatement& s) {
          ConversationState st{.conv = ConvKey::channel(s.column_id(0)),
                               .space_id = s.column_id(1),
                               .name = s.column_text(2),
                               .avatar = s.column_text(3),
                               .last_seq = s.column_id(4),
                               .read_seq = s.column_id(5),
                               .ack_seq = s.column_id(6),
                               .last = std::nullopt};
          if (!s.column_is_null(7)) st.last = read_channel_message(s, 7);
          return st;
        },
        user_id);
    if (!out.ok()) return out.error();

    auto dms = query<ConversationState>(
        c,
        "SELECT d.user_a, d.user_b, COALESCE(u.name, ''), COALESCE(u.avatar, ''), d.last_seq,"
        " du.read_seq, du.last_ack_seq,"
        " m.id, m.`from`, m.`to`, m.type, m.body, m.created_at, m.user_a, m.user_b, m.seq, m.cid"
        " FROM dm_user du"
        " JOIN dm d ON d.user_a = LEAST(du.user_id, du.peer_id)"
        "  AND d.user_b = GREATEST(du.user_id, du.peer_id)"
        " LEFT JOIN `user` u ON u.id = du.peer_id"
        " LEFT JOIN message m ON m.user_a = d.user_a AND m.user_b = d.user_b"
        "  AND m.seq = d.last_seq"
        " WHERE du.user_id = ? ORDER BY du.peer_id",
        [](const MysqlStatement& s) {
          ConversationState st{.conv = ConvKey{ConvKind::dm, s.column_id(0), s.column_id(1)},
                               .space_id = 0,
                               .name = s.column_text(2),
                               .avatar = s.column_text(3),
                               .last_seq = s.column_id(4),
                               .read_seq = s.column_id(5),
                               .ack_seq = s.column_id(6),
                               .last = std::nullopt};
          if (!s.column_is_null(7)) st.last = read_dm_message(s, 7);
          return st;
        },
        user_id);
    if (!dms.ok()) return dms.error();
    for (auto& st : *dms) out->push_back(std::move(st));
    return out;
  });
}

}  // namespace imd
