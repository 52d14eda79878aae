// The `hac` command line: one registration function per subcommand file.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "train/loop.h"

namespace CLI {
class App;
}

namespace runner::app {

// What a parsed subcommand runs; returns the process exit code.
using Action = std::function<int()>;

void add_version(CLI::App& app, Action& action);
void add_selfcheck(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);
// `bench data` and `bench step`, under the `bench` subcommand.
void add_bench_work(CLI::App& bench, Action& action);
void add_checkpoint(CLI::App& app, Action& action);
void add_data(CLI::App& app, Action& action);
// `train`, `unlearn` and `config`.
void add_train(CLI::App& app, Action& action);

// `sweep` (grids on the local, mpi and slurm backends).
void add_sweep(CLI::App& app, Action& action);
// `collect` (tables and figures from result.json files).
void add_collect(CLI::App& app, Action& action);

// `eval`; and the evaluation train/unlearn run before writing COMPLETED.
void add_eval(CLI::App& app, Action& action);
std::function<std::string(const train::Trained&)> evaluation_hook();

// The text `hac --version` prints: the runner, its libraries and the git commit.
std::string version_text();

// The command line this process was started with (arguments joined by spaces), for provenance.
std::string command_line();

// config::check_device_supported with the config's source in the message (a ConfigError: exit 2).
void check_device(const config::Config& cfg, const std::string& source);

// The arguments after the program name with every bare `section.key=value` (after the first
// argument, not the value of --set or --label) preceded by `--set`: Hydra's and MERU's override
// habit, the same as --set.
std::vector<std::string> with_bare_overrides(const std::vector<std::string>& args);

// Parses argv, runs the chosen subcommand, returns its exit code. Throws UsageError for a bad
// command line and whatever the subcommand throws.
int run_cli(int argc, char** argv);

}  // namespace runner::app
