// IdGenerator (a port of the domain, kept here so that common/ needs nothing above it): globally
// unique, time-ordered 64-bit ids (snowflake). Contract: thread-safe; ids strictly increase per
// generator; unavailable if the clock stepped back further than the generator is willing to wait.
#pragma once

#include "common/error.hpp"
#include "common/types.hpp"

namespace imd {

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual Result<Id> next() = 0;
};

}  // namespace imd
