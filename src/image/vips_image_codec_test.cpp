// VipsImageCodec on images libvips writes here (tests/support/test_images.hpp): a JPEG with an
// EXIF orientation, GPS and XMP (gone, and the orientation applied to the pixels), a PNG with a
// text comment, an animated GIF, decompression bombs refused from the header, corrupt bytes.
#include "image/vips_image_codec.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <vips/vips.h>

#include <atomic>
#include <string>
#include <thread>

#include "support/test_images.hpp"

namespace imd {
namespace {

using namespace imd::test;

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

class Codec : public ::testing::Test {
 protected:
  VipsImageCodec codec_{ImageCodecLimits{}};
};

TEST_F(Codec, AJpegLosesItsExifGpsAndXmpAndIsTurnedUpright) {
  const std::string jpeg = jpeg_with_metadata(80, 40);
  // What the test wrote is what it means to write: the metadata is in the upload.
  ASSERT_TRUE(contains(jpeg, kGpsMarker));
  ASSERT_TRUE(contains(jpeg, kXmpMarker));
  ASSERT_EQ(image_info(jpeg).orientation, 6);

  auto r = codec_.clean(jpeg, "image/jpeg", 16);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EncodedImage& c = r->clean;
  EXPECT_EQ(c.type, "image/jpeg");
  EXPECT_EQ(c.bytes.substr(0, 3), std::string("\xff\xd8\xff", 3));
  EXPECT_FALSE(contains(c.bytes, kGpsMarker));
  EXPECT_FALSE(contains(c.bytes, kXmpMarker));
  EXPECT_FALSE(contains(c.bytes, std::string("Exif\0\0", 6)));
  EXPECT_FALSE(contains(c.bytes, "http://ns.adobe.com/xap/1.0/"));
  // Rotated 90° clockwise: 40 wide, 80 high, the left (red) half now on top.
  EXPECT_EQ(c.width, 40u);
  EXPECT_EQ(c.height, 80u);
  EXPECT_TRUE(reddish(pixel_at(c.bytes, 20, 10)));
  EXPECT_TRUE(bluish(pixel_at(c.bytes, 20, 70)));
  EXPECT_LE(image_info(c.bytes).orientation, 1);
  EXPECT_FALSE(image_info(c.bytes).has("exif-"));
  EXPECT_FALSE(image_info(c.bytes).has("xmp-data"));

  // The thumbnail fits 16 x 16, keeps the aspect and the orientation, and is a WebP.
  const EncodedImage& t = r->thumb;
  EXPECT_EQ(t.type, "image/webp");
  EXPECT_EQ(t.bytes.substr(8, 4), "WEBP");
  EXPECT_EQ(t.width, 8u);
  EXPECT_EQ(t.height, 16u);
  EXPECT_TRUE(reddish(pixel_at(t.bytes, 4, 2)));
  EXPECT_TRUE(bluish(pixel_at(t.bytes, 4, 13)));
  EXPECT_FALSE(contains(t.bytes, kGpsMarker));
}

TEST_F(Codec, APngLosesItsTextAndSmallImagesAreNotEnlarged) {
  const std::string png = png_halves(30, 10, "IMDPNGMARK");
  ASSERT_TRUE(image_info(png).has("xmp-data"));
  ASSERT_TRUE(image_info(png).has("png-comment-"));

  auto r = codec_.clean(png, "image/png", 360);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->clean.type, "image/png");
  const ImageInfo clean = image_info(r->clean.bytes);
  EXPECT_EQ(clean.loader, "pngload_buffer");
  EXPECT_FALSE(clean.has("xmp-data"));
  EXPECT_FALSE(clean.has("png-comment-"));
  EXPECT_EQ(r->clean.width, 30u);
  EXPECT_EQ(r->clean.height, 10u);
  EXPECT_EQ(r->thumb.width, 30u);
  EXPECT_EQ(r->thumb.height, 10u);
  EXPECT_TRUE(bluish(pixel_at(r->clean.bytes, 25, 5)));
}

// Two 20 x 10 frames (the second one mirrored), stacked as libvips holds animations, saved by
// `save` (gifsave_buffer or webpsave_buffer).
template <typename Save>
std::string two_frames(Save save) {
  const std::string png = png_halves(20, 10);
  VipsImage* frame = vips_image_new_from_buffer(png.data(), png.size(), "", nullptr);
  VipsImage *mirrored = nullptr, *strip = nullptr;
  EXPECT_EQ(vips_flip(frame, &mirrored, VIPS_DIRECTION_HORIZONTAL, nullptr), 0);
  EXPECT_EQ(vips_join(frame, mirrored, &strip, VIPS_DIRECTION_VERTICAL, nullptr), 0);
  VipsImage* anim = vips_image_copy_memory(strip);
  vips_image_set_int(anim, VIPS_META_PAGE_HEIGHT, 10);
  void* buf = nullptr;
  std::size_t len = 0;
  EXPECT_EQ(save(anim, &buf, &len, nullptr), 0) << vips_error_buffer();
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  for (VipsImage* im : {frame, mirrored, strip, anim}) g_object_unref(im);
  return out;
}

TEST_F(Codec, AnimatedGifsAndWebpsKeepTheirFrames) {
  for (const auto& [type, bytes] :
       {std::pair<std::string, std::string>{"image/gif", two_frames(vips_gifsave_buffer)},
        std::pair<std::string, std::string>{"image/webp", two_frames(vips_webpsave_buffer)}}) {
    ASSERT_EQ(image_info(bytes).pages, 2) << type;
    auto r = codec_.clean(bytes, type, 360);
    ASSERT_TRUE(r.ok()) << type << ": " << r.error().message;
    EXPECT_EQ(r->clean.type, type);
    EXPECT_EQ(r->clean.width, 20u);
    EXPECT_EQ(r->clean.height, 10u);  // one frame's height
    EXPECT_EQ(image_info(r->clean.bytes).pages, 2) << type;
    EXPECT_EQ(r->thumb.height, 10u);  // the first frame
    EXPECT_EQ(image_info(r->thumb.bytes).pages, 1) << type;
  }
}

TEST_F(Codec, ABombIsRefusedFromItsHeaderWithoutDecoding) {
  const long before = max_rss_kib();
  // 100000 x 100000 RGB would be 30 GB decoded; the file is 57 bytes.
  auto r = codec_.clean(png_header_claiming(100000, 100000), "image/png", 360);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::payload_too_large) << r.error().message;
  auto sq = codec_.square(png_header_claiming(100000, 100000), "image/png", 128);
  ASSERT_FALSE(sq.ok());
  EXPECT_EQ(sq.error().code, Errc::payload_too_large);
  EXPECT_LT(max_rss_kib() - before, 64 * 1024);  // nothing near the decoded size was allocated

  // The limit is the configured one: a real 100 x 100 image against a limit of 5000 pixels.
  VipsImageCodec small(ImageCodecLimits{.max_pixels = 5000});
  const std::string png = png_halves(100, 100);
  EXPECT_EQ(small.clean(png, "image/png", 360).error().code, Errc::payload_too_large);
  EXPECT_TRUE(codec_.clean(png, "image/png", 360).ok());
}

TEST_F(Codec, CorruptOrTruncatedImagesAreInvalid) {
  const std::string jpeg = jpeg_with_metadata(64, 64);
  for (const std::string& bad :
       {jpeg.substr(0, jpeg.size() / 2), png_header_claiming(10, 10),
        std::string("\xff\xd8\xff\xe0garbage garbage garbage", 26), std::string("GIF89a", 6)}) {
    const std::string type = bad[0] == '\x89' ? "image/png"
                             : bad[0] == 'G'  ? "image/gif"
                                              : "image/jpeg";
    auto r = codec_.clean(bad, type, 360);
    ASSERT_FALSE(r.ok()) << type << " of " << bad.size() << " bytes was accepted";
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << r.error().message;
  }
  // A type the codec does not process.
  EXPECT_EQ(codec_.clean(jpeg, "image/svg+xml", 360).error().code, Errc::invalid_argument);
}

TEST_F(Codec, ASquareIsTheUprightCentre) {
  const std::string jpeg = jpeg_with_metadata(80, 40);
  auto r = codec_.square(jpeg, "image/jpeg", 32);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, "image/webp");
  EXPECT_EQ(r->width, 32u);
  EXPECT_EQ(r->height, 32u);
  // Upright 40 x 80 (red on top) scaled to 32 x 64, the middle 32 rows kept: red above blue.
  EXPECT_TRUE(reddish(pixel_at(r->bytes, 16, 4)));
  EXPECT_TRUE(bluish(pixel_at(r->bytes, 16, 28)));
  EXPECT_FALSE(contains(r->bytes, kGpsMarker));
}

// Every wait has a timeout: with its one worker busy, a caller gets unavailable (and when to
// retry) after its wait instead of queueing. The busy side repeats a large image (each takes
// far longer than the 5 ms wait: a 3000x3000 PNG to decode, shrink and encode) until the other
// side has seen a refusal; the other side pauses 1 ms after each answer, so that the busy side
// gets the worker back. The loop ends either way. (With a 50 ms wait a fast moment of the
// machine decoded the large image within it, and nothing was refused in 100 rounds.)
TEST_F(Codec, ABusyCodecRefusesAfterItsWait) {
  VipsImageCodec one(ImageCodecLimits{
      .max_pixels = 50'000'000, .workers = 1, .wait = std::chrono::milliseconds(5)});
  const std::string big = png_halves(3000, 3000);
  const std::string tiny = png_halves(8, 8);
  std::atomic<bool> refused{false};
  std::atomic<bool> done{false};
  std::thread busy([&] {
    for (int i = 0; i < 100 && !refused.load(); ++i) (void)one.clean(big, "image/png", 360);
    done = true;
  });
  Error seen{Errc::internal, ""};
  while (!refused.load() && !done.load()) {
    auto r = one.square(tiny, "image/png", 4);
    if (!r.ok()) {
      seen = r.error();
      refused = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  busy.join();
  ASSERT_TRUE(refused.load()) << "the busy side never held the worker";
  EXPECT_EQ(seen.code, Errc::unavailable) << seen.message;
  EXPECT_GT(seen.retry_after_s, 0);
  EXPECT_TRUE(one.square(tiny, "image/png", 4).ok());  // free again
}

}  // namespace
}  // namespace imd
