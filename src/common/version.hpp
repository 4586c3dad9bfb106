// The build's version string (CMake's project version; one TU carries it, so a version bump
// recompiles one file). A process reports Config::version when set, else this.
#pragma once

#include <string_view>

namespace imd {

std::string_view build_version();

}  // namespace imd
