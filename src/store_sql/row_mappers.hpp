// Row -> model mappers shared by the SQL adapters (SQLite, MySQL): the schema's column lists
// are the same in both dialects, so one template per model serves any statement type with
// column_id / column_text / column_int64. Each mapper documents the column list it expects.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

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

// id, name, avatar, owner_id, created_at, discoverable
template <class Stmt>
Space space(const Stmt& s) {
  return Space{.id = s.column_id(0),
               .name = s.column_text(1),
               .avatar = s.column_text(2),
               .owner_id = s.column_id(3),
               .created_at = s.column_int64(4),
               .discoverable = s.column_int64(5) != 0};
}

// A stored role; anything unknown reads as a plain member (the least power).
inline SpaceRole space_role(std::int64_t v) {
  return v == 1 ? SpaceRole::admin : v == 2 ? SpaceRole::owner : SpaceRole::member;
}

// code, space_id, created_by, created_at, expires_at, max_uses, uses
template <class Stmt>
Invite invite(const Stmt& s) {
  return Invite{.code = s.column_text(0),
                .space_id = s.column_id(1),
                .created_by = s.column_id(2),
                .created_at = s.column_int64(3),
                .expires_at = s.column_int64(4),
                .max_uses = static_cast<std::uint32_t>(s.column_int64(5)),
                .uses = static_cast<std::uint32_t>(s.column_int64(6))};
}

// id, space_id, name, avatar, owner_id, created_at, last_seq, last_message_id, is_private,
// archived, history_from_join (kChannelColumns)
template <class Stmt>
Channel channel(const Stmt& s) {
  return Channel{.id = s.column_id(0),
                 .space_id = s.column_id(1),
                 .name = s.column_text(2),
                 .avatar = s.column_text(3),
                 .owner_id = s.column_id(4),
                 .created_at = s.column_int64(5),
                 .last_seq = s.column_id(6),
                 .last_message_id = s.column_id(7),
                 .is_private = s.column_int64(8) != 0,
                 .archived = s.column_int64(9) != 0,
                 .history_from_join = s.column_int64(10) != 0};
}

// user_id, name, avatar, joined_at, role (NULL: not a space member list)
template <class Stmt>
Member member(const Stmt& s) {
  Member m{.user_id = s.column_id(0),
           .name = s.column_text(1),
           .avatar = s.column_text(2),
           .joined_at = s.column_int64(3),
           .role = std::nullopt};
  if (!s.column_is_null(4)) m.role = space_role(s.column_int64(4));
  return m;
}

// A stored change kind; anything unknown reads as an edit (the body column is current anyway).
inline Change change_kind(std::int64_t v) {
  return v >= 0 && v <= static_cast<std::int64_t>(Change::react) ? static_cast<Change>(v)
                                                                 : Change::edit;
}

// The stored form of a message's reactions: one line per emoji, "<emoji>\t<id>,<id>...".
// Emoji never hold whitespace (MessagingService::change checks them), so the separators are
// unambiguous; a malformed line is skipped.
inline std::vector<Reaction> reactions_from_text(std::string_view text) {
  std::vector<Reaction> out;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    const std::size_t tab = line.find('\t');
    if (tab == 0 || tab == std::string_view::npos) continue;
    Reaction r{std::string(line.substr(0, tab)), {}};
    std::string_view ids = line.substr(tab + 1);
    while (!ids.empty()) {
      const std::size_t comma = std::min(ids.find(','), ids.size());
      Id id = 0;
      for (char ch : ids.substr(0, comma)) id = id * 10 + static_cast<Id>(ch - '0');
      if (id != 0) r.users.push_back(id);
      ids.remove_prefix(std::min(comma + 1, ids.size()));
    }
    if (!r.users.empty()) out.push_back(std::move(r));
  }
  return out;
}

inline std::string reactions_to_text(const std::vector<Reaction>& reactions) {
  std::string out;
  for (const auto& r : reactions) {
    if (!out.empty()) out += '\n';
    out += r.emoji;
    out += '\t';
    for (std::size_t i = 0; i < r.users.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(r.users[i]);
    }
  }
  return out;
}

// The columns every message row ends with (both tables), from column c:
// reply_to, rev, change_kind, edited_at, deleted, reactions
template <class Stmt>
void message_state(const Stmt& s, int c, Message& m) {
  m.reply_to = s.column_id(c);
  m.rev = s.column_id(c + 1);
  m.change = change_kind(s.column_int64(c + 2));
  m.edited_at = s.column_int64(c + 3);
  m.deleted = s.column_int64(c + 4) != 0;
  const std::string reactions = s.column_text(c + 5);
  if (!reactions.empty()) m.reactions = reactions_from_text(reactions);
}

// channel_message: channel_id, message_id, seq, from, type, body, created_at, cid, reply_to,
// rev, change_kind, edited_at, deleted, reactions
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
// change_kind, edited_at, deleted, reactions
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
