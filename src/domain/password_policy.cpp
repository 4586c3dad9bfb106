#include "domain/password_policy.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace imd {
namespace {

// The most common passwords of 8 characters or more in published breach corpora (the shorter
// ones are refused by length already). Lower case; compared case-insensitively.
constexpr std::array<std::string_view, 96> kCommon = {
    "password",   "12345678",    "123456789",  "1234567890",    "qwertyuiop", "11111111",
    "iloveyou",   "password1",   "00000000",   "87654321",      "sunshine",   "baseball",
    "football",   "princess",    "superman",   "trustno1",      "welcome1",   "passw0rd",
    "abcd1234",   "qwerty123",   "1q2w3e4r",   "zaq12wsx",      "1qaz2wsx",   "qwertyui",
    "asdfghjk",   "123123123",   "987654321",  "11223344",      "12341234",   "letmein1",
    "admin123",   "password123", "iloveyou1",  "1234qwer",      "q1w2e3r4",   "aaaaaaaa",
    "michael1",   "charlie1",    "jennifer",   "computer",      "whatever",   "starwars",
    "liverpool",  "chelsea1",    "88888888",   "99999999",      "12121212",   "55555555",
    "66666666",   "77777777",    "22222222",   "33333333",      "44444444",   "asdfasdf",
    "qwerasdf",   "changeme",    "internet",   "123qweasd",     "dragon12",   "monkey12",
    "master12",   "secret12",    "password12", "welcome123",    "letmein123", "qwerty12",
    "1234abcd",   "abc12345",    "12345qwert", "qwert12345",    "1q2w3e4r5t", "1qaz2wsx3edc",
    "q1w2e3r4t5", "zxcvbnm1",    "zxcvbnma",   "asdf1234",      "qazwsxedc",  "123456abc",
    "abcdefgh",   "abcdefg1",    "pass1234",   "passpass",      "p@ssw0rd",   "p@ssword",
    "football1",  "baseball1",   "princess1",  "sunshine1",     "superman1",  "computer1",
    "1234567a",   "a1234567",    "12345678a",  "administrator", "password!",  "trustno11",
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string digits_of(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c >= '0' && c <= '9') out.push_back(c);
  return out;
}

}  // namespace

Result<void> check_password(std::string_view password, std::string_view name,
                            std::string_view phone) {
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return make_error(Errc::invalid_argument, "password must be 8..128 bytes");
  }
  const std::string p = lower(password);
  if (std::all_of(p.begin(), p.end(), [&](char c) { return c == p.front(); })) {
    return make_error(Errc::invalid_argument, "password must not be one character repeated");
  }
  if (std::find(kCommon.begin(), kCommon.end(), std::string_view(p)) != kCommon.end()) {
    return make_error(Errc::invalid_argument, "password is too common: choose another");
  }
  const std::string phone_digits = digits_of(phone);
  if ((!name.empty() && p == lower(name)) ||
      (phone_digits.size() >= 5 && digits_of(p) == phone_digits && p.size() <= phone.size())) {
    return make_error(Errc::invalid_argument, "password must not be the name or the phone number");
  }
  return {};
}

}  // namespace imd
