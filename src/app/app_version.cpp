// `hac version` / `hac --version`.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/version.h>

#include <iostream>

#include "app/app.h"
#include "core/build_info.h"
#include "data/hdf5_info.h"
#include "comm/runtime.h"

namespace runner::app {

std::string version_text() {
  std::string s;
  s += fmt::format("hac {} (git {})\n", core::runner_version(), core::git_commit());
  s += fmt::format("  LibTorch  {} (CUDA: {})\n", TORCH_VERSION, config::build_has_cuda() ? "yes" : "no");
  s += fmt::format("  MPI       {}\n", comm::mpi_library_version());
  s += fmt::format("  HDF5      {}\n", data::hdf5_version());
  s += fmt::format("  NCCL      {}\n", comm::nccl_version());
  s += fmt::format("  yaml-cpp  {}\n", core::yaml_cpp_version());
  return s;
}

void add_version(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("version", "Print the versions of hac and its libraries");
  cmd->callback([&action] {
    action = [] {
      std::cout << version_text();
      return 0;
    };
  });
}

}  // namespace runner::app
