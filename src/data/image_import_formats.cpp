// Image formats and pixels (data/image.h): JPEG (libjpeg-turbo) decoding and encoding, PNG
// (libpng) decoding, the area-averaging resize, center and random resized crops, the per-row JPEG
// transform of the loader; and tar reading for `hac data import`.
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/hash.h"
#include "data/image.h"
#include "data/image_import.h"

namespace runner::data {
namespace {

// Decompression bombs: a 100-megapixel RGB image is already 300 MB, per decoding thread.
constexpr int64_t kMaxPixels = 100'000'000;
constexpr size_t kMessageBytes = 200;

// ----------------------------------------------------------------------------- JPEG
// libjpeg reports errors by calling error_exit, which must not return; we longjmp back to the
// decoder. Only C structs live in the frame that calls setjmp (jpeg_run), so no C++ destructor
// is skipped, and the output vector belongs to the caller.

struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct JpegJob {
  jpeg_decompress_struct cinfo;
  JpegError err;
};

[[noreturn]] void jpeg_fail(j_common_ptr c) {
  auto* err = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg only warns on missing or garbled entropy data and fills the rest with grey; an image
// that is partly grey is worse than no image in a training set, so those warnings are errors.
// Other warnings (e.g. stray bytes between markers, common and harmless) are ignored.
void jpeg_warn(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  const int code = c->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC) jpeg_fail(c);
}

// The largest power-of-two DCT reduction (1/8 .. 1) that keeps the shorter side >= min_side.
void choose_scale(jpeg_decompress_struct* cinfo, int64_t min_side) {
  cinfo->scale_num = 1;
  cinfo->scale_denom = 1;
  if (min_side <= 0) return;
  const int64_t shorter = std::min<int64_t>(cinfo->image_width, cinfo->image_height);
  for (unsigned denom : {8u, 4u, 2u}) {
    // libjpeg rounds scaled dimensions up.
    if ((shorter + denom - 1) / denom >= min_side) {
      cinfo->scale_denom = denom;
      return;
    }
  }
}

bool jpeg_run(JpegJob* job, const unsigned char* data, unsigned long n, int64_t min_side, bool grey_ok,
              DecodedImage* out) {
  jpeg_decompress_struct* cinfo = &job->cinfo;
  cinfo->err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = jpeg_fail;
  job->err.pub.emit_message = jpeg_warn;
  job->err.message[0] = '\0';
  jpeg_create_decompress(cinfo);
  if (setjmp(job->err.jump) != 0) {
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_mem_src(cinfo, data, n);
  jpeg_read_header(cinfo, TRUE);
  if (static_cast<int64_t>(cinfo->image_width) * cinfo->image_height > kMaxPixels) {
    std::snprintf(job->err.message, sizeof job->err.message, "%ux%u pixels is over the limit of %lld",
                  cinfo->image_width, cinfo->image_height, static_cast<long long>(kMaxPixels));
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  if (cmyk) {
    cinfo->out_color_space = JCS_CMYK;
  } else if (cinfo->num_components == 1 || grey_ok) {
    cinfo->out_color_space = JCS_GRAYSCALE;
  } else {
    cinfo->out_color_space = JCS_RGB;
  }
  choose_scale(cinfo, min_side);
  jpeg_start_decompress(cinfo);
  const int64_t w = cinfo->output_width, h = cinfo->output_height, comps = cinfo->output_components;
  out->height = h;
  out->width = w;
  out->channels = cmyk ? 3 : comps;
  try {
    out->pixels.resize(static_cast<size_t>(h * w * (cmyk ? 4 : comps)));
  } catch (const std::bad_alloc&) {
    std::snprintf(job->err.message, sizeof job->err.message, "out of memory for %lldx%lld pixels",
                  static_cast<long long>(w), static_cast<long long>(h));
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out->pixels.data() + static_cast<size_t>(cinfo->output_scanline) * w * (cmyk ? 4 : comps);
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  if (cmyk) {
    // Adobe writes CMYK inverted (0 = full ink); others store it plain. No colour management.
    const bool inverted = cinfo->saw_Adobe_marker != 0;
    uint8_t* p = out->pixels.data();
    for (int64_t i = 0; i < h * w; ++i) {
      int c = p[4 * i], m = p[4 * i + 1], y = p[4 * i + 2], k = p[4 * i + 3];
      if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
      p[3 * i] = static_cast<uint8_t>((c * k + 127) / 255);
      p[3 * i + 1] = static_cast<uint8_t>((m * k + 127) / 255);
      p[3 * i + 2] = static_cast<uint8_t>((y * k + 127) / 255);
    }
    out->pixels.resize(static_cast<size_t>(h * w * 3));
  }
  jpeg_destroy_decompress(cinfo);
  return true;
}

// Encoding: the same error manager; the output buffer is libjpeg's (malloc), freed by the caller.
struct JpegEncodeJob {
  jpeg_compress_struct cinfo;
  JpegError err;
  unsigned char* buffer;
  unsigned long size;
};

bool jpeg_encode_run(JpegEncodeJob* job, const uint8_t* pixels, int64_t h, int64_t w, int64_t c, int quality) {
  jpeg_compress_struct* cinfo = &job->cinfo;
  cinfo->err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = jpeg_fail;
  job->err.message[0] = '\0';
  job->buffer = nullptr;
  job->size = 0;
  jpeg_create_compress(cinfo);
  if (setjmp(job->err.jump) != 0) {
    jpeg_destroy_compress(cinfo);
    return false;
  }
  jpeg_mem_dest(cinfo, &job->buffer, &job->size);
  cinfo->image_width = static_cast<JDIMENSION>(w);
  cinfo->image_height = static_cast<JDIMENSION>(h);
  cinfo->input_components = static_cast<int>(c);
  cinfo->in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) + static_cast<size_t>(cinfo->next_scanline) * w * c;
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  jpeg_destroy_compress(cinfo);
  return true;
}

// ----------------------------------------------------------------------------- PNG
// Same scheme: libpng longjmps to the setjmp in png_run, which holds only C state.

struct PngJob {
  const unsigned char* data = nullptr;
  size_t size = 0, pos = 0;
  char message[kMessageBytes] = {};
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<png_bytep> rows;  // owned here, not in the setjmp frame
};

void png_read_memory(png_structp png, png_bytep dst, size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (job->size - job->pos < n) png_error(png, "the file ends early (truncated PNG)");
  std::memcpy(dst, job->data + job->pos, n);
  job->pos += n;
}

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof job->message, "%s", message);
  png_longjmp(png, 1);
}

void png_quiet(png_structp, png_const_charp) {}

bool png_run(PngJob* job, DecodedImage* out) {
  job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_fail, png_quiet);
  if (job->png == nullptr) {
    std::snprintf(job->message, sizeof job->message, "cannot create a libpng reader");
    return false;
  }
  job->info = png_create_info_struct(job->png);
  if (job->info == nullptr || setjmp(png_jmpbuf(job->png)) != 0) {
    png_destroy_read_struct(&job->png, &job->info, nullptr);
    return false;
  }
  png_set_read_fn(job->png, job, png_read_memory);
  png_read_info(job->png, job->info);
  const png_uint_32 w = png_get_image_width(job->png, job->info), h = png_get_image_height(job->png, job->info);
  if (static_cast<int64_t>(w) * h > kMaxPixels) {
    std::snprintf(job->message, sizeof job->message, "%ux%u pixels is over the limit of %lld", w, h,
                  static_cast<long long>(kMaxPixels));
    png_destroy_read_struct(&job->png, &job->info, nullptr);
    return false;
  }
  png_set_expand(job->png);  // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
  if (png_get_bit_depth(job->png, job->info) == 16) png_set_scale_16(job->png);  // rounds, not truncates
  png_set_strip_alpha(job->png);
  png_set_interlace_handling(job->png);
  png_read_update_info(job->png, job->info);
  const int64_t comps = png_get_channels(job->png, job->info);
  if ((comps != 1 && comps != 3) || png_get_rowbytes(job->png, job->info) != static_cast<size_t>(w * comps)) {
    std::snprintf(job->message, sizeof job->message, "unexpected PNG layout after expansion (%lld channels)",
                  static_cast<long long>(comps));
    png_destroy_read_struct(&job->png, &job->info, nullptr);
    return false;
  }
  out->height = h;
  out->width = w;
  out->channels = comps;
  try {
    out->pixels.resize(static_cast<size_t>(h) * w * comps);
    job->rows.resize(h);
  } catch (const std::bad_alloc&) {
    std::snprintf(job->message, sizeof job->message, "out of memory for %ux%u pixels", w, h);
    png_destroy_read_struct(&job->png, &job->info, nullptr);
    return false;
  }
  for (png_uint_32 y = 0; y < h; ++y) job->rows[y] = out->pixels.data() + static_cast<size_t>(y) * w * comps;
  png_read_image(job->png, job->rows.data());
  png_read_end(job->png, nullptr);
  png_destroy_read_struct(&job->png, &job->info, nullptr);
  return true;
}

// ----------------------------------------------------------------------------- resize

// Source taps of one output pixel along one axis: weights[k] applies to source first + k.
struct Taps {
  std::vector<int64_t> first, count;
  std::vector<float> weights;
  std::vector<int64_t> offset;  // into weights
};

// Output pixel i (0 <= i < out_len) is resized pixel i + crop of a src_len -> resized_len resize.
Taps make_taps(int64_t src_len, int64_t resized_len, int64_t crop, int64_t out_len) {
  Taps t;
  const double scale = static_cast<double>(src_len) / static_cast<double>(resized_len);
  for (int64_t i = 0; i < out_len; ++i) {
    const int64_t r = i + crop;
    t.offset.push_back(static_cast<int64_t>(t.weights.size()));
    if (scale > 1.0) {
      // Shrinking: the exact footprint [r * scale, (r + 1) * scale), each source pixel weighted
      // by its overlap, so every source pixel counts and nothing aliases.
      const double lo = r * scale, hi = (r + 1) * scale;
      const int64_t a = static_cast<int64_t>(std::floor(lo));
      const int64_t b = std::min<int64_t>(src_len, static_cast<int64_t>(std::ceil(hi)));
      t.first.push_back(a);
      t.count.push_back(b - a);
      for (int64_t k = a; k < b; ++k) {
        const double overlap = std::min<double>(hi, k + 1) - std::max<double>(lo, k);
        t.weights.push_back(static_cast<float>(std::max(0.0, overlap) / scale));
      }
    } else {
      // Enlarging (or identity): bilinear between the two source pixels around the center.
      const double c = (r + 0.5) * scale - 0.5;
      const double f = std::floor(c);
      const double frac = c - f;
      const int64_t k0 = std::clamp<int64_t>(static_cast<int64_t>(f), 0, src_len - 1);
      const int64_t k1 = std::clamp<int64_t>(static_cast<int64_t>(f) + 1, 0, src_len - 1);
      t.first.push_back(std::min(k0, k1));
      if (k0 == k1 || frac == 0.0) {
        t.first.back() = k0;
        t.count.push_back(1);
        t.weights.push_back(1.0f);
      } else {
        t.count.push_back(2);
        t.weights.push_back(static_cast<float>(1.0 - frac));
        t.weights.push_back(static_cast<float>(frac));
      }
    }
  }
  return t;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::clamp(std::floor(v + 0.5f), 0.0f, 255.0f)); }

// Output pixel (y, x) = sum over the taps of ty[y] x tx[x] of the source, converted to `channels`:
// a horizontal pass over the source rows the vertical taps touch, then the vertical pass.
void apply_taps(const DecodedImage& image, const Taps& tx, const Taps& ty, int64_t channels, uint8_t* out) {
  const int64_t w = image.width, c = image.channels;
  const auto out_w = static_cast<int64_t>(tx.first.size()), out_h = static_cast<int64_t>(ty.first.size());
  const int64_t y_lo = ty.first.front(), y_hi = ty.first.back() + ty.count.back();
  std::vector<float> rows(static_cast<size_t>((y_hi - y_lo) * out_w * c));
  for (int64_t y = y_lo; y < y_hi; ++y) {
    const uint8_t* src = image.pixels.data() + y * w * c;
    float* dst = rows.data() + (y - y_lo) * out_w * c;
    for (int64_t x = 0; x < out_w; ++x) {
      const float* wt = tx.weights.data() + tx.offset[x];
      const uint8_t* s = src + tx.first[x] * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0.0f;
        for (int64_t k = 0; k < tx.count[x]; ++k) acc += wt[k] * s[k * c + ch];
        dst[x * c + ch] = acc;
      }
    }
  }
  std::vector<float> px(static_cast<size_t>(c));
  for (int64_t y = 0; y < out_h; ++y) {
    const float* wt = ty.weights.data() + ty.offset[y];
    const int64_t first = ty.first[y] - y_lo;
    for (int64_t x = 0; x < out_w; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0.0f;
        for (int64_t k = 0; k < ty.count[y]; ++k) acc += wt[k] * rows[((first + k) * out_w + x) * c + ch];
        px[ch] = acc;
      }
      uint8_t* o = out + (y * out_w + x) * channels;
      if (channels == c) {
        for (int64_t ch = 0; ch < c; ++ch) o[ch] = to_byte(px[ch]);
      } else if (channels == 1) {  // RGB -> luma, Rec.601 weights
        o[0] = to_byte(0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]);
      } else {  // grey -> RGB
        o[0] = o[1] = o[2] = to_byte(px[0]);
      }
    }
  }
}

void check_image(const DecodedImage& image, int64_t channels, const char* what) {
  const int64_t h = image.height, w = image.width, c = image.channels;
  if (h <= 0 || w <= 0 || (c != 1 && c != 3) || (channels != 1 && channels != 3) ||
      static_cast<int64_t>(image.pixels.size()) != h * w * c) {
    throw IoError(fmt::format("{}: bad image {}x{}x{} ({} bytes) for {} channels", what, h, w, c, image.pixels.size(),
                              channels));
  }
}

// The resized size when the shorter side becomes `side`: the longer one int(side * longer / shorter).
std::pair<int64_t, int64_t> shorter_side_dims(int64_t h, int64_t w, int64_t side) {
  int64_t rh = side, rw = side;
  if (w > h) rw = std::max<int64_t>(side, side * w / h);
  if (h > w) rh = std::max<int64_t>(side, side * h / w);
  return {rh, rw};
}

// A stream of uniform draws from one seed (splitmix64 over a counter that starts at a scrambled
// seed, so the streams of neighbouring seeds do not overlap).
class Draws {
 public:
  explicit Draws(uint64_t seed) : state_(core::splitmix64(seed ^ 0x5851F42D4C957F2Dull)) {}
  double uniform(double lo, double hi) {  // [lo, hi)
    return lo + (hi - lo) * static_cast<double>(core::splitmix64(state_++) >> 11) * 0x1.0p-53;
  }
  int64_t below(int64_t n) {  // [0, n)
    return static_cast<int64_t>(core::splitmix64(state_++) % static_cast<uint64_t>(n));
  }

 private:
  uint64_t state_;
};

// ----------------------------------------------------------------------------- tar

// One libarchive reader, freed however the walk ends.
class ArchiveReader {
 public:
  explicit ArchiveReader(const std::string& path) : path_(path), a_(archive_read_new()) {
    if (a_ == nullptr) throw IoError(fmt::format("{}: cannot create an archive reader", path));
    archive_read_support_filter_all(a_);   // gzip, bzip2, xz, zstd, lz4, ... or none
    archive_read_support_format_tar(a_);   // ustar, GNU (long names, base-256 sizes), pax
    if (archive_read_open_filename(a_, path.c_str(), 1 << 20) != ARCHIVE_OK) {
      fail("not a tar archive (plain or compressed), or a corrupt or unreadable one");
    }
  }
  ~ArchiveReader() { archive_read_free(a_); }
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  // Moves to the next regular file; false at the end of the archive.
  bool next(std::string& name, uint64_t& size) {
    for (;;) {
      archive_entry* e = nullptr;
      const int rc = archive_read_next_header(a_, &e);
      if (rc == ARCHIVE_EOF) return false;
      if (rc < ARCHIVE_WARN) fail("not a tar archive (plain or compressed), or a truncated tar or a corrupt one");
      if (archive_entry_filetype(e) != AE_IFREG) continue;  // directories, links, ...
      const char* p = archive_entry_pathname_utf8(e);
      if (p == nullptr) p = archive_entry_pathname(e);
      name = p == nullptr ? "" : p;
      while (name.rfind("./", 0) == 0) name.erase(0, 2);
      while (!name.empty() && name[0] == '/') name.erase(0, 1);
      size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
      size_ = size;
      return true;
    }
  }

  // The current member's data (at most `cap` bytes are allowed). A member not read is skipped by
  // the next call to next().
  std::string read_data(uint64_t cap) {
    if (size_ > cap) throw IoError(fmt::format("{}: tar member of {} bytes over {}", path_, size_, cap));
    std::string out(static_cast<size_t>(size_), '\0');
    size_t got = 0;
    while (got < out.size()) {
      const la_ssize_t n = archive_read_data(a_, out.data() + got, out.size() - got);
      if (n < 0) fail("truncated tar, or a corrupt member");
      if (n == 0) fail(fmt::format("truncated tar: a member of {} bytes ends after {}", out.size(), got));
      got += static_cast<size_t>(n);
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    const char* why = archive_error_string(a_);
    throw IoError(fmt::format("{}: {}{}", path_, what, why != nullptr ? fmt::format(" ({})", why) : std::string()));
  }

  std::string path_;
  archive* a_;
  uint64_t size_ = 0;
};

}  // namespace

DecodedImage decode_image(const std::string& bytes, const std::string& name, int64_t min_side, bool grey_ok) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  DecodedImage out;
  if (bytes.size() >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    JpegJob job{};
    if (!jpeg_run(&job, data, static_cast<unsigned long>(bytes.size()), min_side, grey_ok, &out)) {
      throw IoError(fmt::format("{}: corrupt JPEG ({})", name, job.err.message));
    }
    return out;
  }
  if (bytes.size() >= 8 && png_sig_cmp(data, 0, 8) == 0) {
    PngJob job;
    job.data = data;
    job.size = bytes.size();
    if (!png_run(&job, &out)) throw IoError(fmt::format("{}: corrupt PNG ({})", name, job.message));
    return out;
  }
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 4); ++i) head += fmt::format("{:02x}", data[i]);
  throw IoError(fmt::format("{}: neither JPEG nor PNG ({} bytes starting {})", name, bytes.size(),
                            head.empty() ? "<empty>" : head));
}

void resize_center_crop(const DecodedImage& image, int64_t size, int64_t channels, uint8_t* out) {
  check_image(image, channels, "resize_center_crop");
  if (size <= 0) throw IoError(fmt::format("resize_center_crop: size {} must be positive", size));
  const auto [rh, rw] = shorter_side_dims(image.height, image.width, size);
  const Taps tx = make_taps(image.width, rw, (rw - size) / 2, size);
  const Taps ty = make_taps(image.height, rh, (rh - size) / 2, size);
  apply_taps(image, tx, ty, channels, out);
}

DecodedImage resize_shorter_side(const DecodedImage& image, int64_t side) {
  check_image(image, image.channels, "resize_shorter_side");
  if (side <= 0) throw IoError(fmt::format("resize_shorter_side: side {} must be positive", side));
  if (std::min(image.height, image.width) == side) return image;
  const auto [rh, rw] = shorter_side_dims(image.height, image.width, side);
  DecodedImage out;
  out.height = rh;
  out.width = rw;
  out.channels = image.channels;
  out.pixels.resize(static_cast<size_t>(rh * rw * image.channels));
  apply_taps(image, make_taps(image.width, rw, 0, rw), make_taps(image.height, rh, 0, rh), image.channels,
             out.pixels.data());
  return out;
}

CropBox random_resized_crop_box(int64_t height, int64_t width, uint64_t seed, double scale_min, double scale_max) {
  constexpr double kRatioMin = 3.0 / 4.0, kRatioMax = 4.0 / 3.0;
  Draws draw(seed);
  const double area = static_cast<double>(height) * static_cast<double>(width);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * draw.uniform(scale_min, scale_max);
    const double aspect = std::exp(draw.uniform(std::log(kRatioMin), std::log(kRatioMax)));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * aspect)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int64_t top = draw.below(height - h + 1), left = draw.below(width - w + 1);
      return CropBox{top, left, h, w};
    }
  }
  // Fallback: the whole image, cut to the nearest aspect in range, centred.
  const double ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (ratio < kRatioMin) {
    h = std::max<int64_t>(1, std::lround(static_cast<double>(w) / kRatioMin));
  } else if (ratio > kRatioMax) {
    w = std::max<int64_t>(1, std::lround(static_cast<double>(h) * kRatioMax));
  }
  return CropBox{(height - h) / 2, (width - w) / 2, h, w};
}

void resize_crop(const DecodedImage& image, const CropBox& box, int64_t out_h, int64_t out_w, int64_t channels,
                 uint8_t* out) {
  check_image(image, channels, "resize_crop");
  if (out_h <= 0 || out_w <= 0 || box.height <= 0 || box.width <= 0 || box.top < 0 || box.left < 0 ||
      box.top + box.height > image.height || box.left + box.width > image.width) {
    throw IoError(fmt::format("resize_crop: box {}x{} at ({}, {}) is not inside a {}x{} image (output {}x{})",
                              box.height, box.width, box.top, box.left, image.height, image.width, out_h, out_w));
  }
  Taps tx = make_taps(box.width, out_w, 0, out_w), ty = make_taps(box.height, out_h, 0, out_h);
  for (auto& f : tx.first) f += box.left;
  for (auto& f : ty.first) f += box.top;
  apply_taps(image, tx, ty, channels, out);
}

std::string encode_jpeg(const DecodedImage& image, int quality) {
  check_image(image, image.channels, "encode_jpeg");
  if (quality < 1 || quality > 100) throw IoError(fmt::format("encode_jpeg: quality {} outside [1, 100]", quality));
  JpegEncodeJob job{};
  if (!jpeg_encode_run(&job, image.pixels.data(), image.height, image.width, image.channels, quality)) {
    std::free(job.buffer);
    throw IoError(fmt::format("encode_jpeg: {}", job.err.message));
  }
  std::string out(reinterpret_cast<const char*>(job.buffer), job.size);
  std::free(job.buffer);
  return out;
}

void transform_image(const std::string& bytes, const std::string& name, int64_t size, int64_t channels, uint64_t seed,
                    uint8_t* out) {
  if (seed == 0) {
    // The pixel-storage import calls this too, so both storages agree byte for byte.
    resize_center_crop(decode_image(bytes, name, size, channels == 1), size, channels, out);
    return;
  }
  const DecodedImage d = decode_image(bytes, name, 2 * size, channels == 1);
  resize_crop(d, random_resized_crop_box(d.height, d.width, seed), size, size, channels, out);
}

void for_each_tar_member(const std::string& path, const TarMemberFn& fn) {
  ArchiveReader tar(path);
  std::string name;
  uint64_t size = 0;
  while (tar.next(name, size)) fn(name, size, [&tar, &size] { return tar.read_data(size); });
}

}  // namespace runner::data
