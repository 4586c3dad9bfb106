// Row -> model mappers shared by the SQL adapters (SQLite, MySQL): the schema's column lists
// are the same in both dialects, so one template per model serves any statement type with
// column_id / column_text / column_int64. Each mapper documents the column list it expects.
#pragma once

#include "domain/model.hpp"

namespace imd::rows {

// id, name, avatar, COALESCE(phone, ''), created_at
template <class Stmt>
User user(const Stmt& s, int c = 0) {
  return User{.id = s.column_id(c),
              .name = s.column_text(c + 1),
              .avatar = s.column_text(c + 2),
              .phone = s.column_text(c + 3),
              .created_at = s.column_int64(c + 4)};
}

// id, name, avatar, owner_id, created_at
template <class Stmt>
Space space(const Stmt& s) {
  return Space{.id = s.column_id(0),
               .name = s.column_text(1),
               .avatar = s.column_text(2),
               .owner_id = s.column_id(3),
               .created_at = s.column_int64(4)};
}

// id, space_id, name, avatar, owner_id, created_at, last_seq, last_message_id
template <class Stmt>
Channel channel(const Stmt& s) {
  return Channel{.id = s.column_id(0),
                 .space_id = s.column_id(1),
                 .name = s.column_text(2),
                 .avatar = s.column_text(3),
                 .owner_id = s.column_id(4),
                 .created_at = s.column_int64(5),
                 .last_seq = s.column_id(6),
                 .last_message_id = s.column_id(7)};
}

// user_id, name, avatar, joined_at
template <class Stmt>
Member member(const Stmt& s) {
  return Member{.user_id = s.column_id(0),
                .name = s.column_text(1),
                .avatar = s.column_text(2),
                .joined_at = s.column_int64(3)};
}

// A stored change kind; anything unknown reads as an edit (the body column is current anyway).
inline Change change_kind(std::int64_t v) {
  return v >= 0 && v <= static_cast<std::int64_t>(Change::react) ? static_cast<Change>(v)
                                                                 : Change::edit;
}

// The columns every message row ends with (both tables), from column c:
// reply_to, rev, change_kind, edited_at, deleted
template <class Stmt>
void message_state(const Stmt& s, int c, Message& m) {
  m.reply_to = s.column_id(c);
  m.rev = s.column_id(c + 1);
  m.change = change_kind(s.column_int64(c + 2));
  m.edited_at = s.column_int64(c + 3);
  m.deleted = s.column_int64(c + 4) != 0;
}

// channel_message: channel_id, message_id, seq, from, type, body, created_at, cid, reply_to,
// rev, change_kind, edited_at, deleted
template <class Stmt>
Message channel_message(const Stmt& s, int c = 0) {
  Message m{.id = s.column_id(c + 1),
            .conv = ConvKey::channel(s.column_id(c)),
            .seq = s.column_id(c + 2),
            .from = s.column_id(c + 3),
            .to = 0,
            .type = s.column_text(c + 4),
            .body = s.column_text(c + 5),
            .created_at = s.column_int64(c + 6),
            .cid = s.column_text(c + 7)};
  message_state(s, c + 8, m);
  return m;
}

// message: id, from, to, type, body, created_at, user_a, user_b, seq, cid, reply_to, rev,
// change_kind, edited_at, deleted
template <class Stmt>
Message dm_message(const Stmt& s, int c = 0) {
  Message m{.id = s.column_id(c),
            .conv = ConvKey{ConvKind::dm, s.column_id(c + 6), s.column_id(c + 7)},
            .seq = s.column_id(c + 8),
            .from = s.column_id(c + 1),
            .to = s.column_id(c + 2),
            .type = s.column_text(c + 3),
            .body = s.column_text(c + 4),
            .created_at = s.column_int64(c + 5),
            .cid = s.column_text(c + 9)};
  message_state(s, c + 10, m);
  return m;
}

}  // namespace imd::rows
