// DatasetWriter (dataset.h): a dataset file written to <path>.partial and renamed when complete.
#include "data/dataset.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/h5_util.h"

namespace runner::data {

using h5::Handle;
using h5::dims_of;
using h5::make_space;

namespace {

bool is_split(const std::string& s) {
  return std::find(split_names().begin(), split_names().end(), s) != split_names().end();
}

}  // namespace

// ----------------------------------------------------------------------------- writer

struct DatasetWriter::Impl {
  std::string path, partial;
  Handle file;
  struct SplitHandles {
    Handle images, captions, concept;
    Handle jpeg, jpeg_size;  // JPEG storage (images unused)
    ImageShape shape;
    hsize_t size = 0, jpeg_bytes = 0;
  };
  std::string storage;  // fixed by the first append
  std::map<std::string, SplitHandles> splits;
  std::vector<std::string> concept_names;
  std::vector<std::string> display_names;
  std::vector<int32_t> concept_parent;
  bool concepts_set = false, committed = false;
  int32_t max_concept = -1;

  void fix_storage(const std::string& kind) {
    if (storage.empty()) storage = kind;
    if (storage != kind) {
      throw IoError(fmt::format("{}: rows stored as {} cannot join a file of {} rows (a file is all pixels or all "
                                "JPEG)", path, kind, storage));
    }
  }

  SplitHandles& open_split(const std::string& split, const ImageShape& shape) {
    auto it = splits.find(split);
    if (it != splits.end()) return it->second;
    Handle group = h5::check(H5Gcreate2(file.get(), ("/" + split).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             H5Gclose, "H5Gcreate2", partial, split);
    SplitHandles s;
    s.shape = shape;
    const auto h = static_cast<hsize_t>(shape.height), w = static_cast<hsize_t>(shape.width),
               c = static_cast<hsize_t>(shape.channels);
    auto create = [&](const char* name, hid_t type, std::vector<hsize_t> chunk) {
      std::vector<hsize_t> dims = chunk, max = chunk;
      dims[0] = 0;
      max[0] = H5S_UNLIMITED;
      Handle space = make_space(dims, &max);
      Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
      const std::string obj = split + "/" + name;
      return h5::check(H5Dcreate2(group.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                       H5Dclose, "H5Dcreate2", partial, obj);
    };
    if (storage == kStorageJpeg) {
      // Encoded bytes back to back; a row is the byte range its size gives. 256 KiB chunks (about
      // ten 224 px rows): a shuffled batch reads about as many bytes per row as from pixels.
      s.jpeg = create("jpeg", H5T_NATIVE_UINT8, {hsize_t{1} << 18});
      s.jpeg_size = create("jpeg_size", H5T_NATIVE_INT64, {4096});
    } else {
      // About 1 MiB of images per chunk: large sequential reads, small random-row overhead.
      const hsize_t rows = std::max<hsize_t>(1, std::min<hsize_t>(4096, (hsize_t{1} << 20) / (h * w * c)));
      s.images = create("images", H5T_NATIVE_UINT8, {rows, h, w, c});
    }
    Handle str = h5::utf8_string_type();
    s.captions = create("captions", str.get(), {1024});
    s.concept = create("concept", H5T_NATIVE_INT32, {4096});
    return splits.emplace(split, std::move(s)).first->second;
  }

  void extend_and_write(hid_t dset, hsize_t old_n, hsize_t n, hid_t mtype, const void* data,
                        const std::string& obj) {
    std::vector<hsize_t> dims = dims_of(dset);
    dims[0] = old_n + n;
    h5::check(H5Dset_extent(dset, dims.data()), "H5Dset_extent", partial, obj);
    Handle fspace(H5Dget_space(dset), H5Sclose);
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = old_n;
    count[0] = n;
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    Handle mspace = make_space(count);
    h5::check(H5Dwrite(dset, mtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), "H5Dwrite", partial, obj);
  }
};

DatasetWriter::DatasetWriter(const std::string& path) : impl_(std::make_unique<Impl>()) {
  h5::quiet_errors();
  impl_->path = path;
  impl_->partial = path + ".partial";
  impl_->file = h5::check(H5Fcreate(impl_->partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                          "H5Fcreate", impl_->partial, "");
}

DatasetWriter::~DatasetWriter() {
  if (impl_ && !impl_->committed) {
    impl_->splits.clear();
    impl_->file.reset();
    std::remove(impl_->partial.c_str());
  }
}

void DatasetWriter::append(const std::string& split, const at::Tensor& images,
                           const std::vector<std::string>& captions, const std::vector<int32_t>& concepts) {
  if (!is_split(split)) throw IoError(fmt::format("{}: unknown split '{}' (train, test)", impl_->path, split));
  if (images.dim() != 4 || images.scalar_type() != at::kByte || !images.device().is_cpu()) {
    throw IoError(fmt::format("{}: images must be uint8 [n, H, W, C] on the CPU, got {} {}", impl_->path,
                              c10::toString(images.scalar_type()), c10::str(images.sizes())));
  }
  const int64_t n = images.size(0);
  if (static_cast<int64_t>(captions.size()) != n || static_cast<int64_t>(concepts.size()) != n) {
    throw IoError(fmt::format("{}: {} images but {} captions and {} concepts", impl_->path, n, captions.size(),
                              concepts.size()));
  }
  ImageShape shape{images.size(1), images.size(2), images.size(3)};
  if (shape.channels != 1 && shape.channels != 3) {
    throw IoError(fmt::format("{}: images need 1 or 3 channels, got {}", impl_->path, shape.channels));
  }
  impl_->fix_storage(kStoragePixels);
  auto& s = impl_->open_split(split, shape);
  if (s.shape.height != shape.height || s.shape.width != shape.width || s.shape.channels != shape.channels) {
    throw IoError(fmt::format("{}: {} images are {}x{}x{}, these are {}x{}x{}", impl_->path, split, s.shape.height,
                              s.shape.width, s.shape.channels, shape.height, shape.width, shape.channels));
  }
  if (n == 0) return;
  for (int32_t c : concepts) impl_->max_concept = std::max(impl_->max_concept, c);
  at::Tensor img = images.contiguous();
  std::vector<const char*> ptrs(captions.size());
  for (size_t i = 0; i < captions.size(); ++i) ptrs[i] = captions[i].c_str();
  Handle str = h5::utf8_string_type();
  const auto un = static_cast<hsize_t>(n);
  impl_->extend_and_write(s.images.get(), s.size, un, H5T_NATIVE_UINT8, img.data_ptr(), split + "/images");
  impl_->extend_and_write(s.captions.get(), s.size, un, str.get(), ptrs.data(), split + "/captions");
  impl_->extend_and_write(s.concept.get(), s.size, un, H5T_NATIVE_INT32, concepts.data(), split + "/concept");
  s.size += un;
}

void DatasetWriter::append_encoded(const std::string& split, const std::vector<std::string>& jpegs,
                                   const ImageShape& shape, const std::vector<std::string>& captions,
                                   const std::vector<int32_t>& concepts) {
  if (!is_split(split)) throw IoError(fmt::format("{}: unknown split '{}' (train, test)", impl_->path, split));
  const auto n = static_cast<int64_t>(jpegs.size());
  if (static_cast<int64_t>(captions.size()) != n || static_cast<int64_t>(concepts.size()) != n) {
    throw IoError(fmt::format("{}: {} images but {} captions and {} concepts", impl_->path, n, captions.size(),
                              concepts.size()));
  }
  if ((shape.channels != 1 && shape.channels != 3) || shape.height < 1 || shape.width != shape.height) {
    throw IoError(fmt::format("{}: JPEG rows must decode to square SxSx1 or SxSx3 images, got {}x{}x{}", impl_->path,
                              shape.height, shape.width, shape.channels));
  }
  impl_->fix_storage(kStorageJpeg);
  auto& s = impl_->open_split(split, shape);
  if (s.shape.height != shape.height || s.shape.width != shape.width || s.shape.channels != shape.channels) {
    throw IoError(fmt::format("{}: {} images decode to {}x{}x{}, these to {}x{}x{}", impl_->path, split,
                              s.shape.height, s.shape.width, s.shape.channels, shape.height, shape.width,
                              shape.channels));
  }
  if (n == 0) return;
  std::string bytes;
  std::vector<int64_t> sizes(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const std::string& j = jpegs[static_cast<size_t>(i)];
    if (j.size() < 3 || static_cast<unsigned char>(j[0]) != 0xFF || static_cast<unsigned char>(j[1]) != 0xD8) {
      throw IoError(fmt::format("{}: {} row {} is not a JPEG ({} bytes)", impl_->path, split, s.size + i, j.size()));
    }
    sizes[static_cast<size_t>(i)] = static_cast<int64_t>(j.size());
    bytes += j;
  }
  for (int32_t c : concepts) impl_->max_concept = std::max(impl_->max_concept, c);
  std::vector<const char*> ptrs(captions.size());
  for (size_t i = 0; i < captions.size(); ++i) ptrs[i] = captions[i].c_str();
  Handle str = h5::utf8_string_type();
  const auto un = static_cast<hsize_t>(n);
  impl_->extend_and_write(s.jpeg.get(), s.jpeg_bytes, bytes.size(), H5T_NATIVE_UINT8, bytes.data(), split + "/jpeg");
  impl_->extend_and_write(s.jpeg_size.get(), s.size, un, H5T_NATIVE_INT64, sizes.data(), split + "/jpeg_size");
  impl_->extend_and_write(s.captions.get(), s.size, un, str.get(), ptrs.data(), split + "/captions");
  impl_->extend_and_write(s.concept.get(), s.size, un, H5T_NATIVE_INT32, concepts.data(), split + "/concept");
  s.size += un;
  s.jpeg_bytes += bytes.size();
}

void DatasetWriter::set_concepts(const std::vector<std::string>& names, const std::vector<int32_t>& parent) {
  if (!parent.empty() && parent.size() != names.size()) {
    throw IoError(fmt::format("{}: {} concept names but {} parents", impl_->path, names.size(), parent.size()));
  }
  check_concept_parents(parent, impl_->path);
  impl_->concept_names = names;
  impl_->concept_parent = parent;
  impl_->concepts_set = true;
}

void DatasetWriter::set_display_names(const std::vector<std::string>& names) { impl_->display_names = names; }

void DatasetWriter::set_attribute(const std::string& key, const std::string& value) {
  Handle str = h5::utf8_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(impl_->file.get(), key.c_str()) > 0) H5Adelete(impl_->file.get(), key.c_str());
  Handle attr = h5::check(H5Acreate2(impl_->file.get(), key.c_str(), str.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                          H5Aclose, "H5Acreate2", impl_->partial, key);
  const char* p = value.c_str();
  h5::check(H5Awrite(attr.get(), str.get(), &p), "H5Awrite", impl_->partial, key);
}

void DatasetWriter::commit() {
  Impl& m = *impl_;
  for (const auto& name : split_names()) {
    if (!m.splits.count(name)) throw IoError(fmt::format("{}: no rows were written to the {} split", m.path, name));
  }
  if (!m.concepts_set) throw IoError(fmt::format("{}: concept names were never set", m.path));
  if (m.max_concept >= static_cast<int32_t>(m.concept_names.size())) {
    throw IoError(fmt::format("{}: concept index {} but only {} concept names", m.path, m.max_concept,
                              m.concept_names.size()));
  }
  Handle str = h5::utf8_string_type();
  std::vector<const char*> ptrs;
  for (const auto& s : m.concept_names) ptrs.push_back(s.c_str());
  auto write_1d = [&](const char* name, hid_t type, const void* data, hsize_t n) {
    Handle space = make_space({n});
    Handle d = h5::check(H5Dcreate2(m.file.get(), name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         H5Dclose, "H5Dcreate2", m.partial, name);
    if (n > 0) h5::check(H5Dwrite(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "H5Dwrite", m.partial, name);
  };
  write_1d("concept_names", str.get(), ptrs.data(), ptrs.size());
  if (!m.display_names.empty()) {
    if (m.display_names.size() != m.concept_names.size()) {
      throw IoError(fmt::format("{}: {} display names for {} concept names", m.path, m.display_names.size(),
                                m.concept_names.size()));
    }
    std::vector<const char*> dptrs;
    for (const auto& d : m.display_names) {
      if (d.empty()) throw IoError(fmt::format("{}: an empty display name", m.path));
      dptrs.push_back(d.c_str());
    }
    write_1d("concept_display_names", str.get(), dptrs.data(), dptrs.size());
  }
  if (!m.concept_parent.empty()) {
    write_1d("concept_parent", H5T_NATIVE_INT32, m.concept_parent.data(), m.concept_parent.size());
  }
  if (m.storage == kStorageJpeg) {
    for (const auto& [split, sh] : m.splits) {
      const int32_t dims[3] = {static_cast<int32_t>(sh.shape.height), static_cast<int32_t>(sh.shape.width),
                               static_cast<int32_t>(sh.shape.channels)};
      write_1d((split + "/image_shape").c_str(), H5T_NATIVE_INT32, dims, 3);
    }
  }
  set_attribute("format", kDatasetFormat);
  set_attribute("storage", m.storage.empty() ? kStoragePixels : m.storage);
  m.splits.clear();
  h5::check(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), "H5Fflush", m.partial, "");
  m.file.reset();
  if (std::rename(m.partial.c_str(), m.path.c_str()) != 0) {
    throw IoError(fmt::format("cannot rename {} to {}: {}", m.partial, m.path, std::strerror(errno)));
  }
  m.committed = true;
}

}  // namespace runner::data
