#include "common/version.hpp"

#ifndef IMD_VERSION
#define IMD_VERSION "unknown"
#endif

namespace imd {

std::string_view build_version() {
  return IMD_VERSION;
}

}  // namespace imd
