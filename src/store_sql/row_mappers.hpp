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

// id, name, avatar, COALESCE(phone, ''), created_at, password
template <class Stmt>
UserCredentials credentials(const Stmt& s) {
  return UserCredentials{.user = user(s), .password_hash = s.column_text(5)};
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

// channel_message: channel_id, message_id, seq, from, type, body, created_at, cid
template <class Stmt>
Message channel_message(const Stmt& s, int c = 0) {
  return Message{.id = s.column_id(c + 1),
                 .conv = ConvKey::channel(s.column_id(c)),
                 .seq = s.column_id(c + 2),
                 .from = s.column_id(c + 3),
                 .to = 0,
                 .type = s.column_text(c + 4),
                 .body = s.column_text(c + 5),
                 .created_at = s.column_int64(c + 6),
                 .cid = s.column_text(c + 7)};
}

// message: id, from, to, type, body, created_at, user_a, user_b, seq, cid
template <class Stmt>
Message dm_message(const Stmt& s, int c = 0) {
  return Message{.id = s.column_id(c),
                 .conv = ConvKey{ConvKind::dm, s.column_id(c + 6), s.column_id(c + 7)},
                 .seq = s.column_id(c + 8),
                 .from = s.column_id(c + 1),
                 .to = s.column_id(c + 2),
                 .type = s.column_text(c + 3),
                 .body = s.column_text(c + 4),
                 .created_at = s.column_int64(c + 5),
                 .cid = s.column_text(c + 9)};
}

}  // namespace imd::rows
