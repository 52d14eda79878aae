// `hac data convert` (data/convert.h).
#include "data/convert.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"

namespace runner::data {

void convert_dataset(const ConvertOptions& o) {
  RUNNER_CHECK(o.storage == kStoragePixels || o.storage == kStorageJpeg, ConfigError,
               fmt::format("--storage must be pixels or jpeg, got '{}'", o.storage));
  RUNNER_CHECK(o.jpeg_quality >= 1 && o.jpeg_quality <= 100, ConfigError,
               fmt::format("--jpeg-quality must be in [1, 100], got {}", o.jpeg_quality));
  RUNNER_CHECK(o.in != o.out, ConfigError, fmt::format("convert: the output {} is the input", o.out));
  auto in = DatasetFile::open(o.in);
  const DatasetInfo& info = in->info();
  RUNNER_CHECK(info.storage != o.storage, ConfigError,
               fmt::format("{} already stores {} images; nothing to convert", o.in, o.storage));
  const int threads = decode_threads_for(o.threads, 1);
  DatasetWriter w(o.out);
  for (const std::string& split : split_names()) {
    const SplitInfo& si = info.splits.at(split);
    const ImageShape shape = si.image;
    const int64_t slice = std::max<int64_t>(1, (int64_t{64} << 20) / std::max<int64_t>(1, shape.bytes()));
    if (si.size == 0) {
      if (o.storage == kStorageJpeg) {
        w.append_encoded(split, {}, shape, {}, {});
      } else {
        w.append(split, at::empty({0, shape.height, shape.width, shape.channels}, at::kByte), {}, {});
      }
    }
    for (int64_t begin = 0; begin < si.size; begin += slice) {
      std::vector<int64_t> rows(static_cast<size_t>(std::min(si.size, begin + slice) - begin));
      std::iota(rows.begin(), rows.end(), begin);
      Rows r = in->read(split, rows, /*with_images=*/true, threads);
      if (o.storage == kStorageJpeg) {
        const auto n = static_cast<int64_t>(rows.size());
        std::vector<std::string> jpegs(static_cast<size_t>(n));
        const at::Tensor px = r.images.contiguous();
        const uint8_t* p = px.data_ptr<uint8_t>();
        parallel_rows(n, threads, [&](int64_t i) {
          DecodedImage im;
          im.height = shape.height;
          im.width = shape.width;
          im.channels = shape.channels;
          im.pixels.assign(p + i * shape.bytes(), p + (i + 1) * shape.bytes());
          jpegs[static_cast<size_t>(i)] = encode_jpeg(im, o.jpeg_quality);
        });
        w.append_encoded(split, jpegs, shape, r.captions, r.concepts);
      } else {
        w.append(split, r.images, r.captions, r.concepts);
      }
      core::log_info("convert: {} {}/{} rows", split, rows.back() + 1, si.size);
    }
  }
  w.set_concepts(info.concept_names, info.concept_parent);
  if (!info.display_names.empty()) w.set_display_names(info.display_names);
  for (const auto& [key, value] : info.attributes) {
    if (key != "format" && key != "storage" && key != "jpeg") w.set_attribute(key, value);
  }
  w.set_attribute("converted_from", fmt::format("{} ({} storage)", o.in, info.storage));
  if (o.storage == kStorageJpeg) w.set_attribute("jpeg", fmt::format("rows encoded at quality {}", o.jpeg_quality));
  w.commit();
  core::log_info("convert: wrote {} ({} storage)", o.out, o.storage);
}

}  // namespace runner::data
