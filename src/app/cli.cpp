// The dispatcher: builds the command line from every subcommand's registration and runs one.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "app/app.h"
#include "core/error.h"
#include "core/log.h"
#include "core/allocator.h"
#include "comm/launch_env.h"

namespace runner::app {

namespace {
std::string& command_line_storage() {
  static std::string line;
  return line;
}
}  // namespace

std::string command_line() { return command_line_storage(); }

int run_cli(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) command_line_storage() += (i ? " " : "") + std::string(argv[i]);
  // The launcher's rank labels messages (usage errors included) before MPI is initialised.
  const comm::LaunchEnv env = comm::detect_launch_env();
  core::log_set_rank(env.rank, env.world_size);
  core::log_debug("{}", core::tune_allocator());
  CLI::App app{"hac: machine unlearning for CLIP and MERU, from one process to a cluster", "hac"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the versions of hac and its libraries");
  Action action;
  add_version(app, action);
  add_selfcheck(app, action);
  add_bench(app, action);
  add_checkpoint(app, action);
  add_data(app, action);
  add_train(app, action);
  add_eval(app, action);
  add_sweep(app, action);
  add_collect(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    // help() descends into the subcommand that was named, as `hac bench comm --help` expects.
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    throw UsageError(fmt::format("{} (run `hac --help`)", e.what()));
  }
  if (show_version) {
    std::cout << version_text();
    return 0;
  }
  if (!action) {
    std::cout << app.help();
    return core::kExitUsage;
  }
  return action();
}

}  // namespace runner::app
