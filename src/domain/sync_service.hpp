// Backfill for a (re)connecting device: every message it misses, in seq order per
// conversation, page by page (docs/architecture.md §6).
//
// The rules:
// - Channels resume from the member's delivery cursor in the Store.
// - DMs come from the user's inbox (write diffusion), unless the client named a cursor for the
//   conversation (`sync` with cursors: served from the Store from that cursor), or the inbox
//   overflowed (its bound dropped entries): then every DM conversation is served from the Store
//   from its delivery cursor. The overflow signal is cleared (finish()) only after a pass that
//   served DMs from the Store completed, read every conversation and found every DM delivered
//   (delivery cursor at the last seq): until the client has ACKed what the inbox dropped, each
//   (re)connect serves DMs from the Store again.
// - What the connection already holds (`delivered`, per conversation) is skipped.
// - A pass starts by writing the gathered delivery ACKs, so that it starts from the cursors the
//   user's devices reported.
// - Changes (edits, deletes, reactions: docs/protocol.md "Changes") come after the messages, per
//   conversation by rev: the current state of every message the device holds whose last change
//   it lacks. What the connection lacks is (hw, L]: hw is where the connection stands (Revs),
//   L the conversation's last_rev read when the pass began; a conversation the connection has
//   no state for starts at L (it gets changes from now on). A client's own change cursor C
//   (`sync` with `changes`) adds (C, base]: what happened before this connection's first pass.
//   Messages the pass sends itself are read after L was, so they carry every change up to L.
//   Inbox copies (Inbox::holds_copies) are refreshed from the Store up to L.
//
// The caller (the WebSocket session) repeats passes while live messages arrived during one
// (it drops them and reads them from the Store instead), so that nothing overtakes the backfill.
// Blocking (Store, Inbox): call on the blocking pool. A Pass belongs to one caller at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "domain/messaging_service.hpp"
#include "domain/ports/inbox.hpp"
#include "domain/ports/store.hpp"

namespace imd {

using SyncCursors = std::map<ConvKey, std::uint64_t>;
using Delivered = std::unordered_map<ConvKey, std::uint64_t, ConvKeyHash>;
// A client's change cursors: per conversation, the last rev it holds.
using ChangeCursors = std::map<ConvKey, std::uint64_t>;
// Where one connection stands in a conversation's changes: it delivered (or its backfill
// covered) every change in (base, hw]; base is the last_rev when it first learned of the
// conversation, base_seq the seq its device held then (every later message it sent as it was
// at base or after).
struct RevState {
  std::uint64_t base = 0;
  std::uint64_t hw = 0;
  std::uint64_t base_seq = 0;
};
using Revs = std::unordered_map<ConvKey, RevState, ConvKeyHash>;

class SyncService {
 public:
  SyncService(Store& store, Inbox& inbox, MessagingService& messaging);

  class Pass {
   public:
    // Messages this pass returned so far.
    std::uint64_t returned() const { return returned_; }
    // Changes this pass returned so far.
    std::uint64_t changes_returned() const { return changes_returned_; }
    // Whether the last page next() returned is of changes (else of messages).
    bool changes_page() const { return changes_page_; }
    // Where the connection stands after the pass (for every conversation whose changes were
    // read to L); the connection adopts them.
    const Revs& revs() const { return revs_; }

   private:
    friend class SyncService;
    struct Source {
      ConvKey conv;
      std::uint64_t from = 0;  // the last seq the device holds
      std::uint64_t last = 0;  // the conversation's last seq
    };
    Id user_ = 0;
    std::optional<SyncCursors> cursors_;
    Delivered delivered_;
    std::vector<Source> store_sources_;  // served from the Store, in this order
    std::size_t next_source_ = 0;
    bool inbox_ = true;  // DMs without a client cursor come from the inbox
    bool inbox_done_ = false;
    std::optional<InboxCursor> inbox_after_;
    std::uint64_t overflow_ = 0;   // inbox entries dropped by its bound, as read by begin()
    bool store_gap_ = false;       // a Store read failed: the overflow is not handled yet
    bool dm_undelivered_ = false;  // a DM's delivery cursor is behind its last seq
    std::uint64_t returned_ = 0;
    struct ChangeSource {
      ConvKey conv;
      std::uint64_t after_rev = 0;
      std::uint64_t up_to_rev = 0;
      std::uint64_t up_to_seq = 0;  // messages above it the pass sends as they are now
      RevState done;                // the connection's state once this source was read
    };
    std::vector<ChangeSource> change_sources_;
    std::size_t next_change_ = 0;
    std::unordered_map<ConvKey, std::uint64_t, ConvKeyHash> last_rev_;  // L, as begin() read it
    Revs revs_;
    bool changes_page_ = false;
    std::uint64_t changes_returned_ = 0;
  };

  // Starts a pass for `user`. `cursors`: the client's own (the `sync` op), nullopt on connect.
  // `delivered`: the last seq the connection holds per conversation. `changes`: the client's
  // change cursors; `revs`: where the connection stands in each conversation's changes.
  // Changes before the connection (the client's cursor below base) are sent for the messages
  // the device held then, up to base_seq: what the connection sent itself is current.
  Result<Pass> begin(Id user, std::optional<SyncCursors> cursors, Delivered delivered,
                     ChangeCursors changes = {}, Revs revs = {});
  // The next messages of the pass (at most `limit`, of one conversation or of the inbox, in
  // seq order), then its changes (pages of one conversation in rev order: changes_page()),
  // empty once the pass is done. An error ends the pass (the conversation list or
  // the inbox could not be read); a Store read that fails skips its conversation (the next
  // pass or connect reads it again) and keeps the overflow signal.
  Result<std::vector<Message>> next(Pass& pass, std::uint32_t limit);
  // After a pass that was read to its end: clears the inbox overflow it handled, if it did.
  Result<void> finish(const Pass& pass);

 private:
  Result<std::vector<Message>> next_from_store(Pass& pass, std::uint32_t limit);
  Result<std::vector<Message>> next_from_inbox(Pass& pass, std::uint32_t limit);
  Result<std::vector<Message>> next_change(Pass& pass, std::uint32_t limit);
  // The change sources of one conversation (begin): `held` is what the device holds by its own
  // account, `from` with what this connection sent it.
  static void plan_changes(Pass& p, const ConversationState& c, std::uint64_t held,
                           std::uint64_t from, const ChangeCursors& changes, const Revs& revs);
  // Replaces inbox copies in `page` that a change up to L left behind by the stored message.
  Result<void> refresh_copies(const Pass& pass, std::vector<Message>& page);

  Store& store_;
  Inbox& inbox_;
  MessagingService& messaging_;
};

}  // namespace imd
