// `hac data import`: the seeded split and the batched, multi-threaded decode into a DatasetWriter
// (reading the sources' samples, metadata and concepts: import_samples.cpp).
#include "data/image_import.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/import_samples.h"

namespace runner::data {

using namespace import_samples;

namespace {

constexpr size_t kMaxProblemsNamed = 8;
constexpr double kProgressSeconds = 5.0;

}  // namespace

bool import_is_test(const std::string& key, uint64_t seed, double test_fraction) {
  const double u = static_cast<double>(core::splitmix64(core::fnv1a64(key) ^ core::splitmix64(seed)) >> 11) * 0x1.0p-53;
  return u < test_fraction;
}

namespace {

// The second pass, one batch at a time.
class Importer {
 public:
  Importer(const ImportOptions& o, const ConceptTable& concepts, std::vector<std::string> display, int64_t expected)
      : o_(o), concepts_(concepts), display_(std::move(display)), expected_(expected), writer_(o.out), start_(Clock::now()), last_log_(start_) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    threads_ = o.threads > 0 ? o.threads : static_cast<int>(std::min(cores, 16u));
    row_bytes_ = o.size * o.size * o.channels;
    jpeg_ = o.storage == kStorageJpeg;
    max_side_ = o.jpeg_max_side > 0 ? o.jpeg_max_side : (o.size * 8 + 3) / 7;
  }

  void add(SampleFiles&& s) {
    SampleMeta meta = read_meta(s, o_.concept_field);
    if (meta.verdict != Verdict::kOk) {
      skip(meta.verdict, s.where + ": " + meta.why);
    } else {
      batch_.push_back({std::move(s), std::move(meta)});
      if (static_cast<int64_t>(batch_.size()) >= o_.batch_rows) run_batch();
    }
  }

  ImportReport finish() {
    run_batch();
    for (auto& [split, rows] : pending_) flush(split, rows);
    for (const std::string& split : split_names()) {
      // Both groups must exist for the file to be valid, even when one split is empty.
      if (opened_.count(split)) continue;
      if (jpeg_) {
        writer_.append_encoded(split, {}, ImageShape{o_.size, o_.size, o_.channels}, {}, {});
      } else {
        writer_.append(split, at::empty({0, o_.size, o_.size, o_.channels}, at::kByte), {}, {});
      }
    }
    if (report_.train + report_.test == 0) {
      throw IoError(fmt::format("{}: no sample could be imported ({} without image, {} without caption, {} with bad "
                                "metadata, {} with corrupt images){}", o_.out, report_.no_image, report_.no_caption,
                                report_.bad_metadata, report_.corrupt_image,
                                report_.first_problems.empty() ? "" : "; first: " + report_.first_problems[0]));
    }
    writer_.set_concepts(concepts_.names, concepts_.parent);
    if (display_ != concepts_.names) writer_.set_display_names(display_);
    std::string sources;
    for (const auto& s : o_.sources) sources += (sources.empty() ? "" : " ") + s;
    writer_.set_attribute("builder", "hac data import");
    writer_.set_attribute("source", sources);
    writer_.set_attribute("image_size", std::to_string(o_.size));
    writer_.set_attribute("channels", std::to_string(o_.channels));
    writer_.set_attribute("seed", std::to_string(o_.seed));
    writer_.set_attribute("test_fraction", fmt::format("{}", o_.test_fraction));
    writer_.set_attribute("split_rule", "test iff top 53 bits of splitmix64(fnv1a64(key) ^ splitmix64(seed)) "
                                        "/ 2^53 < test_fraction");
    writer_.set_attribute("layout", o_.layout);
    if (o_.layout == "imagefolder") {
      std::string templates;
      for (const auto& t : o_.templates) templates += (templates.empty() ? "" : " | ") + t;
      writer_.set_attribute("caption_templates", templates);
    } else {
      writer_.set_attribute("concept_field", o_.concept_field);
    }
    writer_.set_attribute("resize", "shorter side to image_size (area average when shrinking, bilinear when "
                                    "enlarging), center crop");
    if (jpeg_) {
      writer_.set_attribute("jpeg", fmt::format("source JPEGs with shorter side <= {} kept byte for byte; others "
                                                "shrunk to it and encoded at quality {}", max_side_, o_.jpeg_quality));
    }
    writer_.commit();
    report_.concept_names = concepts_.names;
    for (size_t i = 0; i < concepts_.names.size(); ++i) {
      const bool is_parent = std::find(concepts_.parent.begin(), concepts_.parent.end(), static_cast<int32_t>(i)) !=
                             concepts_.parent.end();
      if (!used_concepts_.count(static_cast<int32_t>(i)) && !is_parent) ++report_.unused_concepts;
    }
    report_.seconds = seconds_since(start_);
    return report_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Work {
    SampleFiles files;
    SampleMeta meta;
  };
  struct Pending {
    std::vector<uint8_t> images;
    std::vector<std::string> jpegs;
    std::vector<std::string> captions;
    std::vector<int32_t> concepts;
  };

  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  void skip(Verdict v, const std::string& why) {
    (v == Verdict::kNoImage ? report_.no_image
     : v == Verdict::kNoCaption ? report_.no_caption
     : v == Verdict::kBadMetadata ? report_.bad_metadata
                                  : report_.corrupt_image)++;
    if (report_.first_problems.size() < kMaxProblemsNamed) report_.first_problems.push_back(why);
    ++handled_;
  }

  // Decodes the batch on threads_ threads (each sample into its own slot), then routes rows in
  // input order, so the output is the same for any thread count.
  void run_batch() {
    if (batch_.empty()) return;
    const size_t n = batch_.size();
    std::vector<uint8_t> pixels(jpeg_ ? 0 : n * static_cast<size_t>(row_bytes_));
    std::vector<std::string> jpegs(jpeg_ ? n : 0);
    std::vector<std::string> errors(n);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          const Work& w = batch_[i];
          const Member& img = w.files.members[static_cast<size_t>(w.meta.image)];
          if (!img.problem.empty()) throw IoError(img.problem);
          const std::string name = w.files.where + "." + img.ext;
          if (jpeg_) {
            jpegs[i] = to_stored_jpeg(img.data, name);
          } else {
            transform_image(img.data, name, o_.size, o_.channels, 0, pixels.data() + i * static_cast<size_t>(row_bytes_));
          }
        } catch (const std::exception& e) {
          errors[i] = e.what();
          if (errors[i].empty()) errors[i] = "unknown decoding error";
        }
      }
    };
    std::vector<std::thread> pool;
    const size_t extra = std::min<size_t>(n, static_cast<size_t>(threads_)) - 1;
    try {
      for (size_t t = 0; t < extra; ++t) pool.emplace_back(work);
    } catch (...) {  // could not start a thread: finish on this one, then report
      work();
      for (auto& th : pool) th.join();
      throw;
    }
    work();
    for (auto& th : pool) th.join();

    for (size_t i = 0; i < n; ++i) {
      Work& w = batch_[i];
      if (!errors[i].empty()) {
        skip(Verdict::kCorruptImage, errors[i]);
        continue;
      }
      int32_t concept_id = -1;
      if (w.meta.has_concept) {
        const auto it = concepts_.index.find(w.meta.concept_name);
        if (it == concepts_.index.end()) {
          throw IoError(fmt::format("{}: concept '{}' was not there in the first pass (did the source change "
                                    "during the import?)", w.files.where, w.meta.concept_name));
        }
        concept_id = it->second;
        used_concepts_.insert(concept_id);
      }
      const std::string split = import_is_test(w.files.key, o_.seed, o_.test_fraction) ? "test" : "train";
      Pending& p = pending_[split];
      if (jpeg_) {
        p.jpegs.push_back(std::move(jpegs[i]));
      } else {
        const uint8_t* row = pixels.data() + i * static_cast<size_t>(row_bytes_);
        p.images.insert(p.images.end(), row, row + row_bytes_);
      }
      p.captions.push_back(std::move(w.meta.caption));
      p.concepts.push_back(concept_id);
      ++(split == "test" ? report_.test : report_.train);
      ++handled_;
      if (static_cast<int64_t>(p.captions.size()) >= o_.batch_rows) flush(split, p);
    }
    batch_.clear();
    progress();
    if (o_.after_batch) o_.after_batch(handled_);
  }

  void flush(const std::string& split, Pending& p) {
    if (p.captions.empty()) return;
    const auto rows = static_cast<int64_t>(p.captions.size());
    if (jpeg_) {
      writer_.append_encoded(split, p.jpegs, ImageShape{o_.size, o_.size, o_.channels}, p.captions, p.concepts);
    } else {
      writer_.append(split, at::from_blob(p.images.data(), {rows, o_.size, o_.size, o_.channels}, at::kByte),
                     p.captions, p.concepts);
    }
    opened_.insert(split);
    p = Pending{};
  }

  // JPEG storage: the bytes to store for one source image. The whole image is decoded first (a
  // corrupt one is skipped here, not found by the loader mid-training); a JPEG within the size
  // limit is kept as it is, anything else is shrunk to it (never enlarged) and encoded.
  std::string to_stored_jpeg(const std::string& bytes, const std::string& name) const {
    const DecodedImage d = decode_image(bytes, name);
    const bool is_jpeg = bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
                         static_cast<unsigned char>(bytes[1]) == 0xD8;
    const int64_t shorter = std::min(d.height, d.width);
    if (is_jpeg && shorter <= max_side_) return bytes;
    return encode_jpeg(shorter > max_side_ ? resize_shorter_side(d, max_side_) : d, o_.jpeg_quality);
  }

  void progress() {
    if (seconds_since(last_log_) < kProgressSeconds) return;
    last_log_ = Clock::now();
    const double s = seconds_since(start_);
    core::log_info("import: {}/{} samples ({:.0f} samples/s), {} train, {} test, {} skipped", handled_, expected_,
                   handled_ / std::max(s, 1e-9), report_.train, report_.test,
                   report_.no_image + report_.no_caption + report_.bad_metadata + report_.corrupt_image);
  }

  const ImportOptions& o_;
  const ConceptTable& concepts_;
  std::vector<std::string> display_;  // per concept
  int64_t expected_ = 0, handled_ = 0, row_bytes_ = 0, max_side_ = 0;
  bool jpeg_ = false;
  int threads_ = 1;
  DatasetWriter writer_;
  Clock::time_point start_, last_log_;
  std::vector<Work> batch_;
  std::map<std::string, Pending> pending_;
  std::set<std::string> opened_;
  std::set<int32_t> used_concepts_;
  ImportReport report_;
};

}  // namespace

ImportReport import_images(const ImportOptions& opts) {
  check_options(opts);
  const auto start = std::chrono::steady_clock::now();
  // Pass 1: metadata only (images are skipped by seeking), for the concept table and a total.
  std::set<std::string> used;
  int64_t expected = 0;
  const std::map<std::string, std::string> display = read_display_names(opts.display_names_file);
  for (const std::string& source : opts.sources) {
    for_each_import_sample(source, /*with_images=*/false, opts, display, [&](SampleFiles&& s) {
      const SampleMeta m = read_meta(s, opts.concept_field);
      ++expected;
      if (m.verdict == Verdict::kOk && m.has_concept) used.insert(m.concept_name);
    });
  }
  const ConceptTable concepts = make_concepts(used, opts.parents_file);
  core::log_info("import: {} samples in {} source(s), {} concepts; decoding to {}x{}x{}", expected,
                 opts.sources.size(), concepts.names.size(), opts.size, opts.size, opts.channels);

  // Pass 2: decode and write. The writer's destructor deletes the partial file on any throw.
  std::vector<std::string> display_names;
  for (const std::string& c : concepts.names) {
    const auto it = display.find(c);
    display_names.push_back(it != display.end()                ? it->second
                            : opts.layout == "imagefolder" ? folder_display_name(c)
                                                           : c);
  }
  Importer importer(opts, concepts, display_names, expected);
  for (const std::string& source : opts.sources) {
    for_each_import_sample(source, /*with_images=*/true, opts, display,
                           [&](SampleFiles&& s) { importer.add(std::move(s)); });
  }
  ImportReport r = importer.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t skipped = r.no_image + r.no_caption + r.bad_metadata + r.corrupt_image;
  core::log_info("import: wrote {}: {} train + {} test rows of {}x{}x{}, {} concepts{}, in {:.1f} s ({:.0f} samples/s)",
                 opts.out, r.train, r.test, opts.size, opts.size, opts.channels, r.concept_names.size(),
                 r.unused_concepts > 0 ? fmt::format(" ({} left without rows by corrupt images)", r.unused_concepts) : "",
                 r.seconds, (r.train + r.test + skipped) / std::max(r.seconds, 1e-9));
  if (skipped > 0) {
    std::string first;
    for (const auto& p : r.first_problems) first += "\n  " + p;
    core::log_info("import: skipped {} samples: {} without image, {} without caption, {} with bad metadata, {} with "
                   "corrupt images; the first:{}", skipped, r.no_image, r.no_caption, r.bad_metadata,
                   r.corrupt_image, first);
  }
  return r;
}

}  // namespace runner::data
