// Helpers for reading untrusted JSON objects with boost::json: typed field access with
// size limits, and id <-> string conversion (ids are strings on the wire because JavaScript
// numbers cannot hold 64 bits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "common/error.hpp"

namespace imd::json {

// Parses `text` into an object; invalid_argument for malformed JSON or a non-object.
Result<boost::json::object> parse_object(std::string_view text);

// Reads a required string field of 1..max_len bytes of valid UTF-8.
Result<std::string> required_string(const boost::json::object& o, std::string_view key,
                                    std::size_t max_len, std::size_t min_len = 1);
// Reads an optional string field (absent or null -> nullopt).
Result<std::optional<std::string>> optional_string(const boost::json::object& o,
                                                   std::string_view key, std::size_t max_len,
                                                   std::size_t min_len = 0);
// Reads an id given as a decimal string (or, leniently, a non-negative integer).
Result<std::uint64_t> required_id(const boost::json::object& o, std::string_view key);
Result<std::optional<std::uint64_t>> optional_id(const boost::json::object& o,
                                                 std::string_view key);
// Reads a non-negative integer (number or decimal string).
Result<std::optional<std::uint64_t>> optional_uint(const boost::json::object& o,
                                                   std::string_view key);

std::optional<std::uint64_t> parse_uint(std::string_view text);
std::string id_str(std::uint64_t id);

bool valid_utf8(std::string_view s);
// Unicode code points of valid UTF-8 text.
std::size_t utf8_length(std::string_view s);

}  // namespace imd::json
