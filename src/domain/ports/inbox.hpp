// Inbox port: per-user 1:1 inbox (write diffusion). An entry is added when a DM is stored
// and leaves only when the recipient ACKs delivery.
//
// Contract: thread-safe, blocking; push is idempotent (the same (user, conv, seq) twice is
// one entry) and skips entries at or below the recipient's delivery cursor of that
// conversation, so a repeated push never resurrects an ACKed message; list returns entries
// ordered by (conversation, seq).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

struct InboxItem {
  Id user_id = 0;  // the recipient
  Message msg;
};

// Position in a user's inbox, for paging: entries after (conv, seq).
struct InboxCursor {
  ConvKey conv;
  std::uint64_t seq = 0;
};

class Inbox {
 public:
  virtual ~Inbox() = default;
  virtual Result<void> push(std::span<const InboxItem> items) = 0;
  virtual Result<std::vector<Message>> list(Id user_id, const std::optional<InboxCursor>& after,
                                            std::uint32_t limit) = 0;
  // Removes the user's entries of `conv` with seq <= up_to_seq.
  virtual Result<void> ack(Id user_id, const ConvKey& conv, std::uint64_t up_to_seq) = 0;
  // Overflow: a bounded inbox (RedisInbox) drops a user's oldest entries when full. Those
  // messages are still in the Store, behind the user's delivery cursors, but a backfill that
  // reads the inbox would miss them. overflowed() says how many were dropped since the signal
  // was last cleared (an unbounded inbox: always 0); whoever backfills that user's DMs from the
  // Store by delivery cursor instead (the WebSocket resume) calls clear_overflow(user, n) with
  // the number it read before, once that backfill completed: drops that happened meanwhile
  // stay signalled.
  virtual Result<std::uint64_t> overflowed(Id) { return std::uint64_t{0}; }
  virtual Result<void> clear_overflow(Id, std::uint64_t) { return {}; }
  // Whether list() returns copies of the messages as they were pushed (RedisInbox), which a
  // later change (edit, delete) leaves behind, rather than the stored messages as they are now
  // (SqliteInbox reads them from the Store). The backfill refreshes copies from the Store.
  virtual bool holds_copies() const { return true; }
  // Many ACKs at once; adapters should batch them (one transaction / one pipeline).
  virtual Result<void> ack_many(std::span<const DeliveryUpdate> acks) {
    for (const auto& a : acks) IMD_TRY(ack(a.user, a.conv, a.seq));
    return {};
  }
};

}  // namespace imd
