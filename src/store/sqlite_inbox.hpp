// SqliteInbox: the standalone Inbox adapter (see domain/ports/inbox.hpp for the contract),
// on the same SqliteDatabase as SqliteStore.
//
// No rows of its own: a user's inbox is what the store already holds, the DMs to them above
// their delivery cursor of each conversation (dm_user.last_ack_seq), which the storing
// transaction writes atomically with the message. So push() writes nothing (the DM was stored
// before it, in the same database: that was the diffusion), list() reads `message` by the
// cursors, and ack() advances the cursor (a no-op after the Store's advance_deliveries, which
// the messaging path runs first). This keeps a separate inbox row (an insert and, on the ACK, a
// delete in another B-tree, and a transaction per batch) off the send path: docs/schema.md
// "inbox". Only DM conversations have inbox entries: push of a channel message is
// invalid_argument.
//
// Thread-safe, blocking. unavailable for an engine failure; never throws.
#pragma once

#include <memory>

#include "domain/ports/inbox.hpp"
#include "store/sqlite_db.hpp"

namespace imd {

class SqliteInbox final : public Inbox {
 public:
  // Entries are read with the stored message (a join): always its current state.
  bool holds_copies() const override { return false; }
  explicit SqliteInbox(std::shared_ptr<SqliteDatabase> db);

  // Validates the items; the stored messages are the entries.
  Result<void> push(std::span<const InboxItem> items) override;
  // Ordered by (user_a, user_b, seq), strictly after `after`; at most `limit`, capped at 1000.
  Result<std::vector<Message>> list(Id user_id, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override;
  Result<void> ack(Id user_id, const ConvKey& conv, std::uint64_t up_to_seq) override;
  Result<void> ack_many(std::span<const DeliveryUpdate> acks) override;

 private:
  std::shared_ptr<SqliteDatabase> db_;
};

}  // namespace imd
