// The validating reader of dataset files (the contract of docs/data-format.md) and the JPEG row
// decoding; the writer is dataset_writer.cpp.
#include "data/dataset.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "data/sampler.h"
#include "data/h5_util.h"
#include "data/image.h"

namespace runner::data {

using h5::Handle;
using h5::dims_of;
using h5::make_space;

namespace {

bool link_exists(hid_t loc, const std::string& name) {
  // H5Lexists on "a/b" needs "a" to exist first.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    const std::string part = name.substr(0, pos);
    if (H5Lexists(loc, part.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

// Reads n strings (variable-length or fixed-size, any of h5py's encodings) from `dset` at the
// file selection `fspace` into `out[offset..]`.
void read_strings(hid_t dset, hid_t fspace, hsize_t n, std::vector<std::string>& out, size_t offset,
                  const std::string& file, const std::string& name) {
  Handle ftype(H5Dget_type(dset), H5Tclose);
  Handle mspace = make_space({n});
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype = h5::utf8_string_type();
    std::vector<char*> buf(n, nullptr);
    h5::check(H5Dread(dset, mtype.get(), mspace.get(), fspace, H5P_DEFAULT, buf.data()), "H5Dread", file, name);
    for (hsize_t i = 0; i < n; ++i) out[offset + i] = buf[i] != nullptr ? buf[i] : "";
    H5Dvlen_reclaim(mtype.get(), mspace.get(), H5P_DEFAULT, buf.data());
  } else {
    const size_t size = H5Tget_size(ftype.get());
    Handle mtype(H5Tcopy(ftype.get()), H5Tclose);
    std::vector<char> buf(n * size);
    h5::check(H5Dread(dset, mtype.get(), mspace.get(), fspace, H5P_DEFAULT, buf.data()), "H5Dread", file, name);
    for (hsize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out[offset + i] = std::string(p, strnlen(p, size));
    }
  }
}

std::vector<std::string> read_all_strings(hid_t dset, const std::string& file, const std::string& name) {
  const hsize_t n = dims_of(dset).at(0);
  std::vector<std::string> out(n);
  if (n > 0) read_strings(dset, H5S_ALL, n, out, 0, file, name);
  return out;
}

std::vector<int32_t> read_all_ints(hid_t dset, const std::string& file, const std::string& name) {
  const hsize_t n = dims_of(dset).at(0);
  std::vector<int32_t> out(n);
  if (n > 0) {
    h5::check(H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "H5Dread", file, name);
  }
  return out;
}

}  // namespace

// ----------------------------------------------------------------------------- concepts

void check_concept_parents(const std::vector<int32_t>& parent, const std::string& file) {
  const auto k = static_cast<int32_t>(parent.size());
  for (int32_t i = 0; i < k; ++i) {
    if (parent[i] < -1 || parent[i] >= k) {
      throw IoError(fmt::format("{}: /concept_parent[{}] = {} is outside [-1, {})", file, i, parent[i], k));
    }
    int32_t at = i;
    for (int32_t steps = 0; at != -1; ++steps) {
      if (steps > k) throw IoError(fmt::format("{}: /concept_parent has a cycle through concept {}", file, i));
      at = parent[at];
    }
  }
}


// ----------------------------------------------------------------------------- decoding

void parallel_rows(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (int64_t i = next++; i < n && !failed; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  const int64_t extra = std::min<int64_t>(n, std::max(threads, 1)) - 1;
  try {
    for (int64_t t = 0; t < extra; ++t) pool.emplace_back(work);
  } catch (...) {  // could not start a thread: the others finish the rows
  }
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

at::Tensor decode_jpeg_rows(const std::vector<std::string>& jpegs, const ImageShape& shape,
                            const std::vector<uint64_t>& crop_seeds, int threads, const std::string& where,
                            const std::vector<int64_t>& rows) {
  RUNNER_CHECK(shape.height == shape.width, IoError,
               fmt::format("{}: JPEG rows decode to square images only, not {}x{}", where, shape.height, shape.width));
  const auto n = static_cast<int64_t>(jpegs.size());
  at::Tensor out = at::empty({n, shape.height, shape.width, shape.channels}, at::kByte);
  uint8_t* dst = out.data_ptr<uint8_t>();
  const int64_t row_bytes = shape.bytes();
  parallel_rows(n, threads, [&](int64_t i) {
    const uint64_t seed = crop_seeds.empty() ? 0 : crop_seeds[static_cast<size_t>(i)];
    transform_image(jpegs[static_cast<size_t>(i)], fmt::format("{} row {}", where, rows.at(static_cast<size_t>(i))), shape.height, shape.channels,
                   seed, dst + i * row_bytes);
  });
  return out;
}

// ----------------------------------------------------------------------------- reader

struct DatasetFile::Handles {
  Handle file;
  std::map<std::string, Handle> images, captions;  // images: /<split>/jpeg for JPEG storage
};

DatasetFile::~DatasetFile() = default;

std::shared_ptr<DatasetFile> DatasetFile::open(const std::string& path, const Holdout& holdout) {
  h5::quiet_errors();
  if (access(path.c_str(), R_OK) != 0) {
    throw IoError(fmt::format("cannot read dataset file {}: {}", path, std::strerror(errno)));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::last_error();
    throw IoError(fmt::format("{} is not an HDF5 file (see docs/data-format.md)", path));
  }
  std::shared_ptr<DatasetFile> f(new DatasetFile());
  f->h_ = std::make_unique<Handles>();
  f->info_.path = path;
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // Many ranks and concurrent jobs read the same file; POSIX locks would serialise or fail them
  // (and fail outright on some parallel file systems).
  H5Pset_file_locking(fapl.get(), false, true);
  f->h_->file = h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose, "H5Fopen", path, "");
  const hid_t file = f->h_->file.get();

  auto open_dataset = [&](const std::string& name) {
    if (!link_exists(file, name)) {
      throw IoError(fmt::format("{}: missing dataset /{} (required by the dataset format, docs/data-format.md)",
                                path, name));
    }
    // Shuffled batches touch a different chunk per row; HDF5's default 1 MiB chunk cache holds
    // one image chunk. 64 MiB per image dataset keeps a small split entirely in cache after
    // the first epoch and many chunks of a large one.
    Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
    const auto ends_with = [&](const std::string& tail) {
      return name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends_with("/images") || ends_with("/jpeg")) {
      H5Pset_chunk_cache(dapl.get(), 12421, size_t{64} << 20, 1.0);
    }
    Handle d = h5::check(H5Dopen2(file, name.c_str(), dapl.get()), H5Dclose, "H5Dopen2", path, "/" + name);
    // Every filter the dataset's chunks pass through must be one this HDF5 library can decode;
    // otherwise the first read, deep in training, fails with a raw HDF5 error stack.
    Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
    const int nfilters = dcpl.get() >= 0 ? H5Pget_nfilters(dcpl.get()) : 0;
    for (int i = 0; i < nfilters; ++i) {
      unsigned flags = 0;
      size_t nelmts = 0;
      char fname[128] = {0};
      unsigned filter_config = 0;
      const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelmts, nullptr,
                                             sizeof fname, fname, &filter_config);
      if (id < 0) continue;
      if (H5Zfilter_avail(id) <= 0 || !(H5Zget_filter_info(id, &filter_config) >= 0 &&
                                        (filter_config & H5Z_FILTER_CONFIG_DECODE_ENABLED))) {
        throw IoError(fmt::format("{}: /{} is stored with HDF5 filter {} ('{}'), which this HDF5 library cannot "
                                  "decode; rewrite the file without it (e.g. h5repack -f NONE, or gzip, which "
                                  "every HDF5 build reads)", path, name, static_cast<int>(id),
                                  fname[0] != '\0' ? fname : "unnamed"));
      }
    }
    return d;
  };
  auto expect = [&](bool ok, const std::string& name, const std::string& what) {
    if (!ok) throw IoError(fmt::format("{}: /{} {}", path, name, what));
  };
  auto type_class = [](hid_t d) {
    Handle t(H5Dget_type(d), H5Tclose);
    return H5Tget_class(t.get());
  };

  Handle names = open_dataset("concept_names");
  expect(type_class(names.get()) == H5T_STRING && dims_of(names.get()).size() == 1, "concept_names",
         "must be a 1-d array of strings");
  f->info_.concept_names = read_all_strings(names.get(), path, "/concept_names");
  const auto k = static_cast<int32_t>(f->info_.concept_names.size());
  if (link_exists(file, "concept_parent")) {
    Handle parent = open_dataset("concept_parent");
    expect(type_class(parent.get()) == H5T_INTEGER && dims_of(parent.get()) == std::vector<hsize_t>{hsize_t(k)},
           "concept_parent", fmt::format("must be a 1-d integer array of length {} (one per concept name)", k));
    f->info_.concept_parent = read_all_ints(parent.get(), path, "/concept_parent");
    check_concept_parents(f->info_.concept_parent, path);
  }

  if (link_exists(file, "concept_display_names")) {
    Handle display = open_dataset("concept_display_names");
    expect(type_class(display.get()) == H5T_STRING && dims_of(display.get()) == std::vector<hsize_t>{hsize_t(k)},
           "concept_display_names", fmt::format("must be a 1-d array of {} strings (one per concept name)", k));
    f->info_.display_names = read_all_strings(display.get(), path, "/concept_display_names");
  }

  const bool jpeg = link_exists(file, "train/jpeg") || link_exists(file, "test/jpeg");
  f->info_.storage = jpeg ? kStorageJpeg : kStoragePixels;
  auto is_uint8 = [](hid_t d) {
    Handle t(H5Dget_type(d), H5Tclose);
    return H5Tget_class(t.get()) == H5T_INTEGER && H5Tget_size(t.get()) == 1 && H5Tget_sign(t.get()) == H5T_SGN_NONE;
  };
  for (const std::string& split : split_names()) {
    Handle images = open_dataset(split + (jpeg ? "/jpeg" : "/images"));
    Handle captions = open_dataset(split + "/captions");
    Handle concept = open_dataset(split + "/concept");
    expect(is_uint8(images.get()), split + (jpeg ? "/jpeg" : "/images"), "must be uint8");
    hsize_t n = 0;
    SplitInfo si;
    if (jpeg) {
      // JPEG storage: bytes back to back, one size per row, and the shape rows decode to.
      expect(dims_of(images.get()).size() == 1, split + "/jpeg", "must be a 1-d uint8 array (the JPEGs back to back)");
      Handle sizes = open_dataset(split + "/jpeg_size");
      expect(type_class(sizes.get()) == H5T_INTEGER && dims_of(sizes.get()).size() == 1, split + "/jpeg_size",
             "must be a 1-d integer array (each row's JPEG size in bytes)");
      Handle shape = open_dataset(split + "/image_shape");
      const std::vector<int32_t> hwc = type_class(shape.get()) == H5T_INTEGER && dims_of(shape.get()).size() == 1
                                           ? read_all_ints(shape.get(), path, "/" + split + "/image_shape")
                                           : std::vector<int32_t>{};
      expect(hwc.size() == 3 && hwc[0] > 0 && hwc[0] == hwc[1] && (hwc[2] == 1 || hwc[2] == 3),
             split + "/image_shape", "must be 3 integers H, W, C (H = W, C = 1 or 3): the shape rows decode to");
      n = dims_of(sizes.get())[0];
      std::vector<int64_t> sz(n);
      if (n > 0) {
        h5::check(H5Dread(sizes.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, sz.data()), "H5Dread", path,
                  "/" + split + "/jpeg_size");
      }
      std::vector<uint64_t> offsets(n + 1, 0);
      for (hsize_t i = 0; i < n; ++i) {
        expect(sz[i] > 0, split + "/jpeg_size", fmt::format("[{}] = {} is not a positive size", i, sz[i]));
        offsets[i + 1] = offsets[i] + static_cast<uint64_t>(sz[i]);
      }
      const hsize_t total = dims_of(images.get())[0];
      expect(offsets[n] == total, split + "/jpeg_size",
             fmt::format("sums to {} bytes but {}/jpeg holds {}", offsets[n], split, total));
      si.image = ImageShape{hwc[0], hwc[1], hwc[2]};
      si.stored_bytes = static_cast<int64_t>(total);
      f->jpeg_offsets_[split] = std::move(offsets);
    } else {
      const auto idims = dims_of(images.get());
      expect(idims.size() == 4 && (idims[3] == 1 || idims[3] == 3), split + "/images",
             fmt::format("must be [N, H, W, C] with C = 1 or 3, got {} dimensions", idims.size()));
      n = idims[0];
      si.image = ImageShape{static_cast<int64_t>(idims[1]), static_cast<int64_t>(idims[2]), static_cast<int64_t>(idims[3])};
      si.stored_bytes = static_cast<int64_t>(n) * si.image.bytes();
    }
    const std::string rows_of = split + (jpeg ? "/jpeg_size" : "/images");
    expect(type_class(captions.get()) == H5T_STRING && dims_of(captions.get()).size() == 1, split + "/captions",
           "must be a 1-d array of strings");
    expect(type_class(concept.get()) == H5T_INTEGER && dims_of(concept.get()).size() == 1, split + "/concept",
           "must be a 1-d integer array");
    expect(dims_of(captions.get())[0] == n, split + "/captions",
           fmt::format("has {} rows but {} has {}", dims_of(captions.get())[0], rows_of, n));
    expect(dims_of(concept.get())[0] == n, split + "/concept",
           fmt::format("has {} rows but {} has {}", dims_of(concept.get())[0], rows_of, n));
    std::vector<int32_t> c = read_all_ints(concept.get(), path, "/" + split + "/concept");
    for (size_t i = 0; i < c.size(); ++i) {
      expect(c[i] >= -1 && c[i] < k, split + "/concept",
             fmt::format("[{}] = {} is outside [-1, {}) ({} concept names)", i, c[i], k, k));
    }
    si.size = static_cast<int64_t>(n);
    f->info_.splits[split] = si;
    f->concepts_[split] = c;
    f->file_concepts_[split] = std::move(c);
    f->h_->images[split] = std::move(images);
    f->h_->captions[split] = std::move(captions);
  }
  // String attributes of the root group (format, builder, seed, ...).
  H5Aiterate2(
      file, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr,
      [](hid_t loc, const char* name, const H5A_info_t*, void* out) -> herr_t {
        Handle attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
        Handle type(H5Aget_type(attr.get()), H5Tclose);
        if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) <= 0) return 0;
        Handle mtype = h5::utf8_string_type();
        char* value = nullptr;
        if (H5Aread(attr.get(), mtype.get(), &value) >= 0 && value != nullptr) {
          (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
          H5free_memory(value);
        }
        return 0;
      },
      &f->info_.attributes);
  h5::last_error();
  f->apply_holdout(holdout);
  return f;
}

void DatasetFile::apply_holdout(const Holdout& holdout) {
  info_.holdout = holdout;
  if (holdout.fraction <= 0.0) return;
  const std::vector<int32_t>& all = file_concepts_.at("train");
  std::vector<int64_t> val = holdout_rows(all, holdout.fraction, holdout.seed);
  RUNNER_CHECK(!val.empty(), ConfigError,
               fmt::format("data.val_fraction: {} of {}/train ({} rows) holds out no row", holdout.fraction,
                           info_.path, all.size()));
  std::vector<int64_t> train;
  train.reserve(all.size() - val.size());
  std::string rows_text;  // the held-out rows' numbers, "r,": the fingerprint's input
  for (int64_t r : val) rows_text += std::to_string(r) + ",";
  for (size_t i = 0, v = 0; i < all.size(); ++i) {
    if (v < val.size() && val[v] == static_cast<int64_t>(i)) {
      ++v;
    } else {
      train.push_back(static_cast<int64_t>(i));
    }
  }
  RUNNER_CHECK(!train.empty(), ConfigError,
               fmt::format("data.val_fraction: {} holds out every row of {}/train", holdout.fraction, info_.path));
  for (const auto& [name, rows] : {std::pair<std::string, const std::vector<int64_t>*>{"train", &train}, {"val", &val}}) {
    std::vector<int32_t> c;
    c.reserve(rows->size());
    for (int64_t r : *rows) c.push_back(all[static_cast<size_t>(r)]);
    concepts_[name] = std::move(c);
    SplitInfo si = info_.splits.at("train");
    si.stored_bytes = all.empty() ? 0 : si.stored_bytes * static_cast<int64_t>(rows->size()) /
                                            static_cast<int64_t>(all.size());  // JPEG: approximate
    si.size = static_cast<int64_t>(rows->size());
    info_.splits[name] = si;
  }
  file_rows_["train"] = std::move(train);
  file_rows_["val"] = std::move(val);
  info_.val_fingerprint = fmt::format("{:016x}", core::fnv1a64(rows_text));
}

const std::vector<int32_t>& DatasetFile::concepts(const std::string& split) const {
  auto it = concepts_.find(split);
  if (it == concepts_.end()) throw IoError(fmt::format("{}: no split '{}'", info_.path, split));
  return it->second;
}

std::vector<int64_t> DatasetFile::map_rows(const std::string& split, const std::vector<int64_t>& rows,
                                           std::string* file_split) const {
  const auto mapped = file_rows_.find(split);
  if (mapped == file_rows_.end()) {
    (void)concepts(split);  // IoError for an unknown split
    *file_split = split;
    return rows;
  }
  const std::vector<int64_t>& m = mapped->second;
  std::vector<int64_t> file_rows(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= static_cast<int64_t>(m.size())) {
      throw IoError(fmt::format("{}: row {} of {} is outside [0, {})", info_.path, rows[i], split, m.size()));
    }
    file_rows[i] = m[static_cast<size_t>(rows[i])];
  }
  *file_split = "train";
  return file_rows;
}

Rows DatasetFile::read(const std::string& split, const std::vector<int64_t>& rows, bool with_images,
                       int decode_threads) const {
  std::string file_split;
  const std::vector<int64_t> file_rows = map_rows(split, rows, &file_split);
  if (!with_images) return read_file_rows(file_split, file_rows, ImageRead::kNone);
  if (info_.storage != kStorageJpeg) return read_file_rows(file_split, file_rows, ImageRead::kPixels);
  Rows r = read_file_rows(file_split, file_rows, ImageRead::kEncoded);
  const ImageShape& im = info_.splits.at(split).image;
  r.images = decode_jpeg_rows(r.encoded, im, /*crop_seeds=*/{}, decode_threads, info_.path + ": " + split, rows);
  r.encoded.clear();
  return r;
}

Rows DatasetFile::read_encoded(const std::string& split, const std::vector<int64_t>& rows) const {
  if (info_.storage != kStorageJpeg) {
    throw IoError(fmt::format("{}: stores decoded pixels, not JPEG (read it with read())", info_.path));
  }
  std::string file_split;
  const std::vector<int64_t> file_rows = map_rows(split, rows, &file_split);
  return read_file_rows(file_split, file_rows, ImageRead::kEncoded);
}

Rows DatasetFile::read_file_rows(const std::string& split, const std::vector<int64_t>& rows, ImageRead images) const {
  const std::vector<int32_t>& all_concepts = file_concepts_.at(split);
  SplitInfo si = info_.splits.at(split);
  si.size = static_cast<int64_t>(all_concepts.size());
  const hid_t image_data = h_->images.at(split).get();
  const hid_t captions = h_->captions.at(split).get();
  Rows out;
  const auto n = static_cast<int64_t>(rows.size());
  const bool pixels = images == ImageRead::kPixels, encoded = images == ImageRead::kEncoded;
  if (pixels) out.images = at::empty({n, si.image.height, si.image.width, si.image.channels}, at::kByte);
  if (encoded) out.encoded.resize(static_cast<size_t>(n));
  out.captions.resize(static_cast<size_t>(n));
  out.concepts.resize(static_cast<size_t>(n));
  auto* dst = pixels ? out.images.data_ptr<uint8_t>() : nullptr;
  const int64_t row_bytes = si.image.bytes();
  // Runs of consecutive rows, in the order asked for.
  std::vector<std::pair<int64_t, int64_t>> runs;  // (first row, length)
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && rows[j] == rows[j - 1] + 1) ++j;
    const int64_t first = rows[i], len = j - i;
    if (first < 0 || first + len > si.size) {
      throw IoError(fmt::format("{}: row {} of {} is outside [0, {})", info_.path, first < 0 ? first : first + len - 1,
                                split, si.size));
    }
    runs.emplace_back(first, len);
    i = j;
  }
  for (int64_t i = 0; i < n; ++i) out.concepts[i] = all_concepts[rows[i]];
  if (n == 0) return out;
  const hsize_t h = hsize_t(si.image.height), w = hsize_t(si.image.width), c = hsize_t(si.image.channels);
  // One read per run. (A single read over the union of the runs, H5S_SELECT_OR, measured 30%
  // slower with HDF5 1.10: building the union costs more than the calls it saves.)
  int64_t pos = 0;
  for (const auto& [first, len] : runs) {
    if (pixels) {
      Handle ispace(H5Dget_space(image_data), H5Sclose);
      const hsize_t start4[4] = {hsize_t(first), 0, 0, 0}, count4[4] = {hsize_t(len), h, w, c};
      H5Sselect_hyperslab(ispace.get(), H5S_SELECT_SET, start4, nullptr, count4, nullptr);
      Handle mspace = make_space({hsize_t(len), h, w, c});
      h5::check(H5Dread(image_data, H5T_NATIVE_UINT8, mspace.get(), ispace.get(), H5P_DEFAULT, dst + pos * row_bytes),
                "H5Dread", info_.path, split + "/images");
    } else if (encoded) {
      // The run's JPEGs are one byte range: one read, then cut at the row offsets.
      const std::vector<uint64_t>& off = jpeg_offsets_.at(split);
      const uint64_t lo = off[static_cast<size_t>(first)], hi = off[static_cast<size_t>(first + len)];
      std::string bytes(static_cast<size_t>(hi - lo), '\0');
      Handle jspace(H5Dget_space(image_data), H5Sclose);
      const hsize_t start1[1] = {hsize_t(lo)}, count1[1] = {hsize_t(hi - lo)};
      H5Sselect_hyperslab(jspace.get(), H5S_SELECT_SET, start1, nullptr, count1, nullptr);
      Handle mspace = make_space({hsize_t(hi - lo)});
      h5::check(H5Dread(image_data, H5T_NATIVE_UINT8, mspace.get(), jspace.get(), H5P_DEFAULT, bytes.data()),
                "H5Dread", info_.path, split + "/jpeg");
      for (int64_t k = 0; k < len; ++k) {
        const uint64_t a = off[static_cast<size_t>(first + k)], b = off[static_cast<size_t>(first + k + 1)];
        out.encoded[static_cast<size_t>(pos + k)] = bytes.substr(static_cast<size_t>(a - lo), static_cast<size_t>(b - a));
      }
    }
    Handle cspace(H5Dget_space(captions), H5Sclose);
    const hsize_t start1[1] = {hsize_t(first)}, count1[1] = {hsize_t(len)};
    H5Sselect_hyperslab(cspace.get(), H5S_SELECT_SET, start1, nullptr, count1, nullptr);
    read_strings(captions, cspace.get(), hsize_t(len), out.captions, static_cast<size_t>(pos), info_.path,
                 split + "/captions");
    pos += len;
  }
  return out;
}

Rows DatasetFile::read_range(const std::string& split, int64_t begin, int64_t end) const {
  std::vector<int64_t> rows(static_cast<size_t>(std::max<int64_t>(0, end - begin)));
  std::iota(rows.begin(), rows.end(), begin);
  return read(split, rows);
}

std::string describe_dataset(const DatasetFile& file) {
  const DatasetInfo& info = file.info();
  std::string out = fmt::format("{}\n", info.path);
  for (const auto& [k, v] : info.attributes) out += fmt::format("  {}: {}\n", k, v);
  if (info.holdout.fraction > 0.0) {
    out += fmt::format("validation split: {} of each concept's train rows (seed {}), fingerprint {}\n", info.holdout.fraction,
                       info.holdout.seed, info.val_fingerprint);
  }
  const auto k = info.concept_names.size();
  for (const auto& [split, si] : info.splits) {
    if (info.storage == kStorageJpeg) {
      out += fmt::format("{}: {} rows, JPEG ({:.1f} KB per row) decoded to {}x{}x{}\n", split, si.size,
                         si.size > 0 ? static_cast<double>(si.stored_bytes) / si.size / 1e3 : 0.0, si.image.height,
                         si.image.width, si.image.channels);
    } else {
      out += fmt::format("{}: {} rows, images {}x{}x{} uint8\n", split, si.size, si.image.height, si.image.width,
                         si.image.channels);
    }
    std::vector<int64_t> counts(k + 1, 0);
    for (int32_t c : file.concepts(split)) ++counts[c < 0 ? k : static_cast<size_t>(c)];
    for (size_t c = 0; c < k; ++c) {
      const bool shown = !info.display_names.empty() && info.display_names[c] != info.concept_names[c];
      out += fmt::format("  {:>4} {:<24} {}{}\n", c, info.concept_names[c], counts[c],
                         shown ? fmt::format("  (prompts: \"{}\")", info.display_names[c]) : "");
    }
    if (counts[k] > 0) out += fmt::format("  {:>4} {:<24} {}\n", -1, "(none)", counts[k]);
  }
  if (!info.concept_parent.empty()) {
    out += "hierarchy:\n";
    std::function<void(int32_t, int)> walk = [&](int32_t node, int depth) {
      for (size_t c = 0; c < k; ++c) {
        if (info.concept_parent[c] == node) {
          out += fmt::format("  {}{}\n", std::string(2 * depth, ' '), info.concept_names[c]);
          walk(static_cast<int32_t>(c), depth + 1);
        }
      }
    };
    walk(-1, 0);
  }
  return out;
}

void check_image_shape(const std::string& path, const ImageShape& im, int64_t size, int64_t channels,
                       const std::string& model) {
  if (im.height == size && im.width == size && im.channels == channels) return;
  throw ConfigError(fmt::format("{}: images are {}x{}x{} but {} takes {}x{}x{}", path, im.height, im.width,
                                im.channels, model, size, size, channels));
}

}  // namespace runner::data
