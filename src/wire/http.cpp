#include "wire/http.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <random>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "common/log.hpp"

namespace imd::wire {

namespace bj = boost::json;

int http_status(Errc e) {
  switch (e) {
    case Errc::invalid_argument:
      return 400;
    case Errc::unauthenticated:
      return 401;
    case Errc::forbidden:
      return 403;
    case Errc::not_found:
      return 404;
    case Errc::conflict:
      return 409;
    case Errc::payload_too_large:
      return 413;
    case Errc::too_many_requests:
      return 429;
    case Errc::unavailable:
      return 503;
    case Errc::internal:
      return 500;
  }
  return 500;
}

namespace {

bool engine_text(std::string_view m) {
  for (std::string_view tag : {"sqlite:", "mysql:", "redis:", "nats:", "etcd:"}) {
    if (m.substr(0, tag.size()) == tag) return true;
  }
  return false;
}

std::string_view generic_message(Errc e) {
  switch (e) {
    case Errc::conflict:
      return "the request conflicts with existing data";
    case Errc::not_found:
      return "not found";
    case Errc::invalid_argument:
      return "the request is not valid";
    case Errc::unavailable:
      return "temporarily unavailable, retry later";
    default:
      return "internal error";
  }
}

}  // namespace

std::string public_message(const Error& e) {
  if (e.code != Errc::internal && !engine_text(e.message)) return e.message;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::array<char, 17> ref{};
  std::snprintf(ref.data(), ref.size(), "%08llx",
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  LOG_WARN("error ref " << ref.data() << " (" << errc_name(e.code) << "): " << e.message);
  return std::string(generic_message(e.code)) + " (ref " + ref.data() + ")";
}

std::string error_body(const Error& e) {
  bj::object err{{"code", errc_name(e.code)}, {"message", public_message(e)}};
  return bj::serialize(bj::object{{"error", std::move(err)}});
}

HttpResponse error_response(const Error& e) {
  HttpResponse r;
  r.status = http_status(e.code);
  r.body = error_body(e);
  if (e.code == Errc::too_many_requests || e.code == Errc::unavailable) {
    r.headers.emplace_back("Retry-After",
                           std::to_string(std::max<std::int64_t>(1, e.retry_after_s)));
  }
  if (e.code == Errc::unauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace imd::wire
