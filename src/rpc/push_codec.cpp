#include "rpc/push_codec.hpp"

#include <string>
#include <type_traits>
#include <variant>

namespace imd::rpc {
namespace {

void encode_conv(const imd::ConvKey& in, ConvKey& out) {
  out.set_kind(in.kind == imd::ConvKind::dm ? CONV_KIND_DM : CONV_KIND_CHANNEL);
  out.set_a(in.a);
  out.set_b(in.b);
}

rpc::Errc encode_errc(imd::Errc e) {
  switch (e) {
    case imd::Errc::invalid_argument:
      return ERRC_INVALID_ARGUMENT;
    case imd::Errc::unauthenticated:
      return ERRC_UNAUTHENTICATED;
    case imd::Errc::forbidden:
      return ERRC_FORBIDDEN;
    case imd::Errc::not_found:
      return ERRC_NOT_FOUND;
    case imd::Errc::conflict:
      return ERRC_CONFLICT;
    case imd::Errc::too_many_requests:
      return ERRC_TOO_MANY_REQUESTS;
    case imd::Errc::payload_too_large:
      return ERRC_PAYLOAD_TOO_LARGE;
    case imd::Errc::unavailable:
      return ERRC_UNAVAILABLE;
    case imd::Errc::internal:
      return ERRC_INTERNAL;
  }
  return ERRC_INTERNAL;
}

Error invalid(std::string what) {
  return make_error(imd::Errc::invalid_argument, std::move(what));
}

Result<imd::ConvKey> decode_conv(bool present, const ConvKey& in) {
  if (!present) return invalid("conv missing");
  switch (in.kind()) {
    case CONV_KIND_CHANNEL:
      return imd::ConvKey{imd::ConvKind::channel, in.a(), in.b()};
    case CONV_KIND_DM:
      return imd::ConvKey{imd::ConvKind::dm, in.a(), in.b()};
    default:
      return invalid("unknown conv kind " + std::to_string(in.kind()));
  }
}

Result<imd::Errc> decode_errc(int e) {
  switch (e) {
    case ERRC_INVALID_ARGUMENT:
      return imd::Errc::invalid_argument;
    case ERRC_UNAUTHENTICATED:
      return imd::Errc::unauthenticated;
    case ERRC_FORBIDDEN:
      return imd::Errc::forbidden;
    case ERRC_NOT_FOUND:
      return imd::Errc::not_found;
    case ERRC_CONFLICT:
      return imd::Errc::conflict;
    case ERRC_TOO_MANY_REQUESTS:
      return imd::Errc::too_many_requests;
    case ERRC_PAYLOAD_TOO_LARGE:
      return imd::Errc::payload_too_large;
    case ERRC_UNAVAILABLE:
      return imd::Errc::unavailable;
    case ERRC_INTERNAL:
      return imd::Errc::internal;
    default:
      return invalid("unknown error code " + std::to_string(e));
  }
}

Result<imd::Change> decode_change(std::uint32_t c) {
  if (c > static_cast<std::uint32_t>(imd::Change::react)) {
    return invalid("unknown change kind " + std::to_string(c));
  }
  return static_cast<imd::Change>(c);
}

Result<void> check_text(const std::string& s, std::size_t max, const char* name) {
  if (s.size() > max) return invalid(std::string(name) + " longer than limit");
  return {};
}

}  // namespace

void encode_event(const imd::Event& event, Delivery& out) {
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, imd::MessageEvent>) {
          Message& m = *out.mutable_message();
          m.set_id(e.msg.id);
          encode_conv(e.msg.conv, *m.mutable_conv());
          m.set_seq(e.msg.seq);
          m.set_from(e.msg.from);
          m.set_to(e.msg.to);
          m.set_type(e.msg.type);
          m.set_body(e.msg.body);
          m.set_created_at(e.msg.created_at);
          m.set_cid(e.msg.cid);
          m.set_reply_to(e.msg.reply_to);
          m.set_rev(e.msg.rev);
          m.set_change_kind(static_cast<std::uint32_t>(e.msg.change));
          m.set_edited_at(e.msg.edited_at);
          m.set_deleted(e.msg.deleted);
          m.set_changed(e.changed);
          for (const auto& r : e.msg.reactions) {
            Reaction& out_r = *m.add_reactions();
            out_r.set_emoji(r.emoji);
            for (Id u : r.users) out_r.add_users(u);
          }
        } else if constexpr (std::is_same_v<T, imd::SentEvent>) {
          SentEvent& s = *out.mutable_sent();
          s.set_cid(e.cid);
          s.set_id(e.id);
          s.set_seq(e.seq);
          encode_conv(e.conv, *s.mutable_conv());
          s.set_sender(e.sender);
          s.set_created_at(e.created_at);
        } else if constexpr (std::is_same_v<T, imd::SendFailedEvent>) {
          SendFailedEvent& f = *out.mutable_send_failed();
          f.set_cid(e.cid);
          f.set_code(encode_errc(e.error.code));
          f.set_message(e.error.message);
          f.set_change_kind(static_cast<std::uint32_t>(e.change));
          f.set_id(e.id);
        } else if constexpr (std::is_same_v<T, imd::RemovedEvent>) {
          RemovedEvent& r = *out.mutable_removed();
          r.set_space_id(e.space_id);
          r.set_reason(e.reason);
          r.set_channel_id(e.channel_id);
        } else if constexpr (std::is_same_v<T, imd::PresenceEvent>) {
          PresenceEvent& p = *out.mutable_presence();
          p.set_user_id(e.user_id);
          p.set_status(static_cast<std::uint32_t>(e.status));
        } else if constexpr (std::is_same_v<T, imd::TypingEvent>) {
          TypingEvent& t = *out.mutable_typing();
          t.set_user_id(e.user_id);
          encode_conv(e.conv, *t.mutable_conv());
        } else {
          static_assert(std::is_same_v<T, imd::ReadEvent>);
          ReadEvent& r = *out.mutable_read();
          r.set_user_id(e.user_id);
          encode_conv(e.conv, *r.mutable_conv());
          r.set_seq(e.seq);
        }
      },
      event);
}

void encode_batch(const std::vector<imd::Push>& pushes, std::uint32_t node, PushBatch& out) {
  for (const auto& p : pushes) {
    if (!p.event) continue;
    if (!p.users.empty()) {
      Delivery& u = *out.add_deliveries();
      u.mutable_users()->Add(p.users.begin(), p.users.end());
      if (p.except.node == node) u.set_except_conn(p.except.conn);
      encode_event(*p.event, u);
      continue;
    }
    Delivery* d = nullptr;
    for (imd::ConnRef ref : p.targets) {
      if (ref.node != node) continue;
      if (!d) d = out.add_deliveries();
      d->add_conns(ref.conn);
    }
    if (d) encode_event(*p.event, *d);
  }
}

Result<std::shared_ptr<const imd::Event>> decode_event(const Delivery& in,
                                                       const DecodeLimits& limits) {
  switch (in.event_case()) {
    case Delivery::kMessage: {
      const Message& m = in.message();
      auto conv = decode_conv(m.has_conv(), m.conv());
      if (!conv) return conv.error();
      if (m.body().size() > limits.max_body_bytes) return invalid("body longer than limit");
      IMD_TRY(check_text(m.type(), limits.max_text_bytes, "type"));
      IMD_TRY(check_text(m.cid(), limits.max_text_bytes, "cid"));
      imd::MessageEvent e;
      e.msg.id = m.id();
      e.msg.conv = *conv;
      e.msg.seq = m.seq();
      e.msg.from = m.from();
      e.msg.to = m.to();
      e.msg.type = m.type();
      e.msg.body = m.body();
      e.msg.created_at = m.created_at();
      e.msg.cid = m.cid();
      auto change = decode_change(m.change_kind());
      if (!change) return change.error();
      e.msg.reply_to = m.reply_to();
      e.msg.rev = m.rev();
      e.msg.change = *change;
      e.msg.edited_at = m.edited_at();
      e.msg.deleted = m.deleted();
      e.changed = m.changed();
      if (static_cast<std::size_t>(m.reactions_size()) > imd::kMaxReactionEmoji) {
        return invalid("too many reactions");
      }
      for (const Reaction& r : m.reactions()) {
        IMD_TRY(check_text(r.emoji(), imd::kMaxEmojiBytes, "emoji"));
        if (static_cast<std::size_t>(r.users_size()) > imd::kMaxReactionUsers) {
          return invalid("too many users of a reaction");
        }
        e.msg.reactions.push_back(imd::Reaction{r.emoji(), {r.users().begin(), r.users().end()}});
      }
      return std::make_shared<const imd::Event>(std::move(e));
    }
    case Delivery::kSent: {
      const SentEvent& s = in.sent();
      auto conv = decode_conv(s.has_conv(), s.conv());
      if (!conv) return conv.error();
      IMD_TRY(check_text(s.cid(), limits.max_text_bytes, "cid"));
      return std::make_shared<const imd::Event>(
          imd::SentEvent{s.cid(), s.id(), s.seq(), *conv, s.sender(), s.created_at()});
    }
    case Delivery::kSendFailed: {
      const SendFailedEvent& f = in.send_failed();
      auto code = decode_errc(f.code());
      if (!code) return code.error();
      IMD_TRY(check_text(f.cid(), limits.max_text_bytes, "cid"));
      IMD_TRY(check_text(f.message(), limits.max_text_bytes, "error message"));
      auto change = decode_change(f.change_kind());
      if (!change) return change.error();
      return std::make_shared<const imd::Event>(
          imd::SendFailedEvent{f.cid(), imd::Error{*code, f.message()}, *change, f.id()});
    }
    case Delivery::kRead: {
      const ReadEvent& r = in.read();
      auto conv = decode_conv(r.has_conv(), r.conv());
      if (!conv) return conv.error();
      return std::make_shared<const imd::Event>(imd::ReadEvent{r.user_id(), *conv, r.seq()});
    }
    case Delivery::kTyping: {
      const TypingEvent& t = in.typing();
      auto conv = decode_conv(t.has_conv(), t.conv());
      if (!conv) return conv.error();
      return std::make_shared<const imd::Event>(imd::TypingEvent{t.user_id(), *conv});
    }
    case Delivery::kPresence: {
      const PresenceEvent& p = in.presence();
      if (p.status() > static_cast<std::uint32_t>(imd::PresenceStatus::away)) {
        return invalid("presence status out of range");
      }
      return std::make_shared<const imd::Event>(
          imd::PresenceEvent{p.user_id(), static_cast<imd::PresenceStatus>(p.status())});
    }
    case Delivery::kRemoved: {
      const RemovedEvent& r = in.removed();
      IMD_TRY(check_text(r.reason(), limits.max_text_bytes, "reason"));
      return std::make_shared<const imd::Event>(
          imd::RemovedEvent{r.space_id(), r.reason(), r.channel_id()});
    }
    case Delivery::EVENT_NOT_SET:
      break;
  }
  return invalid("delivery without a known event");
}

Result<imd::Push> decode_delivery(const Delivery& in, std::uint32_t node,
                                  const DecodeLimits& limits) {
  if (in.conns_size() == 0 && in.users_size() == 0) return invalid("delivery without targets");
  if (in.conns_size() != 0 && in.users_size() != 0) {
    return invalid("delivery with both connections and users");
  }
  if (static_cast<std::size_t>(in.conns_size()) > limits.max_conns) {
    return invalid("delivery with too many targets");
  }
  if (static_cast<std::size_t>(in.users_size()) > limits.max_users) {
    return invalid("delivery with too many users");
  }
  for (std::uint64_t user : in.users()) {
    if (user == 0) return invalid("delivery to user 0");
  }
  auto event = decode_event(in, limits);
  if (!event) return event.error();
  imd::Push p;
  p.targets.reserve(static_cast<std::size_t>(in.conns_size()));
  for (std::uint64_t conn : in.conns()) p.targets.push_back(imd::ConnRef{node, conn});
  p.users.assign(in.users().begin(), in.users().end());
  if (in.except_conn() != 0) p.except = imd::ConnRef{node, in.except_conn()};
  p.event = std::move(*event);
  return p;
}

DecodedBatch decode_batch(const PushBatch& in, std::uint32_t node, const DecodeLimits& limits) {
  DecodedBatch out;
  out.pushes.reserve(static_cast<std::size_t>(in.deliveries_size()));
  for (const Delivery& d : in.deliveries()) {
    auto p = decode_delivery(d, node, limits);
    if (p) {
      out.pushes.push_back(std::move(*p));
    } else {
      if (out.rejected++ == 0) out.first_error = p.error();
    }
  }
  return out;
}

bool misread_by_unversioned_gateways(const imd::Event& event) {
  const auto* removed = std::get_if<imd::RemovedEvent>(&event);
  return removed != nullptr && removed->channel_id != 0;
}

std::size_t estimated_bytes(const imd::Event& event) {
  constexpr std::size_t kFixed = 64;  // ids, seqs, conv, tags
  return std::visit(
      [](const auto& e) -> std::size_t {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, imd::MessageEvent>) {
          return kFixed + e.msg.type.size() + e.msg.body.size() + e.msg.cid.size();
        } else if constexpr (std::is_same_v<T, imd::SentEvent>) {
          return kFixed + e.cid.size();
        } else if constexpr (std::is_same_v<T, imd::SendFailedEvent>) {
          return kFixed + e.cid.size() + e.error.message.size();
        } else {
          return kFixed;
        }
      },
      event);
}

}  // namespace imd::rpc
