// The two scalar types every layer shares: ids (snowflake, time-ordered) and wall-clock times.
#pragma once

#include <cstdint>

namespace imd {

using Id = std::uint64_t;
using Millis = std::int64_t;  // milliseconds since the Unix epoch

}  // namespace imd
