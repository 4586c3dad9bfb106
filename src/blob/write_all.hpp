// Writes every byte to a file descriptor (retrying short writes and EINTR): 0, or the errno.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <span>

namespace imd {

inline int write_all(int fd, std::span<const char> bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace imd
