// The dispatcher: builds the command line from every subcommand's registration and runs one.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>
#include <fmt/format.h>

#include <iostream>

#include "app/app.h"
#include "core/error.h"
#include "core/suggest.h"
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

void check_device(const config::Config& cfg, const std::string& source) {
  try {
    config::check_device_supported(cfg);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", source, e.what()));
  }
}

std::string command_line() { return command_line_storage(); }

std::vector<std::string> with_bare_overrides(const std::vector<std::string>& args) {
  static const std::regex kOverride(R"(^[a-z_]+\.[a-z_0-9]+=.*)");
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool value_of_option = i > 0 && (args[i - 1] == "--set" || args[i - 1] == "--label");
    if (i > 0 && !value_of_option && std::regex_match(args[i], kOverride)) out.emplace_back("--set");
    out.push_back(args[i]);
  }
  return out;
}

int run_cli(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) command_line_storage() += (i ? " " : "") + std::string(argv[i]);
  // The launcher's rank labels messages (usage errors included) before MPI is initialised.
  const comm::LaunchEnv env = comm::detect_launch_env();
  core::log_set_rank(env.rank, env.world_size);
  core::log_debug("{}", core::tune_allocator());
  CLI::App app{"hac: machine unlearning for CLIP and MERU, from one process to a cluster", "hac"};
  app.require_subcommand(0, 1);
  // Every option's default appears in the help (CLI11 captures it when the option is added).
  app.option_defaults()->always_capture_default();
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
  // Hydra's and MERU's habit: a bare `section.key=value` after the subcommand is `--set section.key=value`.
  std::vector<std::string> args(argv + 1, argv + argc);
  args = with_bare_overrides(args);
  if (!args.empty() && args[0][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), args[0]) == names.end()) {
      throw UsageError(fmt::format("unknown subcommand '{}'{} (run `hac --help`)", args[0],
                                   core::did_you_mean(args[0], names)));
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
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
