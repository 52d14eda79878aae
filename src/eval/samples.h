// Per-sample evaluation values (the side files of a run's eval/ folder) and the aggregates
// computed from them alone, so a table can be recomputed without the model (SPEC §7).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace runner::eval {

using json = nlohmann::ordered_json;

// Per-model values of one evaluated row. Cones: 1 inside, 0 outside, -1 not applicable (CLIP, no
// parent). dist0: MERU distance to the origin; CLIP the norm of the projected feature before
// normalization (its Euclidean analogue).
struct ModelValues {
  std::vector<int32_t> zs_pred;     // zero-shot prediction (concept index)
  std::vector<double> score;        // alignment of the row's own pair (CLIP cosine, MERU -d_c)
  std::vector<double> image_dist0, text_dist0;
  std::vector<int32_t> own_cone, parent_cone;
};

// eval/samples.csv: one line per row of the evaluated split.
struct Samples {
  std::vector<int64_t> row;         // row index in the split
  std::vector<int32_t> concept;
  std::vector<char> forget;         // concept is a forget concept
  std::vector<int64_t> i2t_rank, t2i_rank;  // retrieval ranks (metrics.h group_ranks)
  std::vector<int32_t> knn_pred;    // k-NN on frozen image features
  ModelValues after;                // the evaluated model
  ModelValues before;               // the original (empty vectors when there is none)
  bool has_before() const { return !before.zs_pred.empty(); }
  size_t size() const { return row.size(); }
};

// eval/audit.csv: the membership audit's pairs.
struct AuditRows {
  std::vector<std::string> set;     // member (retain, train) | nonmember (retain, held out) | forget (train)
  std::vector<int64_t> row;         // row in its split (train for member/forget, test for nonmember)
  std::vector<int32_t> concept;
  std::vector<double> score;        // the evaluated model's alignment score
  std::vector<double> retrain_score;  // the retrain reference's (empty when none was given)
  size_t size() const { return set.size(); }
};

std::string to_csv(const Samples& s);
// Throws IoError naming `source` and the line on a malformed file.
Samples samples_from_csv(const std::string& text, const std::string& source);
std::string to_csv(const AuditRows& a);
AuditRows audit_from_csv(const std::string& text, const std::string& source);

// zero_shot, retrieval, hierarchy, representation.knn_* and before.* from the samples alone.
// names: concept names (for per-class keys); k: the k of "knn_k" (recorded only).
json aggregate_samples(const Samples& s, const std::vector<std::string>& names);
// The audit block: threshold, balanced accuracy, forget pairs called non-member, and the same for
// the retrain reference with the gap when its scores are present.
json aggregate_audit(const AuditRows& a);
// eval/classes.csv: per concept, before -> after (zero-shot accuracy, dist0, cone shares).
std::string per_concept_csv(const Samples& s, const std::vector<std::string>& names);

}  // namespace runner::eval
