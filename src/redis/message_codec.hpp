// The stored form of a Message in Redis (the inbox keeps whole messages, so listing it needs no
// Store): a JSON object with short field names and a version, readable with redis-cli.
// Ids are JSON integers (uint64, exact); strings are stored as given.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd::redis {

std::string encode_message(const Message& m);
// internal when `text` is not an encoded message (corrupt or of an unknown version).
Result<Message> decode_message(std::string_view text);

}  // namespace imd::redis
