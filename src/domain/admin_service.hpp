// Server administration: who is a server admin (the first account registered, and the
// accounts whose phones auth.admins names) and what they may do: list and search users,
// deactivate and reactivate them, reset a password, list every space, remove a user from a
// space, delete any message. Every call names its caller and is
// forbidden unless the caller is an admin. Thread-safe; blocking (Store, Argon2id).
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/ports/store.hpp"
#include "domain/space_service.hpp"

namespace imd {

class AdminService {
 public:
  // `admin_phones`: the accounts (by phone, any form normalize_phone() reads) that are
  // admins besides the first one.
  AdminService(Store& store, AuthService& auth, SpaceService& spaces, MessagingService& messaging,
               const std::vector<std::string>& admin_phones);

  Result<bool> is_admin(Id user);
  // Users in id order, after `after`; `query`: a name prefix or a phone.
  Result<Page<UserStatus>> users(Id caller, const std::string& query, Id after,
                                 std::uint32_t limit);
  Result<void> set_deactivated(Id caller, Id user, bool deactivated);
  // Sets `new_password` (the policy applies) or, when empty, a generated one; returns the
  // password that was set. Every session of the user ends.
  Result<std::string> reset_password(Id caller, Id user, const std::string& new_password);
  Result<Page<Space>> spaces(Id caller, Id after, std::uint32_t limit);
  // Whatever the user's role but owner; they lose the space at once, as when removed by an
  // admin of the space (SpaceService).
  Result<void> remove_from_space(Id caller, Id space_id, Id user);
  // Tombstones any message as its sender's delete does (MessagingService::erase_by_server_admin),
  // logged with the caller; not_found for a missing or already deleted one.
  Result<void> delete_message(Id caller, Id message_id);

 private:
  Result<void> check_admin(Id caller);

  Store& store_;
  AuthService& auth_;
  SpaceService& spaces_;
  MessagingService& messaging_;
  std::vector<std::string> admin_phones_;  // normalized
  std::mutex mu_;
  std::optional<Id> first_user_;  // immutable once known: accounts are never deleted
};

}  // namespace imd
