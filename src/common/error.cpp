#include "common/error.hpp"

namespace imd {

std::string_view errc_name(Errc e) {
  switch (e) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::unauthenticated:
      return "unauthenticated";
    case Errc::forbidden:
      return "forbidden";
    case Errc::not_found:
      return "not_found";
    case Errc::conflict:
      return "conflict";
    case Errc::too_many_requests:
      return "too_many_requests";
    case Errc::payload_too_large:
      return "payload_too_large";
    case Errc::unavailable:
      return "unavailable";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace imd
