// The wire form of a NewMessage on the NATS queue: a small versioned binary record.
//
//   "IQ" (2 bytes), version (1 byte, = 2), then little-endian fields:
//   u64 id, u8 conv kind, u64 conv a, u64 conv b, u64 seq, u64 from, u64 to, i64 created_at,
//   u32 length + bytes for type, body and cid, u32 origin node, u64 origin conn,
//   u64 reply_to, u8 change (imd::Change), u64 change_id, u8 react_on (0 or 1).
// Version 1 (the record without the last three) is still decoded, as a plain send.
//
// `attempt` is not encoded: it comes from the broker's delivery count. Decoding checks every
// length against what is left, the conversation kind, and that nothing trails the record, so
// hostile bytes fail with an Error (invalid_argument), never with a crash or an exception.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd::queue_nats {

inline constexpr std::uint8_t kCodecVersion = 2;

std::string encode_new_message(const NewMessage& m);
Result<NewMessage> decode_new_message(std::string_view bytes);

// The partition of a conversation: FNV-1a over (kind, a, b) in a fixed byte order, so every
// process and every build agrees. `partitions` must be > 0.
std::uint32_t partition_of(const ConvKey& conv, std::uint32_t partitions);

}  // namespace imd::queue_nats
