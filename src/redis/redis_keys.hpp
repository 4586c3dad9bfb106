// Key spelling shared by the Redis adapters: fixed-width lowercase hex, whose byte order is the
// numeric order (ZRANGEBYLEX compares bytes), and a Lua helper that compares such numbers.
#pragma once

#include <cstdint>
#include <string>

namespace imd::redis {

inline void append_hex16(std::string& out, std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 15]);
}

inline std::string hex16(std::uint64_t v) {
  std::string s;
  s.reserve(16);
  append_hex16(s, v);
  return s;
}

// gt(a, b) for two 16-digit hex strings, exact (Lua numbers are doubles, so each half is read
// separately; string comparison in Lua follows the server's locale, so it is not used).
inline constexpr const char* kLuaHexGreater = R"lua(
local function hex_gt(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if ah ~= bh then return ah > bh end
  return tonumber(string.sub(a, 9, 16), 16) > tonumber(string.sub(b, 9, 16), 16)
end
)lua";

}  // namespace imd::redis
