// `hac train`, `hac unlearn` and `hac config`: a YAML config plus --set overrides, then the
// training loop (src/train) on however many ranks the job was started with.
#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>

#include "app/app.h"
#include "config/config.h"
#include "core/error.h"
#include "comm/runtime.h"
#include "train/loop.h"
#include "unlearn/registry.h"

namespace runner::app {

namespace {

struct RunOptions {
  std::string config;
  std::vector<std::string> overrides;
  int64_t stop_after = 0;
  std::vector<std::string> labels;  // key=value
};

int run_job(const RunOptions& o, bool unlearning) {
  // Every rank parses the same file first: a bad config fails everywhere before any collective.
  const config::Config cfg = config::load_config(o.config, o.overrides);
  unlearn::check_method(cfg);
  check_device(cfg, o.config);
  comm::InitOptions init;
  init.threads = static_cast<int>(cfg.dist.threads);
  auto comm = comm::init_world(init);
  train::RunInfo info{command_line(), version_text(), o.stop_after, evaluation_hook(), {}};
  for (const std::string& l : o.labels) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError(fmt::format("--label '{}': expected key=value", l));
    info.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  const int code = unlearning ? train::run_unlearn(cfg, comm, info) : train::run_pretrain(cfg, comm, info);
  comm::finalize_world();
  return code;
}

void add_run_options(CLI::App* cmd, RunOptions& o) {
  cmd->add_option("CONFIG", o.config, "YAML config (sections data, model, train, unlearn, eval, dist, output)")
      ->required();
  cmd->add_option("--set", o.overrides, "Override a key: --set section.key=value, or bare section.key=value (repeatable; lists as [a, b])");
  cmd->add_option("--label", o.labels, "key=value stored under \"labels\" in result.json (repeatable; sweeps use it)");
  cmd->add_option("--stop-after", o.stop_after,
                  "Checkpoint and stop (status PREEMPTED, exit 75) once this many steps are done; rerun to resume");
}

}  // namespace

void add_train(CLI::App& app, Action& action) {
  auto t = std::make_shared<RunOptions>();
  auto* train = app.add_subcommand("train", "Pretrain a CLIP or MERU model (an original for unlearning)");
  add_run_options(train, *t);
  train->callback([&action, t] { action = [t] { return run_job(*t, /*unlearning=*/false); }; });

  auto u = std::make_shared<RunOptions>();
  auto* unlearn = app.add_subcommand(
      "unlearn", fmt::format("Make a model forget concepts: {} (one grid point)", fmt::join(unlearn::method_names(), ", ")));
  add_run_options(unlearn, *u);
  std::string methods = "Methods (unlearn.method):\n";
  for (const unlearn::MethodInfo& m : unlearn::methods()) methods += fmt::format("  {:<8} {}\n", m.name, m.help);
  unlearn->footer(methods);
  unlearn->callback([&action, u] { action = [u] { return run_job(*u, /*unlearning=*/true); }; });

  auto c = std::make_shared<RunOptions>();
  auto reference = std::make_shared<bool>(false);
  auto methods_table = std::make_shared<bool>(false);
  auto* cfg = app.add_subcommand("config", "Print the resolved config (every key), its run id, or the key reference");
  cfg->add_option("CONFIG", c->config, "YAML config (omit for the defaults)");
  cfg->add_option("--set", c->overrides, "Override a key: --set section.key=value");
  cfg->add_flag("--reference", *reference, "Print the Markdown reference of every key (docs/config.md)");
  cfg->add_flag("--methods", *methods_table, "Print the Markdown table of the unlearning methods (docs/training.md)");
  cfg->callback([&action, c, reference, methods_table] {
    action = [c, reference, methods_table] {
      if (*reference) {
        std::cout << config::reference_markdown();
        return 0;
      }
      if (*methods_table) {
        std::cout << unlearn::methods_markdown();
        return 0;
      }
      const config::Config resolved = c->config.empty() ? config::parse_config("", "<defaults>", c->overrides)
                                                         : config::load_config(c->config, c->overrides);
      unlearn::check_method(resolved);
      check_device(resolved, c->config.empty() ? "<defaults>" : c->config);
      std::cout << "# run id " << config::semantic_hash(resolved) << "; run directory " << config::run_dir(resolved)
                << "\n" << config::to_yaml(resolved);
      return 0;
    };
  });
}

}  // namespace runner::app
