// Password hashing with Argon2id (libsodium crypto_pwhash_str). Thread-safe.
// Hashing is deliberately slow and memory-hungry: call it on the blocking pool.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imd {

class PasswordHasher {
 public:
  // cost: "interactive" (64 MiB, 2 passes), "moderate" (256 MiB, 3), "min" (tests, benches).
  explicit PasswordHasher(std::string_view cost);
  Result<std::string> hash(std::string_view password) const;
  bool verify(std::string_view hash, std::string_view password) const;
  // Burns the time of one verification, so an unknown login name answers as slowly as a
  // wrong password (no user enumeration by timing).
  void verify_dummy(std::string_view password) const;

 private:
  unsigned long long opslimit_;
  std::size_t memlimit_;
  std::string dummy_hash_;
};

// Cryptographically random bytes, base64url without padding.
std::string random_token(std::size_t bytes);
// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);

}  // namespace imd
