// Facts about the HDF5 library this binary links (the only place outside src/data that needs
// them is `hac --version`).
#pragma once

#include <string>

namespace runner::data {

// "1.10.8" (the runtime library's version), plus " (thread-safe)" when built thread-safe.
std::string hdf5_version();

}  // namespace runner::data
