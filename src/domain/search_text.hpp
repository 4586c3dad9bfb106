// The text side of search, the same for every adapter: what a user's query means (its terms)
// and the highlighted excerpt of a hit. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace imd {

struct SearchLimits {
  std::size_t max_query_chars = 256;  // Unicode code points of q
  std::size_t max_terms = 16;
};

// The terms of a query: words split on whitespace, or "double-quoted phrases" kept whole
// (spaces inside). Everything else is literal text: AND, OR, NOT, NEAR, *, ^, :, ( ) mean
// nothing. invalid_argument (with a message for the user) for invalid UTF-8, control
// characters, more than max_query_chars, an unbalanced quote, no term, or too many terms.
Result<std::vector<std::string>> parse_search_terms(std::string_view q,
                                                    const SearchLimits& limits = {});

// An excerpt of a hit's body around its first match, with the matches marked. `marks` are
// [start, length) pairs in UTF-16 code units of `text` (what JavaScript strings index), in
// order and disjoint. Matching is ASCII case-insensitive (the engines fold more; an
// occurrence they found that this does not see is simply not marked).
struct Snippet {
  std::string text;
  std::vector<std::pair<std::size_t, std::size_t>> marks;
};
Snippet make_snippet(std::string_view body, const std::vector<std::string>& terms,
                     std::size_t max_chars = 160);

}  // namespace imd
