// Minimal leveled logger to stderr. Thread-safe: each line is one write(2).
// Usage: LOG_INFO("listening on " << endpoint). Never pass secrets (passwords, tokens,
// JWT keys) to it.
#pragma once

#include <sstream>
#include <string_view>

namespace imd::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
void write(Level level, std::string_view line);

}  // namespace imd::log

#define IMD_LOG(level, expr)                       \
  do {                                             \
    if (::imd::log::enabled(level)) {              \
      std::ostringstream imd_log_os_;              \
      imd_log_os_ << expr;                         \
      ::imd::log::write(level, imd_log_os_.str()); \
    }                                              \
  } while (0)
#define LOG_DEBUG(expr) IMD_LOG(::imd::log::Level::debug, expr)
#define LOG_INFO(expr) IMD_LOG(::imd::log::Level::info, expr)
#define LOG_WARN(expr) IMD_LOG(::imd::log::Level::warn, expr)
#define LOG_ERROR(expr) IMD_LOG(::imd::log::Level::error, expr)
