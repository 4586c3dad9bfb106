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
  return {};
}

Result<std::vector<Message>> SqliteInbox::list(Id user_id, const std::optional<InboxCursor>& after,
                                               std::uint32_t limit) {
  const std::int64_t page = std::min(limit, kMaxInboxPage);
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<Message>> {
    // The user's conversations in peer order, which is (user_a, user_b) order for them (peers
    // below the user come first, as user_a; those above follow, as user_b); in each, the DMs
    // to them after the delivery cursor, or after the page cursor in its conversation. Both
    // loops walk a key in order (dm_user's, then message's (user_a, user_b, seq)): no sort.
    auto s = c.prepare(
        "SELECT m.id, m.\"from\", m.\"to\", m.type, m.body, m.created_at,"
        " m.user_a, m.user_b, m.seq, m.cid, m.reply_to, m.rev, m.change_kind,"
        " m.edited_at, m.deleted, m.reactions"
        " FROM dm_user du JOIN message m ON m.user_a = MIN(du.user_id, du.peer_id)"
        "  AND m.user_b = MAX(du.user_id, du.peer_id)"
        "  AND m.seq > MAX(du.last_ack_seq, CASE WHEN du.peer_id = ?2 THEN ?3 ELSE 0 END)"
        " WHERE du.user_id = ?1 AND du.peer_id >= ?2 AND m.\"to\" = ?1"
        " ORDER BY du.peer_id, m.seq LIMIT ?4");
    if (!s.ok()) return s.error();
    const bool valid_after = after && after->conv.is_dm() && after->conv.has_participant(user_id);
    s->bind_all(to_db(user_id), to_db(valid_after ? after->conv.peer_of(user_id) : 0),
                to_db_bound(valid_after ? after->seq : 0), page);
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
  auto counts = [](const DeliveryUpdate& a) {
    return a.conv.is_dm() && a.conv.has_participant(a.user);
  };
  if (std::none_of(acks.begin(), acks.end(), counts)) return {};
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    // The delivery cursor, as the Store's advance_deliveries moves it (never back, never past
    // the conversation's last seq): after that call, which comes first, this changes no row.
    auto s = c.prepare(
        "UPDATE dm_user SET last_ack_seq = ?3"
        " WHERE user_id = ?1 AND peer_id = ?2 AND last_ack_seq < ?3");
    auto top = c.prepare("SELECT last_seq FROM dm WHERE user_a = ? AND user_b = ?");
    if (!s.ok()) return s.error();
    if (!top.ok()) return top.error();
    for (const auto& a : acks) {
      if (!counts(a)) continue;
      std::int64_t last = 0;
      top->bind_all(to_db(a.conv.a), to_db(a.conv.b));
      auto found = top->step_once([&](const SqliteStatement& r) { last = r.column_int64(0); });
      top->reset();
      if (!found.ok()) return found.error();
      const std::int64_t target = std::min(to_db_bound(a.seq), last);
      s->bind_all(to_db(a.user), to_db(a.conv.peer_of(a.user)), target);
      auto r = s->run();
      s->reset();
      if (!r.ok()) return r.error();
    }
    return {};
  });
}

}  // namespace imd
