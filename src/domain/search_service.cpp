#include "domain/search_service.hpp"

#include <algorithm>

namespace imd {

SearchService::SearchService(Search* search, MessagingService& messaging, Clock& clock,
                             SearchSettings settings)
    : search_(search),
      messaging_(messaging),
      clock_(clock),
      settings_(settings),
      per_user_(settings.rate_per_s, settings.burst) {}

Result<SearchResults> SearchService::search(Id user, const SearchRequest& req) {
  if (search_ == nullptr) {
    return make_error(Errc::unavailable, "search is disabled on this server (search.enabled)");
  }
  auto terms = parse_search_terms(req.q, settings_.limits);
  if (!terms) return terms.error();
  if (req.after && req.before && *req.after >= *req.before) {
    return make_error(Errc::invalid_argument, "after must be earlier than before");
  }
  if (req.in) IMD_TRY(messaging_.check_access(user, *req.in));
  if (!per_user_.allow(std::to_string(user), clock_.now_ms())) {
    return make_error(Errc::too_many_requests, "too many searches; try again in a moment");
  }

  SearchQuery q;
  q.terms = *terms;
  q.in = req.in;
  q.from = req.from;
  if (req.after) q.after = *req.after;
  if (req.before) q.before = *req.before;
  q.before_id = req.cursor;
  q.limit = std::clamp<std::uint32_t>(req.limit, 1, settings_.max_page);
  auto page = search_->search(user, q);
  if (!page) return page.error();

  SearchResults out;
  out.next_cursor = page->next_before;
  out.indexing = page->indexing;
  out.hits.reserve(page->hits.size());
  for (auto& m : page->hits) {
    // A channel with history_from_join: nothing from before the member joined.
    if (m.conv.is_channel()) {
      auto floor = messaging_.history_floor(user, m.conv);
      if (!floor || m.seq <= *floor) continue;
    }
    Snippet s = make_snippet(m.body, q.terms);
    out.hits.push_back({std::move(m), std::move(s)});
  }
  return out;
}

}  // namespace imd
