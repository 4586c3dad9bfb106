// Conversion between the domain's Push/Event and the wire types of proto/imd/rpc/push.proto.
// Internal to src/rpc (it includes the generated protobuf headers); the public headers are
// push_server.hpp and remote_pusher.hpp.
//
// Encoding never fails. Decoding validates each Delivery on its own: an empty oneof, an
// enum value this build does not know, no targets, or a text field beyond DecodeLimits make
// that delivery invalid. What to do with invalid deliveries is the caller's policy
// (PushServer skips them, see README.md). Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/error.hpp"
#include "domain/ports/pusher.hpp"
#include "imd/rpc/push.pb.h"

namespace imd::rpc {

// The gRPC method of imd.rpc.Gateway/Push as its metrics name it
// (imd_rpc_client_call_seconds{method}, imd_rpc_server_call_seconds{method}).
inline constexpr const char* kPushMethod = "Push";

struct DecodeLimits {
  std::size_t max_body_bytes = 64 * 1024;  // message body; >= limits.max_message_bytes
  std::size_t max_text_bytes = 4 * 1024;   // type, cid, error message
  std::size_t max_conns = 100000;          // targets of one delivery
  std::size_t max_users = 100000;          // users of a user-addressed delivery
};

// Fills `out` (conns untouched) with `event`.
void encode_event(const imd::Event& event, Delivery& out);
// One Delivery per Push that has targets on `node`, carrying only those conn ids; a
// user-addressed Push (Push::users) goes to every node, with except_conn when it is on `node`.
void encode_batch(const std::vector<imd::Push>& pushes, std::uint32_t node, PushBatch& out);

Result<std::shared_ptr<const imd::Event>> decode_event(const Delivery& in,
                                                       const DecodeLimits& limits);
// One Push per Delivery, targets ConnRef{node, conn}, or users and except ConnRef{node,
// except_conn}; checks the conns and users too (not both, not neither, no user id 0).
Result<imd::Push> decode_delivery(const Delivery& in, std::uint32_t node,
                                  const DecodeLimits& limits);

struct DecodedBatch {
  std::vector<imd::Push> pushes;  // the valid deliveries, in batch order
  std::size_t rejected = 0;
  Error first_error{imd::Errc::invalid_argument, {}};  // meaningful when rejected > 0
};
DecodedBatch decode_batch(const PushBatch& in, std::uint32_t node, const DecodeLimits& limits);

// True for an event that a gateway registering no version (a build from before versions, hence
// before channel removals) would misread: a RemovedEvent with a channel_id, which such a
// gateway decodes without it and tells the client as a removal from the whole space.
// RemotePusher sends these only to gateways that registered a version (docs/operations.md,
// "Versions and rolling upgrades").
bool misread_by_unversioned_gateways(const imd::Event& event);

// Rough wire size of an event (for byte bounds; not exact).
std::size_t estimated_bytes(const imd::Event& event);

}  // namespace imd::rpc
