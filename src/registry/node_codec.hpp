// The stored form of a NodeInfo under the registry's `nodes/<id>` key: a small JSON object
// {"id":7,"roles":["gateway"],"push_address":"10.0.0.5:7001"}. Pure functions, thread-safe.
// Decoding treats the value as untrusted (anyone with write access to etcd can put anything):
// bounded sizes, a closed set of fields, invalid_argument for anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "domain/ports/registry.hpp"

namespace imd {

inline constexpr std::size_t kMaxNodeValueBytes = 4096;
inline constexpr std::size_t kMaxNodeRoles = 8;
inline constexpr std::size_t kMaxRoleBytes = 32;
inline constexpr std::size_t kMaxPushAddressBytes = 255;

std::string encode_node(const NodeInfo& node);
Result<NodeInfo> decode_node(std::string_view value);

// A decimal id in [0, 2^32) with no sign, spaces or leading zeros ("0" itself is fine):
// the last piece of a registry key such as `nodes/17`.
std::optional<std::uint32_t> parse_registry_id(std::string_view text);

}  // namespace imd
