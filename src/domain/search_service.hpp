// SearchService: full-text search over the messages a user may read (GET /api/v1/search).
// Parses the query into literal terms (search_text.hpp), checks the filters (the `in`
// conversation must be readable by the caller: forbidden / not_found otherwise), bounds the
// page and the rate per user, then asks the Search port, which applies the access rule to
// every hit. Each hit comes back with a highlighted excerpt.
//
// Thread-safe; search() blocks (the port reads the engine): run it on the blocking pool.
// Errors: invalid_argument (bad query, filters), too_many_requests (per-user rate),
// unavailable (search disabled on this server, engine failure, the time budget ran out).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/rate_limiter.hpp"
#include "domain/messaging_service.hpp"
#include "domain/ports/search.hpp"
#include "domain/search_text.hpp"

namespace imd {

struct SearchRequest {
  std::string q;
  std::optional<ConvKey> in;
  Id from = 0;
  std::optional<Millis> after;   // created_at > after
  std::optional<Millis> before;  // created_at < before
  Id cursor = 0;                 // a previous page's next cursor (0: the newest)
  std::uint32_t limit = 20;
};

struct SearchHit {
  Message msg;
  Snippet snippet;
};

struct SearchResults {
  std::vector<SearchHit> hits;
  std::optional<Id> next_cursor;
  bool indexing = false;
};

struct SearchSettings {
  SearchLimits limits;
  std::uint32_t max_page = 50;
  double rate_per_s = 5;  // searches per user, token bucket
  double burst = 20;
};

class SearchService {
 public:
  // `search` null: search is disabled here (every call is unavailable).
  SearchService(Search* search, MessagingService& messaging, Clock& clock,
                SearchSettings settings = {});

  Result<SearchResults> search(Id user, const SearchRequest& req);

 private:
  Search* search_;
  MessagingService& messaging_;
  Clock& clock_;
  SearchSettings settings_;
  KeyedRateLimiter per_user_;
};

}  // namespace imd
