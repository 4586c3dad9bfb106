// ImageCodec port: what an uploaded image becomes before anyone downloads it. Adapter:
// VipsImageCodec (src/image, libvips). FileService works without one (images are then served
// as uploaded, with no thumbnail).
//
// Contract: thread-safe, blocking and CPU-heavy (run on the blocking pool; the adapter bounds
// how many run at once). Input is the whole file in memory (at most files.max_bytes) and its
// sniffed type (domain/file_type.hpp: image/jpeg, image/png, image/gif, image/webp). The
// adapter reads the declared dimensions before decoding any pixel and refuses more than its
// pixel limit. Errors: invalid_argument (not a decodable image of that type: corrupt,
// truncated), payload_too_large (over the pixel limit), unavailable (every worker busy for
// longer than the adapter waits; retry later).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imd {

struct EncodedImage {
  std::string bytes;
  std::string type;  // a MIME type of domain/file_type.hpp's inline images
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};

struct CleanImage {
  // The image as it may be served: the orientation tag applied to the pixels, every metadata
  // block (EXIF with GPS, XMP, IPTC, comments, ICC profile) dropped; same type as the input
  // (an animated GIF or WebP keeps its frames).
  EncodedImage clean;
  // The first frame scaled to fit thumb_px x thumb_px (never enlarged), as WebP.
  EncodedImage thumb;
};

class ImageCodec {
 public:
  virtual ~ImageCodec() = default;
  virtual Result<CleanImage> clean(std::string_view bytes, std::string_view type,
                                   std::uint32_t thumb_px) = 0;
  // A square px x px WebP of the image's centre (an avatar): scaled so its shorter side is px,
  // then cropped; orientation applied, no metadata.
  virtual Result<EncodedImage> square(std::string_view bytes, std::string_view type,
                                      std::uint32_t px) = 0;
};

}  // namespace imd
