// Per-sample evaluation values (the side files of a run's eval/ folder) and the aggregates
// computed from them alone, so a table can be recomputed without the model (docs/evaluation.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace runner::eval {

using json = nlohmann::ordered_json;

// Per-model values of one evaluated row. Cones: 1 inside, 0 outside, -1 not applicable (CLIP, no
// parent). dist0: MERU distance to the origin; CLIP the norm of the projected feature before
// normalization (its Euclidean analogue). Every member is a column: see visit_model_columns.
struct ModelValues {
  std::vector<int32_t> zs_pred;     // zero-shot prediction (concept index)
  std::vector<double> score;        // alignment of the row's own pair (CLIP cosine, MERU -d_c)
  std::vector<double> image_dist0, text_dist0;
  std::vector<int32_t> own_cone, parent_cone;
  // MERU: oxy_angle(own caption, image) - half_aperture(own caption), radians: how far outside (> 0)
  // or inside (< 0) its caption's cone the image lies, an angle that inflating radii alone moves
  // only through the aperture; CLIP NaN.
  std::vector<double> cone_margin;
};

// Columns added to samples.csv after its first version: a file without one reads NaN (older runs
// stay collectable; their tables show "—" for it).
inline bool is_added_column(const std::string& name) { return name == "cone_margin"; }

// eval/samples.csv: one line per row of the evaluated split. Every vector is a column: see
// visit_row_columns (row, concept, forget: the keys the aggregates group by).
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

// How a per-row column enters the aggregates (aggregate_samples, classes.csv), under its key.
enum class Aggregate {
  kNone,           // written and read back only
  kRecall,         // ranks (int64): retrieval.{forget,retain}.<key>_r{1,5,10}, recall (%) at 1, 5, 10
  kKnnAccuracy,    // predicted concepts (int32): representation.<key>_{forget,retain}, macro top-1 (%)
  kZeroShot,       // a model's predicted concepts (int32): <key>.{forget,retain,all}_top1 and <key>.per_class;
                   // per concept: <key> (classes.csv, hierarchy.shift_per_concept)
  kHierarchyMean,  // a model's values (double): hierarchy.{forget,retain}.<key>, mean; per concept: <key>
  kHierarchyCone,  // a model's cone flags (int32): hierarchy.{forget,retain}.<key>, % inside among the
                   // applicable rows; per concept: <key>
};

// ---- The per-row columns: each once, in samples.csv's order ------------------------------------
// to_csv, samples_from_csv, aggregate_samples and per_concept_csv walk these two lists, so a new
// per-row value is its member above, one line here, and computing it in its evaluation stage
// (evaluate.cpp); the unit tests check that the lists cover every member. Each calls
// v(column name, member vector, how it aggregates, aggregate key) for S = Samples or const Samples
// (M = ModelValues or const ModelValues). Column types: int64, int32, char (written 0/1), double.

template <class S, class V>
void visit_row_columns(S& s, V&& v) {
  v("row", s.row, Aggregate::kNone, "");
  v("concept", s.concept, Aggregate::kNone, "");
  v("forget", s.forget, Aggregate::kNone, "");
  v("i2t_rank", s.i2t_rank, Aggregate::kRecall, "i2t");
  v("t2i_rank", s.t2i_rank, Aggregate::kRecall, "t2i");
  v("knn_pred", s.knn_pred, Aggregate::kKnnAccuracy, "knn");
}

// The evaluated model's columns, then (when there is an original) the original's with "_before".
template <class M, class V>
void visit_model_columns(M& m, V&& v) {
  v("zs_pred", m.zs_pred, Aggregate::kZeroShot, "zero_shot");
  v("score", m.score, Aggregate::kNone, "");
  v("image_dist0", m.image_dist0, Aggregate::kHierarchyMean, "image_dist0");
  v("text_dist0", m.text_dist0, Aggregate::kHierarchyMean, "text_dist0");
  v("own_cone", m.own_cone, Aggregate::kHierarchyCone, "own_cone");
  v("parent_cone", m.parent_cone, Aggregate::kHierarchyCone, "parent_cone");
  v("cone_margin", m.cone_margin, Aggregate::kHierarchyMean, "cone_margin");
}

// eval/audit.csv: the membership audit's pairs.
struct AuditRows {
  std::vector<std::string> set;     // member (retain, train) | nonmember (retain, held out) | forget (train)
  std::vector<int64_t> row;         // row in its split (train for member/forget, test for nonmember)
  std::vector<int32_t> concept;
  std::vector<double> score;        // the evaluated model's alignment score
  std::vector<double> retrain_score;  // the retrain reference's (empty when none was given)
  size_t size() const { return set.size(); }
};

// samples.csv's header names, in order (the original's "_before" columns when `before`).
std::vector<std::string> sample_columns(bool before);
std::string to_csv(const Samples& s);
// Throws IoError naming `source` and the line on a malformed file; a column not in the lists
// above is ignored, a missing one is an IoError naming it (is_added_column's: NaN).
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
