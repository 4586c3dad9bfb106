#include "store/sqlite_inbox.hpp"

#include <algorithm>
#include <utility>

#include "store_sql/row_mappers.hpp"

namespace imd {

namespace {

// A page bound, so one call cannot pin a reader for an unbounded scan.
constexpr std::uint32_t kMaxInboxPage = 1000;

}  // namespace

SqliteInbox::SqliteInbox(std::shared_ptr<SqliteDatabase> db) : db_(std::move(db)) {}

Result<void> SqliteInbox::push(std::span<const InboxItem> items) {
  for (const InboxItem& item : items) {
    if (!item.msg.conv.is_dm() || item.msg.conv.a >= item.msg.conv.b) {
      return make_error(Errc::invalid_argument, "inbox entries are for DM conversations only");
    }
  }
  if (items.empty()) return {};
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare(
        // Entries the recipient already ACKed (dm_user.last_ack_seq) are not re-created: a
        // repeated push (a retried send) must not resurrect a delivered message.
        "INSERT INTO inbox(user_id, user_a, user_b, seq, message_id)"
        " SELECT ?1, ?2, ?3, ?4, ?5 WHERE ?4 > COALESCE("
        "   (SELECT last_ack_seq FROM dm_user WHERE user_id = ?1 AND peer_id = ?6), 0)"
        " ON CONFLICT(user_id, user_a, user_b, seq) DO NOTHING");
    if (!s.ok()) return s.error();
    for (const InboxItem& item : items) {
      const Message& m = item.msg;
      Id peer = m.conv.peer_of(item.user_id);
      s->bind_all(to_db(item.user_id), to_db(m.conv.a), to_db(m.conv.b), to_db(m.seq), to_db(m.id),
                  to_db(peer));
      auto r = s->run();
      s->reset();
      if (!r.ok()) return r.error();
    }
    return {};
  });
}

Result<std::vector<Message>> SqliteInbox::list(Id user_id, const std::optional<InboxCursor>& after,
                                               std::uint32_t limit) {
  const std::int64_t page = std::min(limit, kMaxInboxPage);
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<Message>> {
    // Both walk the primary key (user_id, user_a, user_b, seq) in order; the row-value
    // comparison starts the walk at the cursor.
    auto s = after ? c.prepare(
                         "SELECT m.id, m.\"from\", m.\"to\", m.type, m.body, m.created_at,"
                         " m.user_a, m.user_b, m.seq, m.cid, m.reply_to, m.rev, m.change_kind,"
                         " m.edited_at, m.deleted, m.reactions FROM inbox i JOIN message m ON m.id "
                         "= i.message_id"
                         " WHERE i.user_id = ?1 AND (i.user_a, i.user_b, i.seq) > (?2, ?3, ?4)"
                         " ORDER BY i.user_a, i.user_b, i.seq LIMIT ?5")
                   : c.prepare(
                         "SELECT m.id, m.\"from\", m.\"to\", m.type, m.body, m.created_at,"
                         " m.user_a, m.user_b, m.seq, m.cid, m.reply_to, m.rev, m.change_kind,"
                         " m.edited_at, m.deleted, m.reactions FROM inbox i JOIN message m ON m.id "
                         "= i.message_id"
                         " WHERE i.user_id = ?1"
                         " ORDER BY i.user_a, i.user_b, i.seq LIMIT ?5");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(user_id)).bind(5, page);
    if (after) {
      s->bind(2, to_db(after->conv.a))
          .bind(3, to_db(after->conv.b))
          .bind(4, to_db_bound(after->seq));
    }
    std::vector<Message> out;
    for (;;) {
      auto row = s->step();
      if (!row.ok()) return row.error();
      if (!*row) return out;
      out.push_back(rows::dm_message(*s));  // the DM column list of row_mappers.hpp
    }
  });
}

Result<void> SqliteInbox::ack(Id user_id, const ConvKey& conv, std::uint64_t up_to_seq) {
  DeliveryUpdate one{user_id, conv, up_to_seq};
  return ack_many(std::span<const DeliveryUpdate>(&one, 1));
}

Result<void> SqliteInbox::ack_many(std::span<const DeliveryUpdate> acks) {
  // Channels have no inbox entries: nothing to remove.
  if (std::none_of(acks.begin(), acks.end(), [](const auto& a) { return a.conv.is_dm(); })) {
    return {};
  }
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s =
        c.prepare("DELETE FROM inbox WHERE user_id = ? AND user_a = ? AND user_b = ? AND seq <= ?");
    if (!s.ok()) return s.error();
    for (const auto& a : acks) {
      if (!a.conv.is_dm()) continue;
      s->bind_all(to_db(a.user), to_db(a.conv.a), to_db(a.conv.b), to_db_bound(a.seq));
      auto r = s->run();
      s->reset();
      if (!r.ok()) return r.error();
    }
    return {};
  });
}

}  // namespace imd
