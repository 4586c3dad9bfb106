#include "domain/sync_service.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace imd {

SyncService::SyncService(Store& store, Inbox& inbox, MessagingService& messaging)
    : store_(store), inbox_(inbox), messaging_(messaging) {}

Result<SyncService::Pass> SyncService::begin(Id user, std::optional<SyncCursors> cursors,
                                             Delivered delivered, ChangeCursors changes,
                                             Revs revs) {
  Pass p;
  p.user_ = user;
  p.cursors_ = std::move(cursors);
  p.delivered_ = std::move(delivered);
  // Failing to write them only means starting from older cursors: more to send, nothing lost.
  if (auto r = messaging_.flush_acks(); !r) {
    LOG_DEBUG("sync of user " << user << ": ACK flush failed: " << r.error().message);
  }
  auto over = inbox_.overflowed(user);
  p.overflow_ = over ? *over : 0;
  // Unknown (the inbox is unreachable): the Store is the safe source.
  p.inbox_ = over && *over == 0;
  auto convs = store_.conversations(user);
  if (!convs) return convs.error();
  for (const auto& c : *convs) {
    const bool client_cursor = p.cursors_ && p.cursors_->count(c.conv);
    // What the device holds of the conversation: it told us, or its devices ACKed it.
    const std::uint64_t held = client_cursor ? p.cursors_->at(c.conv) : c.ack_seq;
    std::uint64_t from = std::max(held, c.history_floor);  // history_from_join
    if (auto d = p.delivered_.find(c.conv); d != p.delivered_.end()) {
      from = std::max(from, d->second);
    }
    plan_changes(p, c, held, from, changes, revs);
    if (c.conv.is_dm() && !client_cursor && p.inbox_) continue;  // the inbox serves it
    if (c.conv.is_dm() && c.ack_seq < c.last_seq) p.dm_undelivered_ = true;
    if (from < c.last_seq) p.store_sources_.push_back({c.conv, from, c.last_seq});
  }
  p.inbox_done_ = !p.inbox_;
  return p;
}

void SyncService::plan_changes(Pass& p, const ConversationState& c, std::uint64_t held,
                               std::uint64_t from, const ChangeCursors& changes, const Revs& revs) {
  const std::uint64_t last = c.last_rev;
  p.last_rev_[c.conv] = last;
  auto known = revs.find(c.conv);
  // A conversation this connection has no state for: it gets the changes after L.
  const RevState now = known != revs.end() ? known->second : RevState{last, last, from};
  const RevState done{now.base, std::max(now.hw, last), now.base_seq};
  const std::size_t first = p.change_sources_.size();
  // Before this connection: what the client says it lacks, for the messages it says it holds
  // (those it gets in this connection were read after `base` and carry those changes).
  if (auto mine = changes.find(c.conv); mine != changes.end() && mine->second < now.base) {
    p.change_sources_.push_back(
        {c.conv, mine->second, now.base, std::min(held, now.base_seq), done});
  }
  // Since: what this connection lacks, for every message it holds before this pass.
  if (now.hw < last) p.change_sources_.push_back({c.conv, now.hw, last, from, done});
  if (p.change_sources_.size() == first) p.revs_[c.conv] = done;
}

Result<std::vector<Message>> SyncService::next(Pass& pass, std::uint32_t limit) {
  limit = std::max<std::uint32_t>(limit, 1);
  pass.changes_page_ = false;
  auto page = next_from_store(pass, std::min(limit, kMaxHistoryPage));
  if (!page || !page->empty()) return page;
  page = next_from_inbox(pass, limit);
  if (!page || !page->empty()) return page;
  pass.changes_page_ = true;
  return next_change(pass, std::min(limit, kMaxHistoryPage));
}

Result<std::vector<Message>> SyncService::next_change(Pass& pass, std::uint32_t limit) {
  while (pass.next_change_ < pass.change_sources_.size()) {
    auto& s = pass.change_sources_[pass.next_change_];
    Result<std::vector<Message>> page = std::vector<Message>{};
    if (s.after_rev < s.up_to_rev && s.up_to_seq > 0) {
      if (auto allowed = messaging_.check_access(pass.user_, s.conv); !allowed) {
        page = allowed.error();
      } else {
        page = store_.changes(s.conv, ChangeQuery{.after_rev = s.after_rev,
                                                  .up_to_rev = s.up_to_rev,
                                                  .after_seq = 0,
                                                  .up_to_seq = s.up_to_seq,
                                                  .limit = limit});
      }
    }
    if (!page) {
      // The connection stays where it was in this conversation: the next pass reads it again.
      LOG_DEBUG("sync of user " << pass.user_
                                << ": changes of a conversation skipped: " << page.error().message);
      const ConvKey conv = s.conv;
      while (pass.next_change_ < pass.change_sources_.size() &&
             pass.change_sources_[pass.next_change_].conv == conv) {
        ++pass.next_change_;
      }
      continue;
    }
    if (page->size() < limit) {
      ++pass.next_change_;
      // The conversation's last source read to its end: the connection stands at L.
      if (pass.next_change_ == pass.change_sources_.size() ||
          pass.change_sources_[pass.next_change_].conv != s.conv) {
        pass.revs_[s.conv] = s.done;
      }
    } else {
      s.after_rev = page->back().rev;
    }
    if (page->empty()) continue;
    pass.changes_returned_ += page->size();
    return page;
  }
  return std::vector<Message>{};
}

Result<std::vector<Message>> SyncService::next_from_store(Pass& pass, std::uint32_t limit) {
  while (pass.next_source_ < pass.store_sources_.size()) {
    auto& s = pass.store_sources_[pass.next_source_];
    if (s.from >= s.last) {
      ++pass.next_source_;
      continue;
    }
    Result<std::vector<Message>> page = std::vector<Message>{};
    if (auto allowed = messaging_.check_access(pass.user_, s.conv); !allowed) {
      page = allowed.error();
    } else {
      HistoryQuery q;
      q.after_seq = s.from;
      q.limit = limit;
      page = store_.messages(s.conv, q);
    }
    if (!page || page->empty()) {
      if (!page) pass.store_gap_ = true;
      ++pass.next_source_;
      continue;
    }
    s.from = page->back().seq;
    pass.delivered_[s.conv] = s.from;
    pass.returned_ += page->size();
    return page;
  }
  return std::vector<Message>{};
}

Result<std::vector<Message>> SyncService::next_from_inbox(Pass& pass, std::uint32_t limit) {
  while (!pass.inbox_done_) {
    auto page = inbox_.list(pass.user_, pass.inbox_after_, limit);
    if (!page) return page.error();
    pass.inbox_done_ = page->size() < limit;
    std::vector<Message> out;
    for (auto& m : *page) {
      pass.inbox_after_ = InboxCursor{m.conv, m.seq};
      // A conversation the client named a cursor for was served from the Store.
      if (pass.cursors_ && pass.cursors_->count(m.conv)) continue;
      auto& d = pass.delivered_[m.conv];
      if (m.seq <= d) continue;
      d = m.seq;
      out.push_back(std::move(m));
    }
    if (inbox_.holds_copies()) {
      // Copies that could not be checked must not be sent as they are.
      if (auto r = refresh_copies(pass, out); !r) return r.error();
    }
    if (!out.empty()) {
      pass.returned_ += out.size();
      return out;
    }
  }
  return std::vector<Message>{};
}

Result<void> SyncService::refresh_copies(const Pass& pass, std::vector<Message>& page) {
  // The page is in (conversation, seq) order: one run of seqs per conversation.
  for (std::size_t i = 0; i < page.size();) {
    std::size_t j = i;
    while (j < page.size() && page[j].conv == page[i].conv) ++j;
    const ConvKey conv = page[i].conv;
    auto last = pass.last_rev_.find(conv);
    // Changes after L come live (or in the next pass); none before it: nothing to refresh.
    if (last != pass.last_rev_.end() && last->second > 0) {
      ChangeQuery q{.after_rev = 0,
                    .up_to_rev = last->second,
                    .after_seq = page[i].seq - 1,
                    .up_to_seq = page[j - 1].seq,
                    .limit = kMaxHistoryPage};
      for (;;) {
        auto changed = store_.changes(conv, q);
        if (!changed) return changed.error();
        for (auto& now : *changed) {
          auto at =
              std::lower_bound(page.begin() + static_cast<std::ptrdiff_t>(i),
                               page.begin() + static_cast<std::ptrdiff_t>(j), now.seq,
                               [](const Message& m, std::uint64_t seq) { return m.seq < seq; });
          if (at != page.begin() + static_cast<std::ptrdiff_t>(j) && at->seq == now.seq &&
              at->rev < now.rev) {
            *at = std::move(now);
          }
        }
        if (changed->size() < q.limit) break;
        q.after_rev = changed->back().rev;
      }
    }
    i = j;
  }
  return {};
}

Result<void> SyncService::finish(const Pass& pass) {
  const bool handled = pass.overflow_ > 0 && !pass.inbox_ && !pass.store_gap_ &&
                       !pass.dm_undelivered_ && pass.next_source_ >= pass.store_sources_.size();
  if (!handled) return {};
  return inbox_.clear_overflow(pass.user_, pass.overflow_);
}

}  // namespace imd
