// A scratch directory every rank agrees on, holding a small Fashion-MNIST file (fm.h5) made by
// rank 0: the shared set-up of the MPI suites that train or evaluate. Collective.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "data/fashion_mnist.h"
#include "comm/runtime.h"

namespace runner::testing_mpi {

inline std::string scratch_with_fashion_mnist(const std::string& name, int64_t train_rows, int64_t test_rows) {
  namespace fs = std::filesystem;
  const comm::CommPtr comm = comm::world();
  std::string d;
  if (comm->rank() == 0) {
    d = (fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
    fs::remove_all(d);
    fs::create_directories(d);
    data::FashionMnistOptions o;
    o.out = d + "/fm.h5";
    o.max_train = train_rows;
    o.max_test = test_rows;
    data::build_fashion_mnist(o);
  }
  d = comm->broadcast_string(d, 0);
  comm->barrier();
  return d;
}

}  // namespace runner::testing_mpi
