// One error model for domain, ports and adapters: a closed error enum plus a message,
// carried in Result<T>. Transports map Errc to their protocol in one function each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace imd {

enum class Errc {
  invalid_argument,  // the request is malformed or a field is out of range
  unauthenticated,   // missing, expired or forged credentials
  forbidden,         // authenticated, but not allowed to touch this resource
  not_found,
  conflict,           // unique constraint (duplicate phone, ...)
  too_many_requests,  // rate limit or full queue: retry later
  payload_too_large,
  unavailable,  // a dependency failed (store, queue); retrying may help
  internal,
};

std::string_view errc_name(Errc e);

struct Error {
  Errc code;
  std::string message;
  // too_many_requests/unavailable: when the client may try again (0: soon, one second).
  std::int64_t retry_after_s = 0;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_{Errc::internal, {}};
  bool ok_ = true;
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace imd

// Propagates the error of a Result-returning expression; yields nothing.
#define IMD_TRY(expr)                                \
  do {                                               \
    auto imd_try_r_ = (expr);                        \
    if (!imd_try_r_.ok()) return imd_try_r_.error(); \
  } while (0)
