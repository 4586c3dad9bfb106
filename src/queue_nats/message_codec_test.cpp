#include "queue_nats/message_codec.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace imd::queue_nats {
namespace {

NewMessage sample() {
  NewMessage m;
  m.msg.id = 0x0123456789abcdefull;
  m.msg.conv = ConvKey::dm(42, 7);
  m.msg.seq = 99;
  m.msg.from = 42;
  m.msg.to = 7;
  m.msg.type = "text";
  m.msg.body = std::string("hello\0world\xff", 12);
  m.msg.created_at = -5;  // any int64 survives
  m.msg.cid = "c-1";
  m.msg.reply_to = 77;
  m.origin = ConnRef{3, 0xfffffffffffffffeull};
  m.attempt = 4;
  m.change = Change::erase;
  m.change_id = 0xfedcba9876543210ull;
  m.react_on = true;
  return m;
}

TEST(CodecUnit, RoundTripsEveryField) {
  NewMessage m = sample();
  auto back = decode_new_message(encode_new_message(m));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->msg.id, m.msg.id);
  EXPECT_EQ(back->msg.conv, m.msg.conv);
  EXPECT_EQ(back->msg.seq, m.msg.seq);
  EXPECT_EQ(back->msg.from, m.msg.from);
  EXPECT_EQ(back->msg.to, m.msg.to);
  EXPECT_EQ(back->msg.type, m.msg.type);
  EXPECT_EQ(back->msg.body, m.msg.body);
  EXPECT_EQ(back->msg.created_at, m.msg.created_at);
  EXPECT_EQ(back->msg.cid, m.msg.cid);
  EXPECT_EQ(back->origin, m.origin);
  EXPECT_EQ(back->attempt, 1u);  // not encoded: the broker's delivery count sets it
  EXPECT_EQ(back->msg.reply_to, 77u);
  EXPECT_EQ(back->change, Change::erase);
  EXPECT_EQ(back->change_id, m.change_id);
  EXPECT_TRUE(back->react_on);

  NewMessage channel;
  channel.msg.conv = ConvKey::channel(5);
  auto c = decode_new_message(encode_new_message(channel));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->msg.conv, channel.msg.conv);
  EXPECT_TRUE(c->msg.body.empty());
}

TEST(CodecUnit, EveryTruncationFails) {
  std::string bytes = encode_new_message(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_new_message(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
}

TEST(CodecUnit, RejectsBadHeaderKindLengthsAndTrailingBytes) {
  std::string good = encode_new_message(sample());
  auto fails = [](std::string b) { return !decode_new_message(b).ok(); };

  std::string magic = good;
  magic[0] = 'X';
  EXPECT_TRUE(fails(magic));
  std::string version = good;
  version[2] = 3;
  EXPECT_TRUE(fails(version));
  std::string change = good;
  change[good.size() - 10] = 9;  // the change kind, before change_id and react_on
  EXPECT_TRUE(fails(change));
  std::string kind = good;
  kind[3 + 8] = 9;  // after magic, version, id
  EXPECT_TRUE(fails(kind));
  std::string trailing = good + "x";
  EXPECT_TRUE(fails(trailing));
  // The type's length claims 4 GiB.
  std::string huge = good;
  std::size_t type_len_at = 3 + 8 + 1 + 8 * 6;
  for (int i = 0; i < 4; ++i) huge[type_len_at + i] = '\xff';
  EXPECT_TRUE(fails(huge));
  EXPECT_TRUE(fails(""));
  EXPECT_TRUE(fails("garbage that is not a record at all"));
}

// A version 1 record (queued by a process of the previous release) is a plain send.
TEST(CodecUnit, DecodesVersionOneAsASend) {
  std::string v1 = encode_new_message(sample());
  v1.resize(v1.size() - (8 + 1 + 8 + 1));
  v1[2] = 1;
  auto back = decode_new_message(v1);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->msg.body, sample().msg.body);
  EXPECT_EQ(back->change, Change::none);
  EXPECT_EQ(back->msg.reply_to, 0u);
  v1[2] = 2;  // the same bytes claiming version 2 lack its fields
  EXPECT_FALSE(decode_new_message(v1));
}

TEST(CodecUnit, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  std::string good = encode_new_message(sample());
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b;
    if (i % 2 == 0) {
      b.resize(rng() % 128);
      for (char& c : b) c = static_cast<char>(rng());
    } else {  // flip a few bytes of a valid record
      b = good;
      for (int k = 0; k < 3; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    }
    auto r = decode_new_message(b);
    if (r) ++decoded;  // a flip inside a fixed field still decodes; that is fine
  }
  SUCCEED() << decoded << " mutated records decoded";
}

TEST(CodecUnit, PartitionIsStableAndSpread) {
  // Fixed values: every process and build must agree (changing them moves conversations).
  EXPECT_EQ(partition_of(ConvKey::channel(1), 16), 13u);
  EXPECT_EQ(partition_of(ConvKey::dm(1, 2), 16), 6u);
  EXPECT_EQ(partition_of(ConvKey::channel(123456789), 16), 4u);
  EXPECT_EQ(partition_of(ConvKey::dm(42, 4242), 1024), 813u);
  EXPECT_EQ(partition_of(ConvKey::dm(1, 2), 16), partition_of(ConvKey::dm(2, 1), 16));
  EXPECT_EQ(partition_of(ConvKey::channel(1), 1), 0u);
  std::set<std::uint32_t> seen;
  for (Id c = 1; c <= 200; ++c) {
    auto p = partition_of(ConvKey::channel(c), 16);
    ASSERT_LT(p, 16u);
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), 16u);
}

}  // namespace
}  // namespace imd::queue_nats
