// What an upload is, judged from its bytes and never from what the client says: the content
// type sniffed from magic bytes, an image's dimensions from its header, and a file name made
// safe to show and to put in a Content-Disposition header. Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace imd {

// The bytes the sniffers look at: the first kSniffBytes of a file.
inline constexpr std::size_t kSniffBytes = 64 * 1024;
inline constexpr std::size_t kMaxFileNameBytes = 200;

// image/png, image/jpeg, image/gif, image/webp, application/pdf, application/zip,
// text/plain (valid UTF-8 without NUL or other binary control characters), else
// application/octet-stream.
std::string sniff_type(std::span<const char> head);

struct ImageSize {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};
// An image's dimensions from its header (PNG IHDR, GIF screen, JPEG SOFn, WebP VP8/VP8L/VP8X);
// {0, 0} when the head does not hold them or the type is not an image.
ImageSize image_size(std::string_view type, std::span<const char> head);

// The image types served inline (everything else is an attachment).
bool is_inline_image(std::string_view type);

// The last path component, without control, bidi-override or other invisible format
// characters, quotes or backslashes, invalid UTF-8 replaced, leading dots and spaces removed,
// cut to kMaxFileNameBytes at a character boundary (keeping the extension when it can);
// "file" when nothing is left.
std::string sanitize_file_name(std::string_view name);

}  // namespace imd
