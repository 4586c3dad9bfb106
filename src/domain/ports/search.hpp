// Search port: full-text search over stored messages, limited to what the caller may read.
//
// Contract for every adapter:
// - Thread-safe: any method may be called from any thread concurrently. Methods block;
//   callers run them on a blocking pool, never on an I/O thread.
// - What is found: messages of the channels `user` is a member of now and of the DMs they take
//   part in; never a deleted message; an edited message by its current text only. Each term
//   is a literal substring (never engine query syntax), matched case-insensitively (ASCII
//   letters at least); every term must occur. Newest first (by message id, which is time-ordered).
// - Errors: unavailable for an engine failure or a query that ran past the adapter's time
//   budget (the message says so). Never throws.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

struct SearchQuery {
  // Literal texts, each non-empty valid UTF-8 without control characters (SearchService checks).
  std::vector<std::string> terms;
  std::optional<ConvKey> in;                           // only this conversation
  Id from = 0;                                         // only this sender (0: anyone)
  Millis after = std::numeric_limits<Millis>::min();   // created_at > after
  Millis before = std::numeric_limits<Millis>::max();  // created_at < before
  Id before_id = 0;  // paging: only messages with id < before_id (0: from the newest)
  std::uint32_t limit = 20;
};

struct SearchPage {
  // The hits, newest first: id, conv, seq, from, to, type, body (current), created_at and
  // edited_at set.
  std::vector<Message> hits;
  // The id to pass as before_id for the next page; nullopt when this page was the last.
  std::optional<Id> next_before;
  // True while the index is still being built for older messages: they may be missing.
  bool indexing = false;
};

class Search {
 public:
  virtual ~Search() = default;
  virtual Result<SearchPage> search(Id user, const SearchQuery& q) = 0;
};

}  // namespace imd
