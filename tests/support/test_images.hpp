// Real images for the tests, written by libvips: a JPEG carrying an EXIF orientation, GPS and
// XMP (markers the tests look for), PNGs, a PNG header claiming any size (a decompression
// bomb), and what a served image is (its size, orientation, frames, a pixel).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imd::test {

// In the EXIF GPS block (GPSMapDatum) and in the XMP packet of jpeg_with_metadata().
inline constexpr std::string_view kGpsMarker = "IMDGPSMARK";
inline constexpr std::string_view kXmpMarker = "IMDXMPMARK";

// w x h, the left half red and the right half blue, with EXIF {Orientation 6 (shown rotated
// 90° clockwise: red on top), GPS IFD with kGpsMarker} and XMP with kXmpMarker.
std::string jpeg_with_metadata(int w, int h);
// w x h, left half red, right half blue; with XMP holding `comment` and a zTXt Comment chunk
// when it is not empty (both compressed: look for them with metadata_fields).
std::string png_halves(int w, int h, std::string_view comment = {});
// A PNG of a signature, an IHDR (valid CRC) declaring w x h RGB pixels, a 5-byte IDAT and
// an IEND: a header without the pixels it declares.
std::string png_header_claiming(std::uint32_t w, std::uint32_t h);

struct ImageInfo {
  int width = 0;
  int height = 0;  // of one frame
  int orientation = 0;
  int pages = 0;
  std::string loader;  // libvips' name for the format ("jpegload_buffer", ...); "" if none
  // The metadata libvips found: "exif-data", "xmp-data", "png-comment-0-Comment", ...
  std::vector<std::string> fields;
  bool has(std::string_view field_prefix) const;
};
ImageInfo image_info(const std::string& bytes);
// The band values of the pixel at (x, y); empty when the bytes do not decode.
std::vector<double> pixel_at(const std::string& bytes, int x, int y);
bool reddish(const std::vector<double>& p);
bool bluish(const std::vector<double>& p);

}  // namespace imd::test
