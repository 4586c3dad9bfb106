#include "net/ws_frame.hpp"

#include <random>

#include <gtest/gtest.h>

namespace imd::net::ws {
namespace {

// A client frame: masked with `key`, as a browser sends it.
std::string client_frame(std::uint8_t first, std::string_view payload,
                         const unsigned char key[4] = nullptr) {
  static const unsigned char kKey[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (!key) key = kKey;
  std::string out;
  out.push_back(static_cast<char>(first));
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
  }
  out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  }
  return out;
}

TEST(WsFrame, ParsesTheRfcMaskedHelloExample) {
  // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
  const unsigned char raw[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  std::string buf(reinterpret_cast<const char*>(raw), sizeof raw);
  auto r = parse_frame(buf.data(), buf.size(), 1024);
  ASSERT_EQ(r.status, ParseStatus::frame);
  EXPECT_EQ(r.frame.opcode, Opcode::text);
  EXPECT_TRUE(r.frame.fin);
  EXPECT_EQ(r.frame.payload, "Hello");
  EXPECT_EQ(r.frame.size, sizeof raw);
}

TEST(WsFrame, EveryLengthEncodingRoundTripsAndEveryPrefixNeedsMore) {
  std::mt19937 rng(7);
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 125u, 126u, 127u, 1000u, 65535u, 65536u, 70000u}) {
    std::string payload(len, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    unsigned char key[4] = {static_cast<unsigned char>(rng()), static_cast<unsigned char>(rng()),
                            static_cast<unsigned char>(rng()), static_cast<unsigned char>(rng())};
    const std::string frame = client_frame(0x82, payload, key);
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, frame.size() / 2, frame.size() - 1}) {
      if (cut >= frame.size()) continue;
      std::string part = frame.substr(0, cut);
      EXPECT_EQ(parse_frame(part.data(), part.size(), 1 << 20).status, ParseStatus::need_more)
          << "len " << len << " cut " << cut;
    }
    std::string buf = frame + "trailing";
    auto r = parse_frame(buf.data(), buf.size(), 1 << 20);
    ASSERT_EQ(r.status, ParseStatus::frame) << len;
    EXPECT_EQ(r.frame.opcode, Opcode::binary);
    EXPECT_EQ(r.frame.payload, payload);
    EXPECT_EQ(r.frame.size, frame.size());
  }
}

TEST(WsFrame, FragmentsAndControlFramesBetweenThem) {
  std::string buf = client_frame(0x01, "{\"op\":") + client_frame(0x89, "are you there") +
                    client_frame(0x80, "\"ping\"}");
  std::size_t off = 0;
  auto a = parse_frame(buf.data(), buf.size(), 100);
  ASSERT_EQ(a.status, ParseStatus::frame);
  EXPECT_EQ(a.frame.opcode, Opcode::text);
  EXPECT_FALSE(a.frame.fin);
  EXPECT_EQ(a.frame.payload, "{\"op\":");
  off += a.frame.size;
  auto b = parse_frame(buf.data() + off, buf.size() - off, 100);
  ASSERT_EQ(b.status, ParseStatus::frame);
  EXPECT_EQ(b.frame.opcode, Opcode::ping);
  EXPECT_EQ(b.frame.payload, "are you there");
  off += b.frame.size;
  auto c = parse_frame(buf.data() + off, buf.size() - off, 100);
  ASSERT_EQ(c.status, ParseStatus::frame);
  EXPECT_EQ(c.frame.opcode, Opcode::continuation);
  EXPECT_TRUE(c.frame.fin);
  EXPECT_EQ(c.frame.payload, "\"ping\"}");
  EXPECT_EQ(off + c.frame.size, buf.size());
}

TEST(WsFrame, ProtocolViolationsAreErrors) {
  auto status = [](std::string f, std::size_t max = 1000) {
    auto r = parse_frame(f.data(), f.size(), max);
    return std::pair{r.status, r.error};
  };
  const auto protocol = std::pair{ParseStatus::error, CloseCode::protocol_error};
  // Unmasked client frame.
  EXPECT_EQ(status(std::string("\x81\x02hi", 4)), protocol);
  // Reserved bits (no extension was negotiated).
  EXPECT_EQ(status(client_frame(0xC1, "x")), protocol);
  EXPECT_EQ(status(client_frame(0xA1, "x")), protocol);
  // Unknown opcodes.
  EXPECT_EQ(status(client_frame(0x83, "x")), protocol);
  EXPECT_EQ(status(client_frame(0x8B, "x")), protocol);
  // Fragmented or long control frames.
  EXPECT_EQ(status(client_frame(0x09, "x")), protocol);
  EXPECT_EQ(status(client_frame(0x89, std::string(126, 'p'))), protocol);
  // Over the size limit: 1009, decided from the header alone.
  auto big = client_frame(0x81, std::string(2000, 'b')).substr(0, 8);
  EXPECT_EQ(status(big, 1000), (std::pair{ParseStatus::error, CloseCode::too_big}));
  // A length that does not use the shortest encoding.
  std::string nonminimal("\x81\xFE\x00\x05", 4);
  nonminimal += std::string("\0\0\0\0hello", 9);
  EXPECT_EQ(status(nonminimal), protocol);
}

TEST(WsFrame, ServerHeadersUseTheShortestLength) {
  char h[10];
  EXPECT_EQ(encode_header(Opcode::text, 5, h), 2u);
  EXPECT_EQ(static_cast<unsigned char>(h[0]), 0x81);
  EXPECT_EQ(h[1], 5);
  EXPECT_EQ(encode_header(Opcode::text, 126, h), 4u);
  EXPECT_EQ(static_cast<unsigned char>(h[1]), 126);
  EXPECT_EQ(encode_header(Opcode::text, 0xFFFF, h), 4u);
  EXPECT_EQ(encode_header(Opcode::text, 0x10000, h), 10u);
  EXPECT_EQ(static_cast<unsigned char>(h[1]), 127);
  EXPECT_EQ(h[7], 1);  // 0x10000 big-endian: byte 5 of the 8-byte length
  auto f = encode_frame(Opcode::close, close_payload(CloseCode::too_big, "frame too big"));
  EXPECT_EQ(f.substr(0, 4), std::string("\x88\x0F\x03\xF1", 4));
  EXPECT_EQ(f.substr(4), "frame too big");
}

TEST(WsFrame, AcceptKeyIsTheRfcExample) {
  // RFC 6455 §1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZ*=="));
  EXPECT_FALSE(valid_client_key(""));
}

TEST(WsFrame, Utf8Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(valid_utf8("h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80"));
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));   // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(valid_utf8("abc\x80"));           // stray continuation
  EXPECT_FALSE(valid_utf8("abcdefgh\xE4\xBD"));  // truncated at the end
  EXPECT_FALSE(valid_utf8("\xFF"));
}

}  // namespace
}  // namespace imd::net::ws
