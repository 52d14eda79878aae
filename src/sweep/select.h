// Selection on the validation split (docs/sweeps.md "Selection"): each method's trials, the rule
// that picks one of them, and the report of every trial and choice. The grid (grid.h) runs the
// trials first and gives the points the chosen settings; test rows are never read for a choice.
// No torch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/result_file.h"

namespace runner::sweep {

// What one trial measured on the validation split (NaN when it has no metrics).
struct TrialOutcome {
  int64_t trial = 0;                 // its position among the group's trials
  std::string settings;              // "key=value, ..." of the space draw
  std::string dir;
  train::RunStatus status = train::RunStatus::kAbsent;
  double forget = 0.0, retain = 0.0;  // zero-shot macro top-1 (%) on the forget / retain classes
  double retain_before = 0.0;         // the original's retain top-1 on the same rows
  bool admissible = false;            // COMPLETED and retain >= retain_before - retain_drop
};

// The rule, stated once (docs/sweeps.md): among the COMPLETED trials whose validation retain
// top-1 stays within `retain_drop` points of the original's, the lowest validation forget top-1;
// ties (equal to 1e-9) go to the higher retain top-1, then to the earlier trial. When no trial is
// admissible: the COMPLETED trial with the highest retain top-1 (then the lowest forget top-1),
// and `note` says so. Returns the position in `trials`, -1 when none is COMPLETED.
int64_t choose_trial(std::vector<TrialOutcome>& trials, double retain_drop, std::string* note);

// The outcome of a trial from its result.json (status; metrics zero_shot.forget_top1,
// zero_shot.retain_top1 and before.zero_shot.retain_top1).
TrialOutcome read_trial(const std::string& dir, int64_t trial, const std::string& settings);

}  // namespace runner::sweep
