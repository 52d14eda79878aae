// Internal to src/data: RAII HDF5 handles and HDF5 errors turned into IoError with the call,
// the file, the object and the library's own message.
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>
#include <vector>

namespace runner::data::h5 {

// Silences HDF5's automatic error printing once per process; messages are collected instead.
void quiet_errors();
// HDF5's current error stack as one line ("" when empty).
std::string last_error();
// Throws IoError "<what> failed for <file>:<object>: <HDF5 message>".
[[noreturn]] void fail(const std::string& what, const std::string& file, const std::string& object);

// Owns an hid_t and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Checks an id returned by HDF5 and wraps it; throws via fail() when negative.
Handle check(hid_t id, Handle::Closer close, const std::string& what, const std::string& file,
             const std::string& object);
// Checks a herr_t.
void check(herr_t rc, const std::string& what, const std::string& file, const std::string& object);

// A variable-length UTF-8 string type (memory and file alike).
Handle utf8_string_type();

// A simple dataspace of `dims` (maximum `max`, e.g. H5S_UNLIMITED along N, when given).
Handle make_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max = nullptr);
// The current dimensions of a dataset.
std::vector<hsize_t> dims_of(hid_t dset);

}  // namespace runner::data::h5
