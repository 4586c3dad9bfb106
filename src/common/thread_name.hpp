// Names the calling thread (at most 15 characters) so that `top -H`, perf and imbench's
// per-thread CPU verdicts show roles (imd-io, imd-queue, ...) instead of creation ranks.
#pragma once

#include <pthread.h>

namespace imd {

inline void set_thread_name(const char* name) {
  (void)pthread_setname_np(pthread_self(), name);
}

}  // namespace imd
