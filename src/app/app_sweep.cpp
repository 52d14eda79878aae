// `hac sweep SPEC`: a grid of originals and unlearning runs on the local, mpi or slurm backend
// (docs/sweeps.md), and `--job stage:I` for one job in process (Slurm array tasks).
#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "app/app.h"
#include "config/config.h"
#include "config/sweep_spec.h"
#include "config/validate.h"
#include "core/error.h"
#include "core/lock.h"
#include "comm/runtime.h"
#include "sweep/backend.h"
#include "sweep/preflight.h"
#include "sweep/report.h"
#include "sweep/results.h"
#include "train/loop.h"

namespace runner::app {

namespace fs = std::filesystem;

namespace {

struct SweepCli {
  std::string spec;
  std::string job;
  std::string root;                   // overrides the spec's root
  std::vector<std::string> overrides;  // appended to the spec's set and originals.set
  int64_t ranks = 0;                  // overrides the spec's ranks
  std::string backend = "local";      // one of sweep::backend_names()
  bool dry_run = false;               // list the grid with each job's status; run nothing (any backend)
  bool check = false;                 // the preflight and the cost; run nothing
  sweep::PreflightOptions preflight;
  bool share = false;                 // several coordinators on one sweep (the per-run locks keep runs single)
  sweep::BackendOptions o;
};

// A job in this process, on `comm`, with the evaluation and the job's labels.
int run_in_process(const sweep::Job& j, const comm::CommPtr& comm) {
  train::RunInfo info{command_line(), version_text(), 0, evaluation_hook(), j.labels};
  return j.original ? train::run_pretrain(j.cfg, comm, info) : train::run_unlearn(j.cfg, comm, info);
}

int run(SweepCli& c) {
  config::SweepSpec spec = config::load_sweep_spec(c.spec);
  if (!c.root.empty()) spec.root = c.root;
  if (c.ranks > 0) spec.ranks = c.ranks;
  spec.set.insert(spec.set.end(), c.overrides.begin(), c.overrides.end());
  spec.original_set.insert(spec.original_set.end(), c.overrides.begin(), c.overrides.end());
  if (!c.o.slurm.prelude_path.empty()) {
    // Read now: a missing file is a usage error before anything is submitted.
    c.o.slurm.prelude_path = fs::absolute(c.o.slurm.prelude_path).string();
    c.o.slurm.prelude = config::read_config_text(c.o.slurm.prelude_path, "--prelude file");
  }
  std::vector<std::string>& spec_args = c.o.slurm.spec_args;
  if (!c.root.empty()) spec_args.insert(spec_args.end(), {"--root", c.root});
  if (c.ranks > 0) spec_args.insert(spec_args.end(), {"--ranks", std::to_string(c.ranks)});
  for (const auto& kv : c.overrides) spec_args.insert(spec_args.end(), {"--set", kv});
  c.o.common.command = command_line();
  {
    // The slurm options again, for the job that submits the points after a selection stage.
    std::vector<std::string>& r = c.o.slurm.resubmit_args;
    const sweep::SlurmOptions& so = c.o.slurm;
    if (!so.partition.empty()) r.insert(r.end(), {"--partition", so.partition});
    r.insert(r.end(), {"--time", so.time_limit});
    if (so.throttle > 0) r.insert(r.end(), {"--throttle", std::to_string(so.throttle)});
    if (so.max_array > 0) r.insert(r.end(), {"--max-array", std::to_string(so.max_array)});
    if (!so.sbatch_args.empty()) r.insert(r.end(), {"--sbatch-args", so.sbatch_args});
    if (!so.threads.empty()) r.insert(r.end(), {"--threads", so.threads});
    if (!so.prelude_path.empty()) r.insert(r.end(), {"--prelude", so.prelude_path});
    if (c.o.common.rerun_failed) r.push_back("--rerun-failed");
  }
  c.o.slurm.spec_path = c.spec;
  c.o.mpi.run = run_in_process;
  if (!c.job.empty()) {
    auto world = comm::init_world({});
    const int code = sweep::run_one_job(spec, c.job, world, run_in_process);
    comm::finalize_world();
    return code;
  }
  const auto backend = sweep::make_backend(c.backend, c.o);
  if (c.dry_run) {
    const sweep::Grid g = sweep::expand(spec);
    sweep::print_grid(g);
    // A device this build cannot use stops a dry run too: the plan could never run here.
    for (const auto* jobs : {&g.originals, &g.points}) {
      for (const auto& j : *jobs) config::check_device_supported(j.cfg);
    }
    return 0;
  }
  if (c.check) {
    return sweep::print_preflight(sweep::preflight(sweep::expand(spec), c.preflight)) == 0 ? 0 : 2;
  }
  {
    // The coordinator's preflight: what would fail hours later fails now, every problem at once.
    // Under the mpi backend every rank coordinates: rank 0 checks (each file opened once, not
    // once per rank) and tells the others, and every rank stops with the same exit code.
    const comm::CommPtr world = c.backend == "mpi" ? comm::init_world({}) : nullptr;
    int64_t problems = 0;
    if (!world || world->rank() == 0) {
      const sweep::PreflightReport r = sweep::preflight(sweep::expand(spec), c.preflight);
      if (!r.problems.empty()) sweep::print_preflight(r);
      problems = static_cast<int64_t>(r.problems.size());
    }
    if (world) {
      at::Tensor n = at::full({1}, problems, at::kLong);
      world->broadcast(n, 0);
      problems = n[0].item<int64_t>();
      if (problems > 0) comm::finalize_world();  // a clean exit 2 on every rank, not an abort
    }
    if (problems > 0) {
      throw ConfigError(fmt::format("{}: the preflight found {} problem(s) (listed {}); nothing was started", c.spec,
                                    problems, world && world->rank() != 0 ? "by rank 0" : "above"));
    }
  }
  // One local coordinator per sweep at a time, unless asked to share: each run's own lock still
  // keeps every run to one process. (The slurm backend only submits, and its own job reruns the
  // sweep after a selection stage while `--wait` may still hold on; the mpi backend's ranks all
  // coordinate. Their runs are kept single by the runs' locks.)
  core::DirLock lock;
  if (!c.share && c.backend == "local") lock = core::DirLock::acquire((fs::path(spec.root) / spec.name).string(), "sweep");
  return backend->run(spec);
}

}  // namespace

void add_sweep(CLI::App& app, Action& action) {
  auto c = std::make_shared<SweepCli>();
  auto* cmd = app.add_subcommand("sweep", "Run a grid of originals and unlearning runs (docs/sweeps.md)");
  cmd->add_option("SPEC", c->spec, "Sweep spec (YAML: name, base, set, originals, axes)")->required();
  cmd->add_option("--backend", c->backend, "local | mpi | slurm")->check(CLI::IsMember(sweep::backend_names()));
  cmd->add_option("--root", c->root, "Results root instead of the spec's (originals cache: ROOT/originals)");
  cmd->add_option("--set", c->overrides,
                  "Config override for every job, originals included (repeatable), e.g. --set train.steps=50");
  cmd->add_option("--ranks", c->ranks, "Ranks per run instead of the spec's (points that set ranks keep theirs)");
  cmd->add_flag("--dry-run", c->dry_run, "Print the grid with each job's status; run nothing");
  cmd->add_flag("--check", c->check,
                "Preflight: check every dataset, checkpoint, concept, vocabulary, the device and the root, list "
                "every problem (exit 2 if any) and the grid's cost; run nothing");
  cmd->add_option("--samples-per-s", c->preflight.samples_per_s,
                  "--check: samples/s of one job for the device-hours estimate (default: measured on completed runs)");
  cmd->add_flag("--share", c->share,
                "Allow another coordinator on this sweep at the same time (each run is still locked to one process)");
  cmd->add_flag("--rerun-failed", c->o.common.rerun_failed,
                "Run FAILED jobs again (they resume from their checkpoints)");
  cmd->add_flag("--fail-fast", c->o.common.fail_fast, "Start nothing new after the first failure");
  cmd->add_option("--jobs", c->o.local.jobs, "local: concurrent runs (default: cores / ranks per run)");
  cmd->add_option("--mpirun", c->o.local.mpirun, "local: the mpirun for runs of several ranks");
  cmd->add_option("--hac", c->o.common.hac, "The hac executable the jobs run (default: this one)");
  cmd->add_option("--job", c->job, "Run one job of the grid in this process: originals:I, trials:I or points:I");
  cmd->add_option("--partition", c->o.slurm.partition, "slurm: sbatch --partition");
  cmd->add_option("--time", c->o.slurm.time_limit, "slurm: time limit per array task");
  cmd->add_option("--throttle", c->o.slurm.throttle, "slurm: at most K array tasks at once (%K)");
  cmd->add_option("--max-array", c->o.slurm.max_array, "slurm: split arrays above this size (default: MaxArraySize)");
  cmd->add_option("--sbatch-args", c->o.slurm.sbatch_args, "slurm: extra sbatch arguments for the array tasks");
  cmd->add_option("--threads", c->o.slurm.threads, "slurm: HAC_NUM_THREADS for the array tasks");
  cmd->add_option("--prelude", c->o.slurm.prelude_path,
                  "slurm: a file of shell lines run first in every generated batch script (module load ..., source env.sh)");
  cmd->add_flag("--wait", c->o.slurm.wait, "slurm: wait until the collect job has ended; exit 1 unless all COMPLETED");
  cmd->callback([&action, c] { action = [c] { return run(*c); }; });
}

void add_collect(CLI::App& app, Action& action) {
  auto o = std::make_shared<sweep::CollectOptions>();
  auto no_figures = std::make_shared<bool>(false);
  auto if_gnuplot = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("collect", "Results under DIR -> long CSV, tables (md, tex, csv), figures (docs/results.md)");
  cmd->add_option("DIR", o->dir, "Folder searched for result.json files (a sweep's results/<name>)")->required();
  cmd->add_option("--out", o->out, "Output folder (default: DIR/collected)");
  cmd->add_flag("--no-figures", *no_figures, "Tables only");
  cmd->add_flag("--figures-if-gnuplot", *if_gnuplot,
                "Draw the figures when gnuplot runs here, else write the tables and say the figures were skipped");
  cmd->add_option("--gnuplot", o->gnuplot, "The gnuplot executable");
  cmd->callback([&action, o, no_figures, if_gnuplot] {
    action = [o, no_figures, if_gnuplot] {
      o->figures = !*no_figures;
      o->figures_if_gnuplot = *if_gnuplot;
      const sweep::CollectSummary s = sweep::collect(*o);
      (void)s;
      return 0;
    };
  });
}

}  // namespace runner::app
