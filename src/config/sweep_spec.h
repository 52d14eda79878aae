// A sweep spec (docs/sweeps.md): a base unlearning config, the pretraining config of the
// originals, and axes whose points are config overrides. Parsed here (the only library that sees
// yaml-cpp); expanded into a grid by src/sweep.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace runner::config {

// One grid point of one axis: overrides "section.key=value" (values as YAML flow text), plus the
// special key "ranks=N" (ranks per run).
using Assignment = std::vector<std::string>;

// A `select:` block: each method's settings are chosen on the validation split by trial runs.
struct SelectSpec {
  bool enabled = false;               // the spec has a select block
  int64_t trials = 0;                 // settings tried per method (the same for every method), >= 1
  uint64_t seed = 0;                  // which settings are drawn from each space
  int64_t axis = 0;                   // the axis whose points are the groups (the methods axis; 0 = first)
  std::vector<std::string> set;       // overrides for the trial runs, "key=value" like SweepSpec::set
  double retain_drop = 5.0;           // admissible trials keep validation retain top-1 >= the original's - this (points)
  // Per method name (the value of unlearn.method) its search space: key -> its values as "key=value"
  // assignments, in spec order. The entry "all" applies to every method, under the method's own
  // entry (a key in both: the method's wins).
  std::map<std::string, std::vector<std::pair<std::string, std::vector<std::string>>>> space;
  std::vector<std::string> methods_without_selection = {"none", "retrain"};  // run as they are (key `fixed`)
  // Keys that switch a part of a method off (e.g. unlearn.entcal, unlearn.norm): a group whose
  // selection-axis assignment equals another group's plus some of these keys is that group's
  // ablation, and runs with that group's chosen setting instead of trials of its own.
  std::vector<std::string> ablations;
};

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
  SelectSpec select;                    // validation-split selection of each method's settings
};

// Reads and checks the spec; ConfigError naming the file, line and key for unknown keys,
// malformed axes (zip lists of different lengths, forget sizes above the number of concepts...).
// Axis forms:
//   - product: {key: [v1, v2], key2: [...]}       every combination
//   - zip: {key: [v1, v2], key2: [w1, w2]}        element-wise
//   - list: [{key: v, key2: w}, {key: u}]         explicit points
//   - forget: {concepts: [a, b, c], sizes: [1, 2], mode: first | subsets | random, key: unlearn.forget,
//              draws: N, seed: S}
//       first: the first k names for each k; subsets: every k-subset (in order) for each k;
//       random: N distinct k-subsets drawn uniformly for each k (names in the order of concepts),
//       from a generator seeded by (S, k) only; draws (default 1) and seed (default 0) only with
//       random; ConfigError when N exceeds C(n, k).
// Select block (optional; keys of the unlearning run only, no ranks or original.*):
//   select: {trials: 4, seed: 0, retain_drop: 5.0, set: {key: value}, fixed: [none, retrain],
//            ablations: [unlearn.entcal, unlearn.norm], space: {all: {key: [v1, v2]}, <method>: {key: [...]}}}
//       trials (>= 1) and a non-empty space are required; fixed lists the methods run as they are;
//       ablations the keys that make a group another group's ablation (no space may set them).
SweepSpec load_sweep_spec(const std::string& path);
SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source);

// The `trials` settings tried for `method`: the product of its merged space ("all" under the
// method's own entry), `trials` of its combinations drawn without replacement by the select seed
// and the method name, returned in product order (keys: those of "all" not overridden, then the
// method's; the last key varies fastest); all of them when the product has exactly `trials`.
// Empty for a method in methods_without_selection. ConfigError naming the spec and the method when
// the spec has no select block, the method has no space (neither its own entry nor "all"), or the
// product has fewer than `trials` combinations.
std::vector<Assignment> select_trials(const SweepSpec& spec, const std::string& method);

}  // namespace runner::config
