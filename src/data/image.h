// Images: decoding (JPEG, PNG), encoding (JPEG), resizing and cropping, and the per-row
// transforms of the data pipeline: what `hac data import` stores and what the loader hands a
// model. Plain C++ (no torch), so the importer, the reader and the loader share one code path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::data {

// 8-bit pixels, rows top to bottom, channels interleaved (1 = grey, 3 = RGB).
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // [height, width, channels]
};

// Decodes a JPEG or PNG, recognised by its signature, not its name. PNG: palette and grey are
// expanded, alpha is dropped, 16-bit samples are scaled to 8 bits. JPEG: grey, YCbCr, RGB and
// (Adobe) CMYK; when min_side > 0 it may decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
// scaling, much faster) as long as the shorter side stays >= min_side. grey_ok lets a colour
// JPEG decode straight to luma. Images over 100 megapixels are refused.
// Throws IoError "<name>: <decoder's message>" for a corrupt, truncated or unknown image.
DecodedImage decode_image(const std::string& bytes, const std::string& name, int64_t min_side = 0,
                          bool grey_ok = false);

// Resizes so the shorter side is `size` (the longer one truncated as torchvision's Resize does),
// then takes the center size x size crop (offset floor((longer - size) / 2)), converting to
// `channels`. Shrinking averages each output pixel's exact source footprint (area weights);
// enlarging is bilinear on pixel centers; an identity resize copies the pixels exactly.
// Writes uint8 [size, size, channels] to out.
void resize_center_crop(const DecodedImage& image, int64_t size, int64_t channels, uint8_t* out);

// Resizes so the shorter side is `side` (the longer one truncated, as above), without cropping.
// Returns the image unchanged when its shorter side is already `side`.
DecodedImage resize_shorter_side(const DecodedImage& image, int64_t side);

// A region of an image in source pixels.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop box, the augmentation MERU trains with: area a uniform share
// in [scale_min, scale_max] of the image, aspect ratio log-uniform in [3/4, 4/3], up to ten
// draws; else the whole image cut to the nearest aspect in range, centred. Deterministic in `seed`.
CropBox random_resized_crop_box(int64_t height, int64_t width, uint64_t seed, double scale_min = 0.5,
                                double scale_max = 1.0);

// Resizes `box` of the image to out_h x out_w (area weights when shrinking, bilinear when
// enlarging, as resize_center_crop), converting to `channels`. Writes uint8 [out_h, out_w, channels].
void resize_crop(const DecodedImage& image, const CropBox& box, int64_t out_h, int64_t out_w, int64_t channels,
                 uint8_t* out);

// Encodes 8-bit grey or RGB pixels as a baseline JPEG (libjpeg-turbo) at `quality` (1-100).
std::string encode_jpeg(const DecodedImage& image, int quality);

// One encoded image (JPEG or PNG) as a model sees it, size x size x channels into `out`:
//   seed == 0 (evaluation, training without augmentation, and `hac data import` storing pixels):
//     decoded (DCT-scaled only while the shorter side stays >= size) then resize_center_crop, so
//     a JPEG-stored row reads exactly as the pixel row an import makes from the same bytes;
//   seed != 0 (training with random_resized_crop): decoded with the shorter side >= 2 * size,
//     then resize_crop of random_resized_crop_box(seed).
// Throws IoError naming `name` for a corrupt image.
void transform_image(const std::string& bytes, const std::string& name, int64_t size, int64_t channels, uint64_t seed,
                    uint8_t* out);

}  // namespace runner::data
