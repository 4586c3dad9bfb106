#include "domain/admin_service.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "domain/password.hpp"

namespace imd {

AdminService::AdminService(Store& store, AuthService& auth, SpaceService& spaces,
                           MessagingService& messaging,
                           const std::vector<std::string>& admin_phones)
    : store_(store), auth_(auth), spaces_(spaces), messaging_(messaging) {
  for (const auto& p : admin_phones) {
    auto e164 = normalize_phone(p);
    if (!e164) {
      LOG_WARN("auth.admins: '" << p << "' is not a phone number; ignored");
      continue;
    }
    admin_phones_.push_back(*e164);
  }
}

Result<bool> AdminService::is_admin(Id user) {
  {
    std::lock_guard lock(mu_);
    if (first_user_ && *first_user_ == user) return true;
  }
  if (!admin_phones_.empty()) {
    auto u = store_.user_by_id(user);
    if (!u) return u.error();
    if (std::find(admin_phones_.begin(), admin_phones_.end(), u->phone) != admin_phones_.end()) {
      return true;
    }
  }
  std::lock_guard lock(mu_);
  if (!first_user_) {
    auto first = store_.first_user_id();
    if (!first) return first.error();
    first_user_ = *first;
  }
  return *first_user_ == user;
}

Result<void> AdminService::check_admin(Id caller) {
  auto admin = is_admin(caller);
  if (!admin) return admin.error();
  if (!*admin) return make_error(Errc::forbidden, "only a server admin may do this");
  return {};
}

Result<Page<UserStatus>> AdminService::users(Id caller, const std::string& query, Id after,
                                             std::uint32_t limit) {
  IMD_TRY(check_admin(caller));
  if (query.size() > kMaxNameBytes) {
    return make_error(Errc::invalid_argument, "q must be at most 64 bytes");
  }
  // A phone in any form finds the stored (E.164) one.
  auto e164 = normalize_phone(query);
  auto rows = store_.list_users(query, e164 ? *e164 : query, after, limit);
  if (!rows) return rows.error();
  Page<UserStatus> page;
  page.items = std::move(*rows);
  if (page.items.size() == limit) page.next_after = page.items.back().user.id;
  return page;
}

Result<void> AdminService::set_deactivated(Id caller, Id user, bool deactivated) {
  IMD_TRY(check_admin(caller));
  if (deactivated && user == caller) {
    return make_error(Errc::invalid_argument, "an admin cannot deactivate themselves");
  }
  return auth_.set_deactivated(user, deactivated);
}

Result<std::string> AdminService::reset_password(Id caller, Id user,
                                                 const std::string& new_password) {
  IMD_TRY(check_admin(caller));
  // 16 random URL-safe characters (96 bits) when the admin names none: handed over once.
  std::string password = new_password.empty() ? random_token(12) : new_password;
  IMD_TRY(auth_.reset_password(user, password));
  LOG_INFO("admin " << caller << " reset the password of user " << user);
  return password;
}

Result<Page<Space>> AdminService::spaces(Id caller, Id after, std::uint32_t limit) {
  IMD_TRY(check_admin(caller));
  return spaces_.all_spaces(after, limit);
}

Result<void> AdminService::remove_from_space(Id caller, Id space_id, Id user) {
  IMD_TRY(check_admin(caller));
  IMD_TRY(spaces_.remove_member_by_server_admin(space_id, user));
  LOG_INFO("admin " << caller << " removed user " << user << " from space " << space_id);
  return {};
}

Result<void> AdminService::delete_message(Id caller, Id message_id) {
  IMD_TRY(check_admin(caller));
  auto m = messaging_.erase_by_server_admin(message_id);
  if (!m) return m.error();
  LOG_INFO("admin " << caller << " deleted message " << message_id << " of user " << m->from
                    << " in " << (m->conv.is_channel() ? "channel " : "a DM of ")
                    << (m->conv.is_channel() ? m->conv.a : m->from) << " (seq " << m->seq << ")");
  return {};
}

}  // namespace imd
