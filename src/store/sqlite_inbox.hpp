// SqliteInbox: the standalone Inbox adapter (see domain/ports/inbox.hpp for the contract),
// on the same SqliteDatabase as SqliteStore.
//
// An entry is a reference (user, conversation, seq, message_id); list() joins it with the
// `message` table, so push() must follow the store's commit of the message (it does: the DM is
// stored first, then diffused). Only DM conversations have inbox entries: push of a channel
// message is invalid_argument and writes nothing.
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

  // One transaction for all items; an item already present is skipped.
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
