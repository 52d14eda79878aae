// A sweep spec (docs/sweeps.md): a base unlearning config, the pretraining config of the
// originals, and axes whose points are config overrides. Parsed here (the only library that sees
// yaml-cpp); expanded into a grid by src/sweep.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::config {

// One grid point of one axis: overrides "section.key=value" (values as YAML flow text), plus the
// special key "ranks=N" (ranks per run).
using Assignment = std::vector<std::string>;

struct SweepSpec {
  std::string source;                  // the spec file (for messages)
  std::string name;                    // results/<name>/
  std::string root = "results";        // where sweeps and cached originals live
  std::string base;                    // unlearning base config ("" = defaults)
  std::vector<std::string> set;        // overrides applied to the base
  bool originals = false;              // the sweep trains its originals (an `originals:` block)
  std::string original_base;           // their pretraining config ("" = defaults)
  std::vector<std::string> original_set;
  int64_t ranks = 1;                   // ranks per run unless a point says "ranks=N"
  // Each axis is a list of assignments; the grid is their cartesian product, axis by axis.
  std::vector<std::vector<Assignment>> axes;
  std::vector<std::string> axis_kinds;  // product | zip | list | forget, per axis
};

// Reads and checks the spec; ConfigError naming the file, line and key for unknown keys,
// malformed axes (zip lists of different lengths, forget sizes above the number of concepts...).
// Axis forms:
//   - product: {key: [v1, v2], key2: [...]}       every combination
//   - zip: {key: [v1, v2], key2: [w1, w2]}        element-wise
//   - list: [{key: v, key2: w}, {key: u}]         explicit points
//   - forget: {concepts: [a, b, c], sizes: [1, 2], mode: first | subsets, key: unlearn.forget}
//       first: the first k names for each k; subsets: every k-subset (in order) for each k
SweepSpec load_sweep_spec(const std::string& path);
SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source);

}  // namespace runner::config
