// `hac collect DIR` (docs/results.md): every result.json under DIR -> a long-format CSV (one row
// per run x metric) -> paper tables (Markdown, LaTeX booktabs, CSV) whose cells are means with 95 %
// t intervals and their n, paired comparisons and the claims' verdicts, and gnuplot figures (PNG
// and PDF). Selection trials (stage "trial") are read but never enter a table. Idempotent; no torch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/result_file.h"

namespace runner::sweep {

// One run as the tables see it.
struct RunRecord {
  std::string dir;          // relative to the collected folder
  std::string abs_dir;
  std::string run_id, status, kind, method, error;  // status: as result.json writes it (the long CSV)
  train::RunStatus run_status = train::RunStatus::kAbsent;  // status parsed: what comparisons use
  std::string variant;      // method, or hac / hac-entcal / hac-norm / hac-both
  std::string model;        // clip | meru
  std::string forget;       // names joined by "+"
  std::string curvature;    // "1", "0.1", "1 learned", "euclidean", ...
  // What else sets the run apart from runs of the same model, variant and curvature (e.g.
  // "unlearn.lr=0.002"): the config keys that differ between such groups ("" when none do).
  std::string setting;
  std::map<std::string, std::string> keys;  // resolved config as section.key -> value, seed/forget/paths cleared
  int64_t concepts = 0, seed = 0, world_size = 0;
  std::string stage;            // "trial" for a selection trial (never in the tables), else ""
  std::string original;         // the original's run id (or checkpoint folder)
  // The original's configuration without its pretraining seed (kind, preset, curvature): runs of
  // different originals share a table row only when this is equal.
  std::string original_config;
  int64_t original_seed = 0;    // the original's pretraining seed (a unit of variance)
  // The unit a paired comparison matches on: original seed, forget set, unlearning seed.
  std::string unit() const;
  std::map<std::string, std::string> labels;
  std::map<std::string, double> metrics;  // flattened numeric leaves of "metrics" (NaN for null)
};

struct CollectOptions {
  std::string dir;                // where to look for result.json files
  std::string out;                // "" = dir/collected
  bool figures = true;
  bool figures_if_gnuplot = false;  // figures only when gnuplot runs; else tables and a log line
  std::string gnuplot = "gnuplot";
};

struct CollectSummary {
  int64_t runs = 0, completed = 0, failed = 0, incomplete = 0, unreadable = 0;
  std::vector<std::string> files;  // written, relative to out
};

// Reads every result.json under dir (not under out); unreadable files are counted and named in
// the log, never treated as complete.
std::vector<RunRecord> read_runs(const std::string& dir, const std::string& skip, int64_t* unreadable);

// Sets RunRecord::setting: within runs of the same kind, model, variant and curvature, the config
// keys whose values differ (so a table never averages runs of different settings as if seeds).
void assign_settings(std::vector<RunRecord>& runs);

// audit.gap_to_retrain for runs evaluated without eval.retrain: their audit's forget non-member
// share minus that of the `retrain` run of the same model, curvature, forget set and seed (the
// same audit rows, so the same number eval.retrain would give).
void add_retrain_gaps(std::vector<RunRecord>& runs);

// Paired comparisons and claims (claims.cpp): table_paired.{md,csv} (HAC - AC, HAC - each
// ablation, each method - retrain, per forget-set size and pooled, on matched units) and claims.md
// (each of the HAC paper's claims: the comparison, its paired difference with 95 % interval, the
// rule and the verdict). Appends the files written to summary.files.
void write_comparisons(const std::vector<RunRecord>& runs, const std::string& out, std::vector<std::string>& files);

// Writes results_long.csv, table_main.{md,tex,csv} and, unless disabled, figures/ into out.
// Throws IoError naming gnuplot when figures are wanted and it cannot run.
CollectSummary collect(const CollectOptions& o);


// Figures (plots.cpp): writes PNG + PDF and their gnuplot scripts and data into out/figures.
// Whether `gnuplot --version` runs.
bool gnuplot_runs(const std::string& gnuplot);
std::vector<std::string> write_figures(const std::vector<RunRecord>& runs, const std::string& out,
                                       const std::string& gnuplot);

}  // namespace runner::sweep
