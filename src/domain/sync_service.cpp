#include "domain/sync_service.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace imd {

SyncService::SyncService(Store& store, Inbox& inbox, MessagingService& messaging)
    : store_(store), inbox_(inbox), messaging_(messaging) {}

Result<SyncService::Pass> SyncService::begin(Id user, std::optional<SyncCursors> cursors,
                                             Delivered delivered) {
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
    if (c.conv.is_dm() && !client_cursor && p.inbox_) continue;  // the inbox serves it
    if (c.conv.is_dm() && c.ack_seq < c.last_seq) p.dm_undelivered_ = true;
    std::uint64_t from = client_cursor ? p.cursors_->at(c.conv) : c.ack_seq;
    if (auto d = p.delivered_.find(c.conv); d != p.delivered_.end()) {
      from = std::max(from, d->second);
    }
    if (from < c.last_seq) p.store_sources_.push_back({c.conv, from, c.last_seq});
  }
  p.inbox_done_ = !p.inbox_;
  return p;
}

Result<std::vector<Message>> SyncService::next(Pass& pass, std::uint32_t limit) {
  limit = std::max<std::uint32_t>(limit, 1);
  auto page = next_from_store(pass, std::min(limit, kMaxHistoryPage));
  if (!page || !page->empty()) return page;
  return next_from_inbox(pass, limit);
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
    if (!out.empty()) {
      pass.returned_ += out.size();
      return out;
    }
  }
  return std::vector<Message>{};
}

Result<void> SyncService::finish(const Pass& pass) {
  const bool handled = pass.overflow_ > 0 && !pass.inbox_ && !pass.store_gap_ &&
                       !pass.dm_undelivered_ && pass.next_source_ >= pass.store_sources_.size();
  if (!handled) return {};
  return inbox_.clear_overflow(pass.user_, pass.overflow_);
}

}  // namespace imd
