#include "wire/http.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

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

std::string error_body(const Error& e) {
  bj::object err{{"code", errc_name(e.code)}, {"message", e.message}};
  return bj::serialize(bj::object{{"error", std::move(err)}});
}

HttpResponse error_response(const Error& e) {
  HttpResponse r;
  r.status = http_status(e.code);
  r.body = error_body(e);
  if (e.code == Errc::too_many_requests || e.code == Errc::unavailable) {
    r.headers.emplace_back("Retry-After", "1");
  }
  if (e.code == Errc::unauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace imd::wire
