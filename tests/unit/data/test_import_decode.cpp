// `hac data import` decoding: JPEG/PNG kinds, resize and crop against known footprints, corrupt
// input, and the seeded per-key split.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image_import.h"
#include "import_fixtures.h"

namespace runner::data {
namespace {

using namespace import_fixtures;

// ----------------------------------------------------------------------------- decoding

TEST(ImportDecode, PngKindsAreExactAtIdentitySize) {
  for (const PngCase& pc : png_cases(16, 1)) {
    SCOPED_TRACE(pc.name);
    const DecodedImage d = decode_image(pc.bytes, pc.name, /*min_side=*/16);
    ASSERT_EQ(d.height, 16);
    ASSERT_EQ(d.width, 16);
    std::vector<uint8_t> out(16 * 16 * 3);
    resize_center_crop(d, 16, 3, out.data());
    EXPECT_EQ(out, pc.rgb.px);
    // Grey output: Rec.601 luma of the RGB, within rounding.
    std::vector<uint8_t> grey(16 * 16);
    resize_center_crop(d, 16, 1, grey.data());
    for (size_t i = 0; i < grey.size(); ++i) {
      const double y = 0.299 * pc.rgb.px[3 * i] + 0.587 * pc.rgb.px[3 * i + 1] + 0.114 * pc.rgb.px[3 * i + 2];
      ASSERT_NEAR(grey[i], y, 0.51) << "pixel " << i;
    }
  }
}

TEST(ImportDecode, NonSquareIdentityCropIsExact) {
  // 16x20 (w x h) at size 16: no resampling, the middle 16 rows (offset 2).
  PngSpec s = png_spec(16, 20, PNG_COLOR_TYPE_RGB, 8);
  s.rows = random_image(20, 16, 3, 5).px;
  const Image src{20, 16, 3, s.rows};
  std::vector<uint8_t> out(16 * 16 * 3);
  resize_center_crop(decode_image(encode_png(s), "tall.png"), 16, 3, out.data());
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out[(y * 16 + x) * 3 + c], src.at(y + 2, x, c));
    }
  }
}

// Shrinking by an integer factor averages whole source blocks, so a linear gradient gives the
// value at the block center: exact up to rounding (tolerance 1 grey level for PNG input).
TEST(ImportDecode, GradientShrinkAndCropFollowTheFootprint) {
  for (bool landscape : {true, false}) {
    SCOPED_TRACE(landscape ? "landscape 96x64" : "portrait 64x96");
    const int64_t w = landscape ? 96 : 64, h = landscape ? 64 : 96;
    const Image src = gradient(h, w, 3, 2.0, 2.0);  // R = 2x, G = 2y
    PngSpec s = png_spec(static_cast<int>(w), static_cast<int>(h), PNG_COLOR_TYPE_RGB, 8);
    s.rows = src.px;
    std::vector<uint8_t> out(32 * 32 * 3);
    resize_center_crop(decode_image(encode_png(s), "g.png"), 32, 3, out.data());
    // Scale 2; the long side resizes to 48 and is cropped at 8 (source offset 16).
    const double ox = landscape ? 16 : 0, oy = landscape ? 0 : 16;
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        ASSERT_NEAR(out[(y * 32 + x) * 3 + 0], 2.0 * (ox + 2 * x + 0.5), 1.0) << x << "," << y;
        ASSERT_NEAR(out[(y * 32 + x) * 3 + 1], 2.0 * (oy + 2 * y + 0.5), 1.0) << x << "," << y;
        ASSERT_EQ(out[(y * 32 + x) * 3 + 2], 100);
      }
    }
  }
}

TEST(ImportDecode, FractionalShrinkAndEnlarge) {
  {  // 150x100 -> 40: scale 2.5, resized width 60, crop 10; value ~ slope * (footprint center - 0.5)
    const Image src = gradient(100, 150, 3, 1.0, 2.0);
    std::vector<uint8_t> out(40 * 40 * 3);
    resize_center_crop(DecodedImage{100, 150, 3, src.px}, 40, 3, out.data());
    for (int y = 0; y < 40; ++y) {
      for (int x = 0; x < 40; ++x) {
        ASSERT_NEAR(out[(y * 40 + x) * 3 + 0], 1.0 * (2.5 * (x + 10) + 1.25 - 0.5), 1.0);
        ASSERT_NEAR(out[(y * 40 + x) * 3 + 1], 2.0 * (2.5 * y + 1.25 - 0.5), 1.0);
      }
    }
  }
  {  // 8x8 -> 16: bilinear on pixel centers, edges held
    const Image src = gradient(8, 8, 1, 10.0, 0.0);
    std::vector<uint8_t> out(16 * 16);
    resize_center_crop(DecodedImage{8, 8, 1, src.px}, 16, 1, out.data());
    for (int x = 0; x < 16; ++x) ASSERT_NEAR(out[5 * 16 + x], 10.0 * std::clamp(x / 2.0 - 0.25, 0.0, 7.0), 1.0);
  }
}

// JPEG is lossy: the same gradient within 6 grey levels, also through the 1/2 DCT-scaled decode.
TEST(ImportDecode, JpegGradientWithinTolerance) {
  const Image src = gradient(64, 96, 3, 2.0, 2.0);
  const std::string jpg = encode_jpeg(src);
  for (int64_t min_side : {0, 32}) {
    SCOPED_TRACE(min_side);
    const DecodedImage d = decode_image(jpg, "g.jpg", min_side);
    EXPECT_EQ(d.height, min_side == 0 ? 64 : 32);  // 64 / 2 still >= 32
    std::vector<uint8_t> out(32 * 32 * 3);
    resize_center_crop(d, 32, 3, out.data());
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        ASSERT_NEAR(out[(y * 32 + x) * 3 + 0], 2.0 * (16 + 2 * x + 0.5), 6.0) << x << "," << y;
        ASSERT_NEAR(out[(y * 32 + x) * 3 + 1], 2.0 * (2 * y + 0.5), 6.0) << x << "," << y;
        ASSERT_NEAR(out[(y * 32 + x) * 3 + 2], 100, 6.0);
      }
    }
  }
  const DecodedImage grey = decode_image(encode_jpeg(gradient(16, 16, 1, 10.0, 0.0)), "grey.jpg");
  EXPECT_EQ(grey.channels, 1);
  for (int x = 0; x < 16; ++x) EXPECT_NEAR(grey.pixels[static_cast<size_t>(8 * 16 + x)], 10 * x, 4.0);
}

TEST(ImportDecode, CorruptImagesThrowIoErrorNamingTheFile) {
  const std::string jpg = encode_jpeg(random_image(32, 32, 3, 2));
  const std::string png = png_cases(16, 3)[0].bytes;
  std::string bad_crc = png;
  bad_crc[bad_crc.size() / 2] ^= 0x55;  // inside IDAT: CRC mismatch
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.jpg", jpg.substr(0, jpg.size() * 6 / 10)},
           {"header_only.jpg", jpg.substr(0, 200)},
           {"garbage.jpg", std::string(300, '\x5a')},
           {"empty.png", ""},
           {"truncated.png", png.substr(0, png.size() / 2)},
           {"bad_crc.png", bad_crc}}) {
    SCOPED_TRACE(name);
    try {
      decode_image(bytes, name);
      ADD_FAILURE() << "decoded";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

// ----------------------------------------------------------------------------- split

TEST(ImportSplit, DependsOnKeyAndSeedOnly) {
  int test = 0, differ = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "shard/" + std::to_string(i);
    EXPECT_FALSE(import_is_test(key, 1, 0.0));
    EXPECT_TRUE(import_is_test(key, 1, 1.0));
    test += import_is_test(key, 1, 0.2);
    differ += import_is_test(key, 1, 0.2) != import_is_test(key, 2, 0.2);
    ASSERT_EQ(import_is_test(key, 1, 0.2), import_is_test(std::string(key), 1, 0.2));
  }
  EXPECT_NEAR(test / 20000.0, 0.2, 0.015);
  EXPECT_NEAR(differ / 20000.0, 2 * 0.2 * 0.8, 0.02);  // independent per seed
}

}  // namespace
}  // namespace runner::data
