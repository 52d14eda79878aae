// The JPEG storage (docs/data-format.md): `hac data import --storage jpeg` against the pixel
// import of the same sources, the writer's and reader's checks, `hac data convert` both ways,
// and the image operations the loader uses (random resized crop, JPEG encoding).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <numeric>
#include <set>

#include "core/error.h"
#include "data/convert.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/image_import.h"
#include "import_fixtures.h"

namespace runner::data {
namespace {

using namespace import_fixtures;

DecodedImage as_decoded(const Image& im) { return DecodedImage{im.h, im.w, im.c, im.px}; }

// caption -> the row's pixels, as read() gives them.
std::map<std::string, std::vector<uint8_t>> pixels_by_caption(const DatasetFile& f) {
  std::map<std::string, std::vector<uint8_t>> out;
  for (const std::string& split : split_names()) {
    const Rows r = f.read_range(split, 0, f.info().splits.at(split).size);
    for (size_t i = 0; i < r.captions.size(); ++i) {
      const at::Tensor img = r.images[static_cast<int64_t>(i)].contiguous();
      out[r.captions[i]] = std::vector<uint8_t>(img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel());
    }
  }
  return out;
}

struct Sources {
  TempDir dir;
  std::string src = dir / "src";
  std::map<std::string, std::string> jpeg_of;  // caption -> the source file's bytes
  Sources() {
    // Shorter sides 12..24 stay within --jpeg-max-side 24 and are stored byte for byte; "big"
    // (shorter side 40) is shrunk to 24 and re-encoded; "png" is encoded.
    const std::vector<std::tuple<std::string, int64_t, int64_t>> jpegs = {
        {"a", 20, 24}, {"b", 24, 20}, {"c", 16, 16}, {"d", 12, 30}, {"e", 24, 24}, {"big", 40, 60}};
    int index = 0;
    for (const auto& [key, h, w] : jpegs) {
      const std::string bytes = encode_jpeg(gradient(h, w, 3, 200.0 / w, 200.0 / h), 90);
      write_file(src + "/" + key + ".jpg", bytes);
      write_file(src + "/" + key + ".txt", "caption " + key);
      write_file(src + "/" + key + ".cls", index++ % 2 == 0 ? "cat" : "dog");
      jpeg_of["caption " + key] = bytes;
    }
    write_file(src + "/png.png", png_cases(16, 3).front().bytes);
    write_file(src + "/png.txt", "caption png");
    write_file(src + "/png.cls", "dog");
  }
  ImportOptions options(const std::string& out, const std::string& storage) const {
    ImportOptions o;
    o.sources = {src};
    o.out = out;
    o.size = 16;
    o.test_fraction = 0.3;
    o.seed = 3;
    o.batch_rows = 2;
    o.storage = storage;
    o.jpeg_max_side = 24;
    return o;
  }
};

TEST(JpegStorage, ImportReadsAsThePixelImportOfTheSameBytes) {
  Sources s;
  const std::string px = s.dir / "px.h5", jp = s.dir / "jp.h5";
  import_images(s.options(px, "pixels"));
  import_images(s.options(jp, "jpeg"));
  auto fp = DatasetFile::open(px), fj = DatasetFile::open(jp);
  EXPECT_EQ(fp->info().storage, kStoragePixels);
  ASSERT_EQ(fj->info().storage, kStorageJpeg);
  for (const std::string& split : split_names()) {
    EXPECT_EQ(fj->info().splits.at(split).size, fp->info().splits.at(split).size) << split;
    const ImageShape im = fj->info().splits.at(split).image;
    EXPECT_EQ(im.height, 16);
    EXPECT_EQ(im.width, 16);
    EXPECT_EQ(im.channels, 3);
  }
  const auto want = pixels_by_caption(*fp), got = pixels_by_caption(*fj);
  ASSERT_EQ(got.size(), 7u);
  for (const auto& [caption, pixels] : want) {
    SCOPED_TRACE(caption);
    ASSERT_TRUE(got.count(caption));
    if (caption == "caption big" || caption == "caption png") continue;  // re-encoded: checked below
    EXPECT_EQ(got.at(caption), pixels);  // byte for byte: the same bytes through the same steps
  }
  // Kept JPEGs are the source files; the big one is re-encoded with its shorter side at 24.
  int64_t stored = 0;
  for (const std::string& split : split_names()) {
    const int64_t n = fj->info().splits.at(split).size;
    std::vector<int64_t> rows(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
    const Rows r = fj->read_encoded(split, rows);
    EXPECT_FALSE(r.images.defined());
    for (size_t i = 0; i < r.captions.size(); ++i) {
      stored += static_cast<int64_t>(r.encoded[i].size());
      if (r.captions[i] == "caption big") {
        const DecodedImage d = decode_image(r.encoded[i], "big");
        EXPECT_EQ(std::min(d.height, d.width), 24);
        EXPECT_EQ(std::max(d.height, d.width), 36);
      } else if (r.captions[i] == "caption png") {
        const DecodedImage d = decode_image(r.encoded[i], "png");  // encoded at its own size
        EXPECT_EQ(d.height, 16);
        EXPECT_EQ(d.width, 16);
      } else {
        EXPECT_EQ(r.encoded[i], s.jpeg_of.at(r.captions[i])) << r.captions[i];
      }
    }
    EXPECT_EQ(fj->info().splits.at(split).stored_bytes,
              std::accumulate(r.encoded.begin(), r.encoded.end(), int64_t{0},
                              [](int64_t a, const std::string& b) { return a + static_cast<int64_t>(b.size()); }));
  }
  EXPECT_GT(stored, 0);
  // The re-encoded smooth image is close to the pixel import (JPEG at quality 95). (The PNG is
  // noise, which JPEG's chroma subsampling cannot keep: only its decoded size is checked above.)
  const auto& a = got.at("caption big");
  const auto& b = want.at("caption big");
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::abs(int(a[i]) - int(b[i]));
  EXPECT_LT(diff / static_cast<double>(a.size()), 6.0);
  EXPECT_THROW(fp->read_encoded("train", {0}), IoError);
}

TEST(JpegStorage, ConvertBothWaysAndHoldout) {
  Sources s;
  const std::string px = s.dir / "px.h5", jp = s.dir / "jp.h5", back = s.dir / "back.h5";
  import_images(s.options(px, "pixels"));
  convert_dataset(ConvertOptions{px, jp, "jpeg", 90, 2});
  convert_dataset(ConvertOptions{jp, back, "pixels", 95, 3});
  auto fj = DatasetFile::open(jp), fb = DatasetFile::open(back), fp = DatasetFile::open(px);
  EXPECT_EQ(fj->info().storage, kStorageJpeg);
  EXPECT_EQ(fb->info().storage, kStoragePixels);
  EXPECT_EQ(fj->info().concept_names, fp->info().concept_names);
  EXPECT_EQ(fj->info().attributes.at("builder"), "hac data import");
  // The decoded copy reads exactly as the JPEG file does: the rows a test compares training on.
  EXPECT_EQ(pixels_by_caption(*fb), pixels_by_caption(*fj));
  EXPECT_THROW(convert_dataset(ConvertOptions{jp, s.dir / "again.h5", "jpeg", 90, 1}), ConfigError);
  EXPECT_THROW(convert_dataset(ConvertOptions{px, s.dir / "q.h5", "jpeg", 101, 1}), ConfigError);
  // With a validation holdout, "val" and "train" rows decode to the rows of the pixel file.
  auto hj = DatasetFile::open(jp, Holdout{0.4, 9}), hb = DatasetFile::open(back, Holdout{0.4, 9});
  for (const std::string split : {"train", "val"}) {
    const int64_t n = hj->info().splits.at(split).size;
    ASSERT_GT(n, 0) << split;
    const Rows a = hj->read_range(split, 0, n), b = hb->read_range(split, 0, n);
    EXPECT_EQ(a.captions, b.captions) << split;
    EXPECT_TRUE(at::equal(a.images, b.images)) << split;
  }
}

TEST(JpegStorage, WriterAndReaderRefuseBadRows) {
  TempDir dir;
  const std::string path = dir / "bad.h5";
  const std::string good = encode_jpeg(gradient(8, 8, 3, 10, 10));
  {
    DatasetWriter w(path);
    w.append_encoded("train", {good}, ImageShape{8, 8, 3}, {"x"}, {0});
    EXPECT_THROW(w.append("train", at::zeros({1, 8, 8, 3}, at::kByte), {"y"}, {0}), IoError);  // one storage per file
    EXPECT_THROW(w.append_encoded("train", {"not a jpeg"}, ImageShape{8, 8, 3}, {"y"}, {0}), IoError);
    EXPECT_THROW(w.append_encoded("test", {good}, ImageShape{8, 8, 2}, {"y"}, {0}), IoError);
    EXPECT_THROW(w.append_encoded("test", {good}, ImageShape{8, 6, 3}, {"y"}, {0}), IoError);  // not square
  }
  // A truncated JPEG is stored (it starts like one) but reading it names the file.
  const std::string truncated = good.substr(0, good.size() / 2);
  {
    DatasetWriter w(path);
    w.append_encoded("train", {good, truncated}, ImageShape{8, 8, 3}, {"x", "y"}, {0, 0});
    w.append_encoded("test", {good}, ImageShape{8, 8, 3}, {"z"}, {0});
    w.set_concepts({"c"}, {});
    w.commit();
  }
  auto f = DatasetFile::open(path);
  EXPECT_NO_THROW(f->read("train", {0}));
  try {
    f->read("train", {0, 1});
    ADD_FAILURE() << "a truncated JPEG decoded";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": train row 1"), std::string::npos) << e.what();
  }
  EXPECT_NE(describe_dataset(*f).find("JPEG"), std::string::npos);
}

// ----------------------------------------------------------------------------- image operations

TEST(ImageOps, RandomResizedCropBoxesFollowTheRecipe) {
  std::set<std::tuple<int64_t, int64_t, int64_t, int64_t>> distinct;
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    const CropBox b = random_resized_crop_box(120, 180, seed);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_LE(b.top + b.height, 120);
    ASSERT_LE(b.left + b.width, 180);
    const double area = static_cast<double>(b.height * b.width) / (120.0 * 180.0);
    const double aspect = static_cast<double>(b.width) / static_cast<double>(b.height);
    EXPECT_GE(area, 0.48) << seed;  // 0.5 up to rounding of the sides
    EXPECT_LE(area, 1.0) << seed;
    EXPECT_GE(aspect, 0.74) << seed;
    EXPECT_LE(aspect, 1.35) << seed;
    const CropBox again = random_resized_crop_box(120, 180, seed);
    EXPECT_EQ(std::make_tuple(again.top, again.left, again.height, again.width),
              std::make_tuple(b.top, b.left, b.height, b.width));
    distinct.emplace(b.top, b.left, b.height, b.width);
  }
  EXPECT_GT(distinct.size(), 1900u);
  // A very wide image: the fallback keeps the whole height at aspect 4/3, centred.
  const CropBox wide = random_resized_crop_box(10, 400, 7, 0.99, 1.0);
  EXPECT_EQ(wide.height, 10);
  EXPECT_EQ(wide.width, 13);
  EXPECT_EQ(wide.left, (400 - 13) / 2);
}

TEST(ImageOps, WholeImageCropIsTheCenterResizeOfASquare) {
  const DecodedImage im = as_decoded(random_image(20, 20, 3, 4));
  for (int64_t size : {20, 11, 32}) {
    std::vector<uint8_t> a(static_cast<size_t>(size * size * 3)), b(a.size());
    resize_crop(im, CropBox{0, 0, 20, 20}, size, size, 3, a.data());
    resize_center_crop(im, size, 3, b.data());
    EXPECT_EQ(a, b) << size;
  }
  std::vector<uint8_t> out(9 * 9 * 3);
  EXPECT_THROW(resize_crop(im, CropBox{15, 0, 10, 10}, 9, 9, 3, out.data()), IoError);
  const DecodedImage half = resize_shorter_side(as_decoded(random_image(40, 60, 3, 5)), 20);
  EXPECT_EQ(half.height, 20);
  EXPECT_EQ(half.width, 30);
}

TEST(ImageOps, EncodedJpegDecodesCloseToItsPixels) {
  for (int64_t c : {1, 3}) {
    const Image g = gradient(32, 48, c, 4.0, 6.0);
    const std::string bytes = encode_jpeg(as_decoded(g), 95);
    const DecodedImage d = decode_image(bytes, "encoded");
    ASSERT_EQ(d.height, 32);
    ASSERT_EQ(d.width, 48);
    ASSERT_EQ(d.channels, c);
    double diff = 0;
    for (size_t i = 0; i < g.px.size(); ++i) diff += std::abs(int(g.px[i]) - int(d.pixels[i]));
    EXPECT_LT(diff / static_cast<double>(g.px.size()), 2.0) << c;
  }
  EXPECT_THROW(encode_jpeg(as_decoded(gradient(8, 8, 3, 1, 1)), 0), IoError);
}

}  // namespace
}  // namespace runner::data
