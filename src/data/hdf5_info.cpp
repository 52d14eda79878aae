// HDF5 library version and build facts.
#include "data/hdf5_info.h"

#include <hdf5.h>

#include <fmt/format.h>

namespace runner::data {

std::string hdf5_version() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  hbool_t threadsafe = 0;
  H5is_library_threadsafe(&threadsafe);
  return fmt::format("{}.{}.{}{}", maj, min, rel, threadsafe ? " (thread-safe)" : "");
}

}  // namespace runner::data
