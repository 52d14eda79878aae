// `hac data import`: image-caption folders and WebDataset-style tars (JPEG/PNG) -> an HDF5
// image-text dataset (docs/data-format.md), streamed in batches through DatasetWriter.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace runner::data {

// A sample is every file sharing a key: the path up to the first '.' of the file name (as
// WebDataset cuts it), relative to the folder or as named in the tar without a leading "./".
//   <key>.jpg | .jpeg | .png     the image (first of these that is present)
//   <key>.txt                    the caption; else the "caption" string field of <key>.json
//   <key>.concept | .cls         the concept; else the `concept_field` field of <key>.json
// Samples without an image or caption, with unreadable metadata or an image that does not
// decode are skipped and counted, never fatal. Tar members of one sample must be adjacent
// (WebDataset writes them so); a folder is read recursively in key order.
//
// layout "imagefolder" (torchvision's ImageFolder: <source>/<class>/<name>.jpg, no caption files):
// the concept is the first folder below the source; the caption is <key>.txt or "caption" in
// <key>.json when present, else one of `templates` (picked by the key's hash) with {} replaced by
// the class's display name. Display names (what captions and zero-shot prompts say): the folder
// name with '_' as spaces, or a line of `display_names_file`.
struct ImportOptions {
  std::vector<std::string> sources;  // folders and .tar files (plain or compressed), in this order
  std::string out;
  int64_t size = 0;                  // images become size x size (shorter side, then center crop)
  int64_t channels = 3;              // 3 = RGB, 1 = grey (Rec.601 luma)
  double test_fraction = 0.1;
  uint64_t seed = 0;
  std::string concept_field = "subreddit";  // RedCaps' name for the community of a post
  std::string parents_file;          // optional "child<TAB>parent" lines: the concept hierarchy
  std::string layout = "samples";    // samples (WebDataset-style keys) | imagefolder (class folders)
  // imagefolder captions. None equals a default zero-shot prompt (eval.templates), so unlearning
  // never trains on the evaluation strings themselves.
  std::vector<std::string> templates = {"a picture showing a {}.", "an image of a {}.", "a {} in a picture"};
  std::string display_names_file;    // optional "concept<TAB>display name" lines (/concept_display_names)
  int threads = 0;                   // decoding threads; 0 = the machine's cores, at most 16
  int64_t batch_rows = 256;          // rows decoded and written per step (bounds the memory)
  // pixels: decoded, resized and center-cropped rows (size x size x channels). jpeg: each image as
  // a JPEG whose shorter side is at most jpeg_max_side (a source JPEG within it is kept byte for
  // byte; others are decoded, shrunk and encoded at jpeg_quality), decoded by the loader.
  std::string storage = "pixels";
  int64_t jpeg_max_side = 0;         // 0 = round(size * 8 / 7) (224 -> 256, the usual resize before a 224 crop)
  int jpeg_quality = 95;
  // Called after each batch is written with the samples handled so far. A hook, so tests can
  // make an import fail midway; an exception thrown here aborts the import like any other.
  std::function<void(int64_t)> after_batch;
};

struct ImportReport {
  int64_t train = 0, test = 0;
  int64_t no_image = 0, no_caption = 0, bad_metadata = 0, corrupt_image = 0;
  std::vector<std::string> first_problems;  // "<source>:<key>: <why>" for the first few skips
  std::vector<std::string> concept_names;
  int64_t unused_concepts = 0;  // concepts whose every sample had an undecodable image
  double seconds = 0;
};

// Imports every source into opts.out (written as <out>.partial, renamed on success: a failed
// or interrupted import leaves no file that looks complete). Concepts are the sorted distinct
// strings (plus their ancestors from parents_file), -1 where a sample has none. Reads the
// sources twice: once for the metadata (so the concept table exists before the first row is
// written), once to decode. Progress and a summary go to the log.
// Throws ConfigError for bad options or parents file, IoError naming the file for a missing or
// malformed source, a source that changes during the import, or a failed write.
ImportReport import_images(const ImportOptions& opts);

// The split rule: a sample is in the test split when u < test_fraction, where u in [0, 1) is
// the top 53 bits of splitmix64(fnv1a64(key) ^ splitmix64(seed)). It depends on the key and
// the seed only, so file order, sources and threads never change the split.
bool import_is_test(const std::string& key, uint64_t seed, double test_fraction);

// Calls fn(name, size, read) for every regular file of a tar (ustar, GNU long names and large
// sizes, pax records), plain or compressed (gzip, bzip2, xz, zstd, ...: libarchive's filters), in
// archive order, names without a leading "./" or "/"; read() returns the member's bytes, and
// members not read are skipped. Throws IoError naming the file for a malformed, truncated or
// corrupt archive.
using TarMemberFn =
    std::function<void(const std::string& name, uint64_t size, const std::function<std::string()>& read)>;
void for_each_tar_member(const std::string& path, const TarMemberFn& fn);

}  // namespace runner::data
