#include "queue_nats/message_codec.hpp"

#include <array>
#include <cstring>

namespace imd::queue_nats {
namespace {

constexpr std::array<char, 2> kMagic{'I', 'Q'};

class Writer {
 public:
  explicit Writer(std::size_t reserve) { out_.reserve(reserve); }
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(std::uint8_t& v) {
    if (in_.size() < 1) return false;
    v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (in_.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (in_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || n > in_.size()) return false;
    s.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// A field added to Message or NewMessage breaks the build here: add it to the record (and
// bump kCodecVersion, keeping the old version decodable while queues drain).
// rev, change, edited_at, deleted and reactions are the store's output, never in a queued
// record.
[[maybe_unused]] void all_fields_are_encoded(const NewMessage& n) {
  [[maybe_unused]] const auto& [id, conv, seq, from, to, type, body, created_at, cid, reply_to, rev,
                                change, edited_at, deleted, reactions] = n.msg;
  // mentions: set by the consumer from the body, after decoding.
  [[maybe_unused]] const auto& [msg, origin, attempt, change_kind, change_id, react_on, mentions] =
      n;
}

Error bad(std::string why) {
  return make_error(Errc::invalid_argument, "queue record: " + std::move(why));
}

}  // namespace

std::string encode_new_message(const NewMessage& m) {
  const Message& g = m.msg;
  Writer w(3 + 10 * 8 + 3 + 3 * 4 + 4 + g.type.size() + g.body.size() + g.cid.size());
  w.u8(static_cast<std::uint8_t>(kMagic[0]));
  w.u8(static_cast<std::uint8_t>(kMagic[1]));
  w.u8(kCodecVersion);
  w.u64(g.id);
  w.u8(static_cast<std::uint8_t>(g.conv.kind));
  w.u64(g.conv.a);
  w.u64(g.conv.b);
  w.u64(g.seq);
  w.u64(g.from);
  w.u64(g.to);
  w.u64(static_cast<std::uint64_t>(g.created_at));
  w.str(g.type);
  w.str(g.body);
  w.str(g.cid);
  w.u32(m.origin.node);
  w.u64(m.origin.conn);
  w.u64(g.reply_to);
  w.u8(static_cast<std::uint8_t>(m.change));
  w.u64(m.change_id);
  w.u8(m.react_on ? 1 : 0);
  return w.take();
}

Result<NewMessage> decode_new_message(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t m0 = 0, m1 = 0, version = 0;
  if (!r.u8(m0) || !r.u8(m1) || m0 != static_cast<std::uint8_t>(kMagic[0]) ||
      m1 != static_cast<std::uint8_t>(kMagic[1])) {
    return bad("bad magic");
  }
  if (!r.u8(version)) return bad("truncated header");
  if (version != kCodecVersion && version != 1) {
    return bad("unknown version " + std::to_string(version));
  }

  NewMessage m;
  Message& g = m.msg;
  std::uint8_t kind = 0;
  std::uint64_t created = 0;
  if (!r.u64(g.id) || !r.u8(kind) || !r.u64(g.conv.a) || !r.u64(g.conv.b) || !r.u64(g.seq) ||
      !r.u64(g.from) || !r.u64(g.to) || !r.u64(created)) {
    return bad("truncated fields");
  }
  if (kind != static_cast<std::uint8_t>(ConvKind::channel) &&
      kind != static_cast<std::uint8_t>(ConvKind::dm)) {
    return bad("unknown conversation kind " + std::to_string(kind));
  }
  g.conv.kind = static_cast<ConvKind>(kind);
  g.created_at = static_cast<Millis>(created);
  if (!r.str(g.type) || !r.str(g.body) || !r.str(g.cid)) return bad("truncated string");
  if (!r.u32(m.origin.node) || !r.u64(m.origin.conn)) return bad("truncated origin");
  if (version >= 2) {
    std::uint8_t change = 0;
    std::uint8_t on = 0;
    if (!r.u64(g.reply_to) || !r.u8(change) || !r.u64(m.change_id) || !r.u8(on)) {
      return bad("truncated change fields");
    }
    if (on > 1) return bad("react_on is not 0 or 1");
    m.react_on = on == 1;
    if (change > static_cast<std::uint8_t>(Change::react)) {
      return bad("unknown change kind " + std::to_string(change));
    }
    m.change = static_cast<Change>(change);
  }
  if (!r.done()) return bad("trailing bytes");
  return m;
}

std::uint32_t partition_of(const ConvKey& conv, std::uint32_t partitions) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(static_cast<std::uint8_t>(conv.kind), 1);
  mix(conv.a, 8);
  mix(conv.b, 8);
  return static_cast<std::uint32_t>(h % partitions);
}

}  // namespace imd::queue_nats
