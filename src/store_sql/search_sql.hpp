// What the Search adapters of both engines share (SqliteSearch in src/store, MysqlSearch in
// src/store_mysql): the LIKE pattern of a literal term, and a hit read from a row whose
// columns are, in order: id, kind, conv_a, conv_b, seq, sender, type, created_at, edited_at,
// body (any statement type with column_id / column_int64 / column_text).
#pragma once

#include <string>
#include <string_view>

#include "domain/model.hpp"

namespace imd::sql {

// `%term%` with %, _ and the escape character \ taken literally (LIKE ... ESCAPE '\').
inline std::string like_pattern(std::string_view term) {
  std::string p = "%";
  for (char ch : term) {
    if (ch == '%' || ch == '_' || ch == '\\') p += '\\';
    p += ch;
  }
  p += '%';
  return p;
}

template <class Row>
Message search_hit(const Row& r) {
  Message m;
  m.id = r.column_id(0);
  m.conv = static_cast<ConvKind>(r.column_int64(1)) == ConvKind::channel
               ? ConvKey::channel(r.column_id(2))
               : ConvKey::dm(r.column_id(2), r.column_id(3));
  m.seq = static_cast<std::uint64_t>(r.column_int64(4));
  m.from = r.column_id(5);
  if (m.conv.is_dm()) m.to = m.conv.peer_of(m.from);
  m.type = r.column_text(6);
  m.created_at = r.column_int64(7);
  m.edited_at = r.column_int64(8);
  m.body = r.column_text(9);
  return m;
}

}  // namespace imd::sql
