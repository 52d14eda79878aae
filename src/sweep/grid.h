// A sweep's grid (docs/sweeps.md): the spec's axes expanded into resolved unlearning configs with
// run ids and directories, and the distinct originals they need (each trained once, cached by
// the hash of its pretraining config). No torch here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/sweep_spec.h"
#include "sweep/select.h"

namespace runner::sweep {

// One job of the sweep: an original to pretrain or a grid point to unlearn.
struct Job {
  bool original = false;           // true: `hac train`; false: `hac unlearn`
  config::Config cfg;              // resolved; output.dir = dir
  std::string id;                  // run id: readable stem + semantic hash
  std::string dir;
  int64_t ranks = 1;
  std::vector<std::string> assignment;       // the axis overrides that made it
  std::map<std::string, std::string> labels;  // for result.json "labels" and the tables
  int64_t needs = -1;              // index of the original (in Grid::originals) it unlearns
  double cost = 0.0;               // relative cost estimate (longest first)
  std::string group;               // its assignment on the selection axis (select.axis): its group
};

// The selection of one group (the points that share their assignment on the selection axis, e.g.
// one method on one geometry): its trials on the validation split and the one chosen (select.h's rule).
struct GroupSelection {
  std::string group;
  std::string method;              // unlearn.method of the group
  bool fixed = false;              // a method run as it is (select.fixed): no trials
  int64_t follows = -1;            // an ablation (select.ablations): the group whose choice it runs with
  std::vector<size_t> jobs;        // its trials' indices in Grid::trials
  std::vector<config::Assignment> draws;  // each trial's setting (config::select_trials)
  std::vector<TrialOutcome> trials;
  int64_t chosen = -1;             // position in trials; -1 until every trial has ended
  std::string note;                // why that one
};

struct Grid {
  std::string name;
  std::string dir;                 // <root>/<name>
  std::vector<Job> originals;      // distinct, by run id
  std::vector<Job> points;         // in spec order, duplicates (same run id) merged
  // With a select block: every trial, and each group's selection. While a trial has not ended
  // (`selecting`), `points` holds the trials, so that the backends run them first; afterwards the
  // points with their group's chosen settings.
  std::vector<Job> trials;
  std::vector<GroupSelection> selection;
  bool selecting = false;
  double retain_drop = 0.0;
};

// Expands the spec: each point = base + set + the axes' assignments (product over axes). Keys
// "model.*" go to the point and its original, "original.*" (prefix removed) only to the original,
// "ranks" sets the ranks per run. With an originals block, points whose unlearn.original is empty
// get the original trained for their pretraining keys; points that name one keep it. Throws ConfigError naming the spec, the key or the override.
// With a select block, each group's trials (the group's first point + select.set + one draw of the
// space + eval.split=val, in <grid dir>/trials/) come first; once each has ended (COMPLETED or
// FAILED, read from its result.json), the points get their group's chosen draw.
Grid expand(const config::SweepSpec& spec);

// Writes <grid dir>/selection.json and selection.md: every trial with its validation numbers, the
// rule and each group's choice (nothing without a select block).
void write_selection(const Grid& g);

// The file the sweep writes each job's resolved config to before launching it.
std::string job_config_path(const Job& j);
// Writes the job's resolved config to job_config_path (creating its directory).
void write_job_config(const Job& j);

}  // namespace runner::sweep
