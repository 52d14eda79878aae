// Checkpoint files of a run directory: dir/step_<8 digits>.pt, listed newest first and pruned.
// No torch here (the files are written by src/models).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::train {

// Checkpoint files dir/step_<8 digits>.pt, newest (highest step) first.
std::vector<std::string> list_checkpoints(const std::string& dir);
std::string checkpoint_path(const std::string& dir, int64_t step);
// Removes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& dir, int64_t keep);

}  // namespace runner::train
