#include "domain/file_type.hpp"

#include <gtest/gtest.h>

namespace imd {
namespace {

std::span<const char> bytes(std::string_view s) {
  return {s.data(), s.size()};
}

TEST(SniffType, MagicBytesDecideNotNames) {
  EXPECT_EQ(sniff_type(bytes(std::string_view("\x89PNG\r\n\x1a\n....", 12))), "image/png");
  EXPECT_EQ(sniff_type(bytes("\xFF\xD8\xFF\xE0")), "image/jpeg");
  EXPECT_EQ(sniff_type(bytes("GIF89a....")), "image/gif");
  EXPECT_EQ(sniff_type(bytes(std::string_view("RIFF\x10\x00\x00\x00WEBPVP8 ", 16))), "image/webp");
  EXPECT_EQ(sniff_type(bytes("%PDF-1.4")), "application/pdf");
  EXPECT_EQ(sniff_type(bytes(std::string_view("PK\x03\x04", 4))), "application/zip");
  EXPECT_EQ(sniff_type(bytes("plain words\nand lines\t\xE6\xB6\x88\xE6\x81\xAF")), "text/plain");
  EXPECT_EQ(sniff_type(bytes(std::string_view("abc\0def", 7))), "application/octet-stream");
  EXPECT_EQ(sniff_type(bytes("bad \xC3\x28 utf8")), "application/octet-stream");
  EXPECT_EQ(sniff_type(bytes("")), "application/octet-stream");
}

TEST(ImageSize, ReadsHeadersOfEachFormat) {
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x01\x2c\0\0\0\xc8", 24);
  EXPECT_EQ(image_size("image/png", bytes(png)).width, 300u);
  EXPECT_EQ(image_size("image/png", bytes(png)).height, 200u);
  const std::string gif("GIF89a\x40\x01\xf0\x00", 10);
  EXPECT_EQ(image_size("image/gif", bytes(gif)).width, 320u);
  EXPECT_EQ(image_size("image/gif", bytes(gif)).height, 240u);
  // JPEG: SOI, an APP0 segment, then SOF0 with height 0x0100 and width 0x0200.
  const std::string jpeg("\xFF\xD8\xFF\xE0\x00\x04\x00\x00\xFF\xC0\x00\x11\x08\x01\x00\x02\x00",
                         17);
  EXPECT_EQ(image_size("image/jpeg", bytes(jpeg)).width, 512u);
  EXPECT_EQ(image_size("image/jpeg", bytes(jpeg)).height, 256u);
  // WebP VP8X: canvas width-1 and height-1 in 24 bits at 24 and 27.
  std::string webp("RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0\x7f\x02\x00\xdf\x01\x00", 30);
  EXPECT_EQ(image_size("image/webp", bytes(webp)).width, 640u);
  EXPECT_EQ(image_size("image/webp", bytes(webp)).height, 480u);
  // Cut short or not an image: no dimensions.
  EXPECT_EQ(image_size("image/png", bytes(png.substr(0, 20))).width, 0u);
  EXPECT_EQ(image_size("text/plain", bytes(png)).width, 0u);
}

TEST(SanitizeFileName, KeepsTheVisibleLastComponent) {
  EXPECT_EQ(sanitize_file_name("report.pdf"), "report.pdf");
  EXPECT_EQ(sanitize_file_name("a/b/../c.txt"), "c.txt");
  EXPECT_EQ(sanitize_file_name("C:\\Users\\x\\evil.bat"), "evil.bat");
  EXPECT_EQ(sanitize_file_name("in\xE2\x80\xAEvoice\xE2\x81\xA6.pdf"), "invoice.pdf");
  EXPECT_EQ(sanitize_file_name("zero\xE2\x80\x8Bwidth"), "zerowidth");
  EXPECT_EQ(sanitize_file_name("tab\there\r\n"), "tabhere");
  EXPECT_EQ(sanitize_file_name(".hidden"), "hidden");
  EXPECT_EQ(sanitize_file_name(".."), "file");
  EXPECT_EQ(sanitize_file_name(""), "file");
  EXPECT_EQ(sanitize_file_name("bad\xC3("), "bad\xEF\xBF\xBD(");
  EXPECT_EQ(sanitize_file_name("\xE6\xB6\x88\xE6\x81\xAF.txt"), "\xE6\xB6\x88\xE6\x81\xAF.txt");
  // Cut at a character boundary, the extension kept.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "\xE6\xB6\x88";
  const std::string cut = sanitize_file_name(many + ".png");
  EXPECT_LE(cut.size(), kMaxFileNameBytes);
  EXPECT_EQ(cut.substr(cut.size() - 4), ".png");
  EXPECT_EQ((cut.size() - 4) % 3, 0u);
}

}  // namespace
}  // namespace imd
