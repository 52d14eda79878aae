// Fixtures for the `hac data import` tests: temporary folders, synthetic images, and JPEG/PNG
// encoders (libjpeg, libpng), so expected pixels are known exactly. Test-only header.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>
#include <png.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image_import.h"

namespace runner::data {
namespace import_fixtures {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("hac_import_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct Image {
  int64_t h = 0, w = 0, c = 0;
  std::vector<uint8_t> px;  // [h, w, c]
  uint8_t at(int64_t y, int64_t x, int64_t ch) const { return px[static_cast<size_t>((y * w + x) * c + ch)]; }
};

inline Image random_image(int64_t h, int64_t w, int64_t c, uint32_t seed) {
  std::mt19937 g(seed);
  Image im{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
  for (auto& v : im.px) v = static_cast<uint8_t>(g() & 0xff);
  return im;
}

// R = ax * x, G = ay * y, B = 100 (grey: the R rule).
inline Image gradient(int64_t h, int64_t w, int64_t c, double ax, double ay) {
  Image im{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = im.px.data() + (y * w + x) * c;
      p[0] = static_cast<uint8_t>(ax * x);
      if (c == 3) p[1] = static_cast<uint8_t>(ay * y), p[2] = 100;
    }
  }
  return im;
}

// ----------------------------------------------------------------------------- encoders

struct JpegEncodeError {
  jpeg_error_mgr pub;
  jmp_buf jump;
};

[[noreturn]] inline void jpeg_encode_fail(j_common_ptr c) { std::longjmp(reinterpret_cast<JpegEncodeError*>(c->err)->jump, 1); }

inline bool jpeg_encode_c(const Image* img, int quality, unsigned char** buf, unsigned long* size) {
  jpeg_compress_struct cinfo;
  JpegEncodeError err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_encode_fail;
  jpeg_create_compress(&cinfo);
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_mem_dest(&cinfo, buf, size);
  cinfo.image_width = static_cast<JDIMENSION>(img->w);
  cinfo.image_height = static_cast<JDIMENSION>(img->h);
  cinfo.input_components = static_cast<int>(img->c);
  cinfo.in_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(img->px.data()) + static_cast<size_t>(cinfo.next_scanline) * img->w * img->c;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

inline std::string encode_jpeg(const Image& img, int quality = 95) {
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const bool ok = jpeg_encode_c(&img, quality, &buf, &size);
  std::string out = ok ? std::string(reinterpret_cast<char*>(buf), size) : "";
  std::free(buf);
  EXPECT_TRUE(ok) << "libjpeg could not encode the fixture";
  return out;
}

struct PngSpec {
  int w = 0, h = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlaced = false;
  std::vector<uint8_t> rows;  // PNG byte layout: packed sub-byte pixels, 16-bit big-endian
  std::vector<png_color> palette;
  std::vector<png_byte> trns;
};

inline PngSpec png_spec(int w, int h, int color_type, int bit_depth) {
  PngSpec s;
  s.w = w, s.h = h, s.color_type = color_type, s.bit_depth = bit_depth;
  return s;
}

inline void png_append(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}
inline void png_flush_nothing(png_structp) {}

// Only C state after setjmp in this frame (the row pointers belong to the caller).
inline bool png_encode_c(const PngSpec* s, png_bytep* rows, std::string* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png)) != 0) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_append, png_flush_nothing);
  png_set_IHDR(png, info, static_cast<png_uint_32>(s->w), static_cast<png_uint_32>(s->h), s->bit_depth, s->color_type,
               s->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s->palette.empty()) png_set_PLTE(png, info, s->palette.data(), static_cast<int>(s->palette.size()));
  if (!s->trns.empty()) png_set_tRNS(png, info, s->trns.data(), static_cast<int>(s->trns.size()), nullptr);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

inline std::string encode_png(const PngSpec& s) {
  std::string out;
  const size_t stride = s.rows.size() / static_cast<size_t>(s.h);
  std::vector<png_bytep> rows(static_cast<size_t>(s.h));
  for (int y = 0; y < s.h; ++y) rows[static_cast<size_t>(y)] = const_cast<png_bytep>(s.rows.data()) + y * stride;
  EXPECT_TRUE(png_encode_c(&s, rows.data(), &out)) << "libpng could not encode the fixture";
  return out;
}

// A PNG of one kind and the RGB image a decoder must produce from it.
struct PngCase {
  std::string name, bytes;
  Image rgb;
};

inline std::vector<PngCase> png_cases(int side, uint32_t seed) {
  std::vector<PngCase> cases;
  std::mt19937 g(seed);
  const int n = side * side;
  auto rgb_of = [&](auto fn) {
    Image im{side, side, 3, std::vector<uint8_t>(static_cast<size_t>(n * 3))};
    for (int i = 0; i < n; ++i) fn(i, im.px.data() + 3 * i);
    return im;
  };
  {  // 8-bit RGB, and the same pixels interlaced (Adam7)
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_RGB, 8);
    s.rows = random_image(side, side, 3, g()).px;
    Image want{side, side, 3, s.rows};
    cases.push_back({"rgb", encode_png(s), want});
    s.interlaced = true;
    cases.push_back({"interlaced", encode_png(s), want});
  }
  {  // 8-bit grey
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_GRAY, 8);
    s.rows = random_image(side, side, 1, g()).px;
    cases.push_back({"grey", encode_png(s), rgb_of([&](int i, uint8_t* p) { p[0] = p[1] = p[2] = s.rows[i]; })});
  }
  {  // grey + alpha: the alpha is dropped, not composited
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_GRAY_ALPHA, 8);
    s.rows = random_image(side, side, 2, g()).px;
    cases.push_back({"grey_alpha", encode_png(s), rgb_of([&](int i, uint8_t* p) { p[0] = p[1] = p[2] = s.rows[2 * i]; })});
  }
  {  // 4-bit palette with transparency: two pixels per byte, expanded to RGB
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_PALETTE, 4);
    for (int k = 0; k < 16; ++k) {
      s.palette.push_back({static_cast<png_byte>(g()), static_cast<png_byte>(g()), static_cast<png_byte>(g())});
      s.trns.push_back(static_cast<png_byte>(k * 16));
    }
    std::vector<int> idx(static_cast<size_t>(n));
    for (auto& v : idx) v = static_cast<int>(g() % 16);
    for (int i = 0; i < n; i += 2) s.rows.push_back(static_cast<uint8_t>((idx[i] << 4) | idx[i + 1]));
    cases.push_back({"palette", encode_png(s), rgb_of([&](int i, uint8_t* p) {
                       const png_color& col = s.palette[static_cast<size_t>(idx[i])];
                       p[0] = col.red, p[1] = col.green, p[2] = col.blue;
                     })});
  }
  {  // 8-bit RGBA
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_RGB_ALPHA, 8);
    s.rows = random_image(side, side, 4, g()).px;
    cases.push_back({"rgba", encode_png(s), rgb_of([&](int i, uint8_t* p) { std::copy_n(&s.rows[4 * i], 3, p); })});
  }
  {  // 16-bit RGB: v = 257 p + d with d < 128 must scale to p (rounding, not truncation)
    PngSpec s = png_spec(side, side, PNG_COLOR_TYPE_RGB, 16);
    const Image p8 = random_image(side, side, 3, g());
    for (uint8_t p : p8.px) {
      const uint32_t v = std::min<uint32_t>(65535, 257u * p + g() % 128);
      s.rows.push_back(static_cast<uint8_t>(v >> 8));
      s.rows.push_back(static_cast<uint8_t>(v & 0xff));
    }
    cases.push_back({"deep", encode_png(s), p8});
  }
  return cases;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline bool exists(const std::string& p) { return fs::exists(p); }

}  // namespace import_fixtures
}  // namespace runner::data
