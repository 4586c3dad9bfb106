// MessageRowCache: stored message rows by (conversation, seq), kept so that history pages read
// again do not decode the same rows from SQLite again (decoding was a quarter of a history
// request's CPU).
//
// Why it cannot go stale: only rows that a read transaction returned, i.e. committed rows, are
// remembered, and a stored message changes only by a change (edit, delete, reaction) that bumps
// its rev: the store remembers the changed row after the commit, and a row replaces a
// remembered one only with a higher rev (a read that saw the row before the change and
// remembers it late is ignored). A page is answered from here only when every seq it consists
// of is here: the `count` seqs right below `before_seq` (or right after `after_seq`) all exist,
// so they are exactly the rows the query returns. Anything else (the newest page, a row not
// seen yet) goes to the database, and what it returns is remembered.
//
// Bounded: rows live in blocks of 64 consecutive seqs of one conversation; the least recently
// used blocks are dropped when the rows' bytes exceed max_bytes. Thread-safe (one mutex; a hit
// copies the page's rows under it).
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "domain/model.hpp"

namespace imd {

class MessageRowCache {
 public:
  explicit MessageRowCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // The rows with seqs first .. first + count - 1 of `conv`, in ascending order, when all of
  // them are here; nullopt otherwise.
  std::optional<std::vector<Message>> rows(const ConvKey& conv, std::uint64_t first,
                                           std::size_t count);
  // Remembers rows read from the database (of any conversations); a row already here is
  // replaced only by one with a higher rev.
  void remember(const std::vector<Message>& rows);
  // Drops every row of `conv` (a deleted channel). A read that began before the delete may
  // remember a few rows again: they are unreachable, since every page read checks membership
  // first, and age out.
  void forget(const ConvKey& conv);

  std::size_t bytes() const;

 private:
  static constexpr std::size_t kBlockRows = 64;
  struct BlockKey {
    ConvKey conv;
    std::uint64_t index = 0;  // seq / kBlockRows
    bool operator==(const BlockKey&) const = default;
  };
  struct BlockKeyHash {
    std::size_t operator()(const BlockKey& k) const noexcept {
      return ConvKeyHash{}(k.conv) ^ (k.index * 0x9E3779B97F4A7C15ull);
    }
  };
  struct Block {
    std::array<Message, kBlockRows> rows;
    std::bitset<kBlockRows> present;
    std::size_t bytes = 0;
    std::list<BlockKey>::iterator lru;  // its place in lru_ (front: most recently used)
  };
  static std::size_t row_bytes(const Message& m);
  void touch(Block& b);

  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<BlockKey, Block, BlockKeyHash> blocks_;
  std::list<BlockKey> lru_;
  std::size_t bytes_ = 0;
};

}  // namespace imd
