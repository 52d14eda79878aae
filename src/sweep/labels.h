// The labels a sweep gives its runs (docs/sweeps.md) and `hac collect` shows in its tables
// (docs/results.md): the method label, which names hac's variants by what they switch off, and
// the curvature label of an original. One home, so that result.json labels and table rows agree.
// No torch here.
#pragma once

#include <string>

#include "config/config.h"

namespace runner::sweep {

// The method, or for hac the variant: "hac", "hac-entcal" (entcal off), "hac-norm" (norm off),
// "hac-both" (both off). Used in run ids and as the tables' "method" column.
std::string method_label(const config::UnlearnConfig& u);

// The order of method labels in the tables: the method registry's order (unlearn/registry.h:
// references, baselines, AC, HAC), hac's variants right after hac (hac-entcal, hac-norm,
// hac-both); anything else after them all (callers break ties by the label, alphabetically).
int variant_rank(const std::string& label);

// The curvature a model is trained with: "1", "0.1", "1 learned" (whatever its kind).
std::string curvature_value(const config::ModelConfig& m);
// The curvature label of an original: "euclidean" unless it is a MERU model, else curvature_value.
std::string curvature_label(const config::ModelConfig& m);
// The curvature label of the original at `model_path`, read from the config.yaml beside it; ""
// when the path is empty or that config is missing or unreadable.
std::string original_curvature_label(const std::string& model_path);

}  // namespace runner::sweep
