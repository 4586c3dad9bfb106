// MysqlDialect (mysql_store.hpp): MariaDB's group commit and cursor write, and the
// instantiation of SqlStore<MysqlDialect>.
#include "store_mysql/mysql_store.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <utility>

#include "store_sql/sql_store_impl.hpp"

namespace imd {

template class SqlStore<MysqlDialect>;

namespace {

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
const MultiRowSql kLockChannels(
    "SELECT id, last_seq, last_message_id, archived FROM channel WHERE id IN (", "?", ", ",
    ") ORDER BY id FOR UPDATE");
const MultiRowSql kLockDms("SELECT user_a, user_b, last_seq, last_message_id FROM dm WHERE ",
                           "(user_a = ? AND user_b = ?)", " OR ",
                           " ORDER BY user_a, user_b FOR UPDATE");
const MultiRowSql kInsertDms("INSERT INTO dm (user_a, user_b, created_at) VALUES ", "(?, ?, ?)",
                             ", ", "");
const MultiRowSql kInsertDmUsers("INSERT INTO dm_user (user_id, peer_id, created_at) VALUES ",
                                 "(?, ?, ?)", ", ", "");
const MultiRowSql kInsertChannelMessages(
    "INSERT INTO channel_message"
    " (channel_id, message_id, seq, `from`, type, body, created_at, cid, reply_to) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?)", ", ", "");
const MultiRowSql kInsertDmMessages(
    "INSERT INTO message"
    " (id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid, reply_to) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ", ", "");
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
  bool touched = false;   // a message of this batch was stored in it
  bool archived = false;  // read-only: the batch's new messages to it are refused
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
      if (!sql::valid_target(in(i))) out_[i] = sql::bad_conv();
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
      auto original = sql::stored_duplicate<MysqlDialect>(c_, it->second, in(i).conv.kind);
      if (!original.ok()) return original.error();
      out_[i] = std::move(*original);
    }
    return {};
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
            channels_[(*s)->column_id(0)] =
                Counter{(*s)->column_id(1), (*s)->column_id(2), false, (*s)->column_id(3) != 0};
          }
        }));
    return {};
  }

  // A retried send is a duplicate even when its channel has gone or was archived since;
  // otherwise an item of a missing channel is not_found, of an archived one forbidden (and its
  // cid stays free).
  void reject_missing_channels() {
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (!pending(i) || !in(i).conv.is_channel()) continue;
      auto it = channels_.find(in(i).conv.a);
      if (it == channels_.end()) {
        out_[i] = make_error(Errc::not_found, "channel not found");
      } else if (it->second.archived) {
        out_[i] = sql::archived_channel();
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
                                              m.created_at, sql::null_if_empty(m.cid), m.reply_to);
                             }
                             return (*s)->execute();
                           }));
    return for_each_chunk(
        dm_rows.size(), Chunking::exact, [&](std::span<const std::size_t> chunk) -> Result<void> {
          auto s = c_.prepare(kInsertDmMessages(chunk.size()));
          if (!s.ok()) return s.error();
          for (std::size_t k : chunk) {
            const Message& m = stored(dm_rows[k]);
            (*s)->bind_all(m.id, m.from, m.to, m.type, m.body, m.created_at, m.conv.a, m.conv.b,
                           m.seq, sql::null_if_empty(m.cid), m.reply_to);
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

}  // namespace

Result<std::vector<Result<Appended>>> MysqlDialect::append_batch(
    MysqlConnection& c, std::span<const NewMessage> batch) {
  return BatchAppender(c, batch).run();
}

Result<std::uint64_t> MysqlDialect::write_cursor(MysqlConnection& c, const sql::CursorWrite& w) {
  const bool channel = w.conv.is_channel();
  if (w.kind == sql::CursorKind::read) {
    auto updated = channel ? change(c,
                                    "UPDATE channel_user SET read_seq = GREATEST(read_seq, ?)"
                                    " WHERE channel_id = ? AND user_id = ?",
                                    w.target, w.conv.a, w.user)
                           : change(c,
                                    "UPDATE dm_user SET read_seq = GREATEST(read_seq, ?)"
                                    " WHERE user_id = ? AND peer_id = ?",
                                    w.target, w.user, w.peer);
    if (!updated.ok()) return updated.error();
    // Our own update is visible to our snapshot: the cursor as it is now.
    return channel
               ? sql::one<std::uint64_t>(
                     query(c,
                           "SELECT read_seq FROM channel_user WHERE channel_id = ? AND user_id = ?",
                           w.conv.a, w.user),
                     sql::kFirstId, "member")
               : sql::one<std::uint64_t>(
                     query(c, "SELECT read_seq FROM dm_user WHERE user_id = ? AND peer_id = ?",
                           w.user, w.peer),
                     sql::kFirstId, "member");
  }

  // Delivery: last_ack_message_id follows last_ack_seq (SET assigns left to right, so the IF
  // sees the old last_ack_seq).
  auto message_id =
      channel
          ? sql::one<Id>(
                query(c, "SELECT message_id FROM channel_message WHERE channel_id = ? AND seq = ?",
                      w.conv.a, w.target),
                sql::kFirstId, "message")
          : sql::one<Id>(
                query(c, "SELECT id FROM message WHERE user_a = ? AND user_b = ? AND seq = ?",
                      w.conv.a, w.conv.b, w.target),
                sql::kFirstId, "message");
  if (!message_id.ok()) return message_id.error();  // messages are never deleted
  auto updated = channel
                     ? change(c,
                              "UPDATE channel_user SET"
                              " last_ack_message_id = IF(? > last_ack_seq, ?, last_ack_message_id),"
                              " last_ack_seq = GREATEST(last_ack_seq, ?)"
                              " WHERE channel_id = ? AND user_id = ?",
                              w.target, *message_id, w.target, w.conv.a, w.user)
                     : change(c,
                              "UPDATE dm_user SET"
                              " last_ack_message_id = IF(? > last_ack_seq, ?, last_ack_message_id),"
                              " last_ack_seq = GREATEST(last_ack_seq, ?)"
                              " WHERE user_id = ? AND peer_id = ?",
                              w.target, *message_id, w.target, w.user, w.peer);
  if (!updated.ok()) return updated.error();
  return w.target;
}

}  // namespace imd
