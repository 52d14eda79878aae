// Image-text datasets in HDF5 (docs/data-format.md): a streaming writer that never
// leaves a file that looks complete, and a validating read-only reader of row batches.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace runner::data {

constexpr const char* kDatasetFormat = "hac-dataset/1";

// How a file stores its images (docs/data-format.md): "pixels", decoded uint8 [N, H, W, C]
// (/<split>/images), or "jpeg", each row's encoded JPEG back to back (/<split>/jpeg, with
// /<split>/jpeg_size) decoded when read to the split's /<split>/image_shape.
constexpr const char* kStoragePixels = "pixels";
constexpr const char* kStorageJpeg = "jpeg";
inline const std::vector<std::string>& split_names() {
  static const std::vector<std::string> names = {"train", "test"};
  return names;
}

struct ImageShape {
  int64_t height = 0, width = 0, channels = 0;
  int64_t bytes() const { return height * width * channels; }
};

// ConfigError unless `split` of the dataset at `path` holds images of size x size x channels:
// "<path>: images are HxWxC but <model> takes SxSxC".
void check_image_shape(const std::string& path, const ImageShape& im, int64_t size, int64_t channels,
                       const std::string& model);

struct SplitInfo {
  int64_t size = 0;
  ImageShape image;         // the images read() and the loader deliver
  int64_t stored_bytes = 0; // image bytes on disk before HDF5 overhead (JPEG: encoded, pixels: N * H*W*C)
};

// A validation split carved from the train split when the file is opened (data.val_fraction,
// data.val_seed; data::holdout_rows): stratified per concept and seeded.
struct Holdout {
  double fraction = 0.0;  // 0 = no validation split
  uint64_t seed = 0;
};

struct DatasetInfo {
  std::string path;
  std::string storage = kStoragePixels;     // kStoragePixels | kStorageJpeg
  std::map<std::string, SplitInfo> splits;  // "train", "test", and "val" with a holdout
  Holdout holdout;
  std::string val_fingerprint;              // FNV-1a 64 of the held-out file rows (hex); "" = none
  std::vector<std::string> concept_names;
  std::vector<int32_t> concept_parent;      // empty when the file has no /concept_parent
  std::vector<std::string> display_names;   // /concept_display_names: what prompts say; empty = none
  std::map<std::string, std::string> attributes;  // string attributes of the root group
};

// A batch of rows: images uint8 [n, H, W, C], captions, concepts (-1 = none). read_encoded()
// leaves images undefined and fills `encoded` (one JPEG per row) instead.
struct Rows {
  at::Tensor images;
  std::vector<std::string> encoded;
  std::vector<std::string> captions;
  std::vector<int32_t> concepts;
};

// Decodes JPEG rows to uint8 [n, H, W, C] (data/image.h's transform_image) on up to `threads`
// threads. crop_seeds empty: every row as evaluation sees it; else one seed per row (0 = none).
// IoError "<where> row <rows[i]>: ..." for a corrupt JPEG (rows: the rows' numbers in their split).
at::Tensor decode_jpeg_rows(const std::vector<std::string>& jpegs, const ImageShape& shape,
                            const std::vector<uint64_t>& crop_seeds, int threads, const std::string& where,
                            const std::vector<int64_t>& rows);

// IoError naming `file` unless `parent` is a forest over [0, parent.size()): every index in
// [-1, k), no cycle (/concept_parent's rule).
void check_concept_parents(const std::vector<int32_t>& parent, const std::string& file);

// Calls fn(i) for i in [0, n) on up to `threads` threads (the caller's among them); the first
// exception thrown is rethrown once all have stopped.
void parallel_rows(int64_t n, int threads, const std::function<void(int64_t)>& fn);

// Writes a dataset file. Everything goes to `<path>.partial`; commit() closes it and renames it
// to `path`, so an interrupted build or import never leaves a file that looks complete (the
// destructor of an uncommitted writer removes the partial file). Images are chunked along N.
// Throws IoError naming the file, dataset and HDF5's message on any failure.
class DatasetWriter {
 public:
  explicit DatasetWriter(const std::string& path);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Appends rows to `split` ("train" or "test"); the first call fixes the split's image shape.
  // images: uint8 [n, H, W, C] (contiguous, CPU); captions and concepts of length n.
  void append(const std::string& split, const at::Tensor& images,
              const std::vector<std::string>& captions, const std::vector<int32_t>& concepts);
  // The JPEG storage: appends one encoded JPEG per row; `shape` is what a reader decodes them
  // to (every call of a split must give the same). A file is all pixels or all JPEG.
  void append_encoded(const std::string& split, const std::vector<std::string>& jpegs, const ImageShape& shape,
                      const std::vector<std::string>& captions, const std::vector<int32_t>& concepts);
  void set_concepts(const std::vector<std::string>& names, const std::vector<int32_t>& parent);
  // Optional: one display name per concept (/concept_display_names), the words zero-shot prompts
  // use instead of the concept name ("dogpictures" -> "dog"). Checked against the names at commit.
  void set_display_names(const std::vector<std::string>& names);
  void set_attribute(const std::string& key, const std::string& value);
  // Validates (both splits present, concepts in range) and publishes the file.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One read-only handle on a dataset file (file locking off, so many ranks and jobs may read it
// at once). With a holdout, split "val" is the held-out rows of the file's train split and "train"
// the others (each in file order); row indices of both are positions in them, so everything that
// reads "train" never sees a validation row. open() validates the whole contract before anything else happens: every dataset
// present with the right type and rank, lengths consistent, concept indices in range, the
// parent table acyclic; errors name the file and the dataset. Reads are thread-safe (Debian's
// serial HDF5 is built thread-safe) but serialised by HDF5's global lock.
class DatasetFile {
 public:
  static std::shared_ptr<DatasetFile> open(const std::string& path, const Holdout& holdout = {});
  ~DatasetFile();

  const DatasetInfo& info() const { return info_; }
  // The concept index of every row of `split` (read once at open).
  const std::vector<int32_t>& concepts(const std::string& split) const;
  // Rows of `split` at `rows` (any order, repeats allowed), in that order. Contiguous runs are
  // read with one hyperslab each. with_images = false reads captions and concepts only (images
  // left undefined). JPEG storage: images are decoded here (resize and center crop, as
  // evaluation sees them, on up to `decode_threads` threads).
  Rows read(const std::string& split, const std::vector<int64_t>& rows, bool with_images = true,
            int decode_threads = 1) const;
  // JPEG storage: as read(), but with each row's encoded bytes in Rows::encoded and no images
  // (the loader decodes them in its own threads). IoError for pixel storage.
  Rows read_encoded(const std::string& split, const std::vector<int64_t>& rows) const;
  // Rows [begin, end).
  Rows read_range(const std::string& split, int64_t begin, int64_t end) const;

 private:
  DatasetFile() = default;
  void apply_holdout(const Holdout& holdout);
  // Rows of the file's own split (no holdout mapping).
  enum class ImageRead { kNone, kPixels, kEncoded };
  Rows read_file_rows(const std::string& split, const std::vector<int64_t>& rows, ImageRead images) const;
  std::vector<int64_t> map_rows(const std::string& split, const std::vector<int64_t>& rows, std::string* file_split) const;
  struct Handles;
  std::unique_ptr<Handles> h_;
  DatasetInfo info_;
  std::map<std::string, std::vector<int32_t>> concepts_;       // per split as seen (holdout applied)
  std::map<std::string, std::vector<int32_t>> file_concepts_;  // per split of the file
  std::map<std::string, std::vector<int64_t>> file_rows_;      // "train"/"val" with a holdout: their file rows
  std::map<std::string, std::vector<uint64_t>> jpeg_offsets_;  // JPEG storage: per file split, N + 1 byte offsets
};

// `hac data info`: counts per split and concept, image shape, the hierarchy, attributes.
std::string describe_dataset(const DatasetFile& file);

}  // namespace runner::data
