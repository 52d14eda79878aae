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
};

struct Grid {
  std::string name;
  std::string dir;                 // <root>/<name>
  std::vector<Job> originals;      // distinct, by run id
  std::vector<Job> points;         // in spec order, duplicates (same run id) merged
};

// Expands the spec: each point = base + set + the axes' assignments (product over axes). Keys
// "model.*" go to the point and its original, "original.*" (prefix removed) only to the original,
// "ranks" sets the ranks per run. With an originals block, points whose unlearn.original is empty
// get the original trained for their pretraining keys; points that name one keep it. Throws ConfigError naming the spec, the key or the override.
Grid expand(const config::SweepSpec& spec);

// The file the sweep writes each job's resolved config to before launching it.
std::string job_config_path(const Job& j);
// Writes the job's resolved config to job_config_path (creating its directory).
void write_job_config(const Job& j);

}  // namespace runner::sweep
