// The minimum password policy (docs/security.md): 8..128 bytes, not one character repeated,
// not one of the most common passwords of breach corpora, not the account's name or phone.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/error.hpp"

namespace imd {

inline constexpr std::size_t kMinPasswordBytes = 8;
inline constexpr std::size_t kMaxPasswordBytes = 128;

// invalid_argument saying what is wrong.
Result<void> check_password(std::string_view password, std::string_view name,
                            std::string_view phone);

}  // namespace imd
