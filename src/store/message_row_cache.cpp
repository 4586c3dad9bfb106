#include "store/message_row_cache.hpp"

namespace imd {

std::size_t MessageRowCache::row_bytes(const Message& m) {
  // The heap a copy holds: strings past the small-string buffer.
  auto heap = [](const std::string& s) { return s.size() > 15 ? s.size() + 1 : 0; };
  std::size_t reactions = m.reactions.capacity() * sizeof(Reaction);
  for (const auto& r : m.reactions) reactions += heap(r.emoji) + r.users.capacity() * sizeof(Id);
  return heap(m.type) + heap(m.body) + heap(m.cid) + reactions;
}

void MessageRowCache::touch(Block& b) {
  lru_.splice(lru_.begin(), lru_, b.lru);
}

std::optional<std::vector<Message>> MessageRowCache::rows(const ConvKey& conv, std::uint64_t first,
                                                          std::size_t count) {
  if (count == 0 || first > UINT64_MAX - count) return std::nullopt;
  std::lock_guard lock(mu_);
  // Every seq must be here before anything is copied: a miss costs no copies.
  std::array<Block*, 4> blocks{};  // a page of up to 3 * kBlockRows rows
  const std::uint64_t first_block = first / kBlockRows;
  const std::uint64_t last_block = (first + count - 1) / kBlockRows;
  if (last_block - first_block >= blocks.size()) return std::nullopt;
  for (std::uint64_t i = first_block; i <= last_block; ++i) {
    auto it = blocks_.find(BlockKey{conv, i});
    if (it == blocks_.end()) return std::nullopt;
    blocks[i - first_block] = &it->second;
  }
  for (std::uint64_t seq = first; seq < first + count; ++seq) {
    if (!blocks[seq / kBlockRows - first_block]->present[seq % kBlockRows]) return std::nullopt;
  }
  std::vector<Message> out;
  out.reserve(count);
  for (std::uint64_t seq = first; seq < first + count; ++seq) {
    out.push_back(blocks[seq / kBlockRows - first_block]->rows[seq % kBlockRows]);
  }
  for (Block* b : blocks) {
    if (b != nullptr) touch(*b);
  }
  return out;
}

void MessageRowCache::remember(const std::vector<Message>& rows) {
  std::lock_guard lock(mu_);
  for (const Message& m : rows) {
    const BlockKey key{m.conv, m.seq / kBlockRows};
    auto [it, added] = blocks_.try_emplace(key);
    Block& b = it->second;
    if (added) {
      lru_.push_front(key);
      b.lru = lru_.begin();
      b.bytes = sizeof(Block) + sizeof(BlockKey) * 2;  // the map's and the list's copy of the key
      bytes_ += b.bytes;
    } else {
      touch(b);
    }
    const std::size_t slot = m.seq % kBlockRows;
    if (b.present[slot]) {
      // A changed message replaces its row; an older read of it never does.
      if (m.rev <= b.rows[slot].rev) continue;
      b.bytes -= row_bytes(b.rows[slot]);
      bytes_ -= row_bytes(b.rows[slot]);
    }
    b.rows[slot] = m;
    b.present[slot] = true;
    b.bytes += row_bytes(m);
    bytes_ += row_bytes(m);
  }
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto victim = blocks_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    blocks_.erase(victim);
    lru_.pop_back();
  }
}

void MessageRowCache::forget(const ConvKey& conv) {
  std::lock_guard lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->conv != conv) {
      ++it;
      continue;
    }
    auto block = blocks_.find(*it);
    bytes_ -= block->second.bytes;
    blocks_.erase(block);
    it = lru_.erase(it);
  }
}

std::size_t MessageRowCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace imd
