// HDF5 handle and error helpers.
#include "data/h5_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "core/error.h"

namespace runner::data::h5 {

void quiet_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {

herr_t collect(unsigned n, const H5E_error2_t* err, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (n > 0) *s += "; ";
  *s += err->desc != nullptr ? err->desc : "?";
  if (err->func_name != nullptr) *s += fmt::format(" ({})", err->func_name);
  return 0;
}

}  // namespace

std::string last_error() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &s);
  H5Eclear2(H5E_DEFAULT);
  return s;
}

void fail(const std::string& what, const std::string& file, const std::string& object) {
  const std::string lib = last_error();
  throw IoError(fmt::format("{} failed for {}{}{}{}", what, file, object.empty() ? "" : ":", object,
                            lib.empty() ? std::string() : ": " + lib));
}

Handle check(hid_t id, Handle::Closer close, const std::string& what, const std::string& file,
             const std::string& object) {
  if (id < 0) fail(what, file, object);
  return Handle(id, close);
}

void check(herr_t rc, const std::string& what, const std::string& file, const std::string& object) {
  if (rc < 0) fail(what, file, object);
}

Handle utf8_string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return Handle(t, H5Tclose);
}

Handle make_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max) {
  return Handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max ? max->data() : nullptr),
                H5Sclose);
}

std::vector<hsize_t> dims_of(hid_t dset) {
  Handle space(H5Dget_space(dset), H5Sclose);
  const int n = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> d(static_cast<size_t>(std::max(n, 0)));
  if (n > 0) H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
  return d;
}

}  // namespace runner::data::h5
