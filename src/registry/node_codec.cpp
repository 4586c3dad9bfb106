#include "registry/node_codec.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "common/json.hpp"

namespace imd {

namespace bj = boost::json;

std::string encode_node(const NodeInfo& node) {
  bj::object o;
  o["id"] = node.id;
  bj::array roles;
  for (const auto& r : node.roles) roles.emplace_back(r);
  o["roles"] = std::move(roles);
  o["push_address"] = node.push_address;
  return bj::serialize(o);
}

Result<NodeInfo> decode_node(std::string_view value) {
  if (value.size() > kMaxNodeValueBytes) {
    return make_error(Errc::invalid_argument, "node entry is too large");
  }
  auto parsed = json::parse_object(value);
  if (!parsed) return parsed.error();
  const bj::object& o = *parsed;
  for (const auto& field : o) {
    if (field.key() != "id" && field.key() != "roles" && field.key() != "push_address") {
      return make_error(Errc::invalid_argument, "node entry has an unknown field");
    }
  }
  NodeInfo node;
  auto id = json::optional_uint(o, "id");
  if (!id) return id.error();
  if (!id->has_value() || **id > 0xffffffffULL) {
    return make_error(Errc::invalid_argument, "node entry needs an id below 2^32");
  }
  node.id = static_cast<std::uint32_t>(**id);

  if (auto it = o.find("roles"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_array()) return make_error(Errc::invalid_argument, "roles must be a list");
    const auto& roles = it->value().get_array();
    if (roles.size() > kMaxNodeRoles) {
      return make_error(Errc::invalid_argument, "too many roles");
    }
    for (const auto& r : roles) {
      if (!r.is_string() || r.get_string().empty() || r.get_string().size() > kMaxRoleBytes ||
          !json::valid_utf8(r.get_string())) {
        return make_error(Errc::invalid_argument, "a role must be a short non-empty string");
      }
      node.roles.emplace_back(r.get_string());
    }
  }
  auto addr = json::optional_string(o, "push_address", kMaxPushAddressBytes);
  if (!addr) return addr.error();
  if (addr->has_value()) node.push_address = std::move(**addr);
  return node;
}

std::optional<std::uint32_t> parse_registry_id(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > 0xffffffffULL) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

}  // namespace imd
