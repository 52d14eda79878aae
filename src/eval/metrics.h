// The evaluation's metrics as pure functions of embeddings, scores and labels (docs/evaluation.md): macro
// accuracy, retrieval ranks, the membership-audit threshold, k-NN, linear CKA. ATen only, no
// model: tests feed them hand-made values with known answers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace runner::eval {

// Top-1 accuracy (%) of every class in `classes` over the rows labelled with it: acc[i] for
// classes[i], NaN when no row has that label (count 0).
struct ClassAccuracy {
  std::vector<int32_t> classes;
  std::vector<double> acc;
  std::vector<int64_t> count;
};
ClassAccuracy per_class_accuracy(const std::vector<int32_t>& pred, const std::vector<int32_t>& label,
                                 const std::vector<int32_t>& classes);
// Mean of the per-class accuracies of `subset` (classes without rows left out); NaN when none
// of them has rows. A perfect classifier gives 100, one that always answers the same class 1/K.
double macro_accuracy(const ClassAccuracy& a, const std::vector<int32_t>& subset);

// argmax per row of scores [n, K] (the lowest index among equal maxima).
std::vector<int32_t> argmax_rows(const at::Tensor& scores);

// Retrieval ranks with groups of equivalent gallery items (captions with the same text): for
// query i with score row scores[i] over the gallery and the set of its correct items (those with
// gallery_group == query_group[i]), rank = 1 + the number of incorrect items scoring at least as
// high as the best correct one. Ties count against the query, so a collapsed model (all scores
// equal) gets the worst rank, not the best. Computed in row chunks; scores may be any float type.
std::vector<int64_t> group_ranks(const at::Tensor& scores, const std::vector<int64_t>& query_group,
                                 const std::vector<int64_t>& gallery_group);
// Share (%) of ranks <= k; NaN for no ranks.
double recall_at(const std::vector<int64_t>& ranks, int64_t k);

// Membership audit: the threshold t that best separates member scores (higher = better aligned)
// from non-member scores by "member iff score >= t", maximizing balanced accuracy; candidates
// are midpoints between consecutive distinct scores and the two ends.
struct AuditThreshold {
  double threshold = 0.0;
  double balanced_accuracy = 0.0;  // %, on the fitting pairs
};
AuditThreshold fit_threshold(const std::vector<double>& members, const std::vector<double>& nonmembers);
// The audit's balanced accuracy (%) on pairs it was not fitted on: the threshold fitted on the
// even positions of each list scores the odd positions and vice versa (two-fold cross-fitting),
// the hits of both folds pooled. Without signal it is 50 % in expectation, unlike the fitted value
// (which a maximum over thresholds pushes above 50 %). The interval: normal (95 %, quantile from
// Boost.Math) with the variance (TPR (1 - TPR) / members + TNR (1 - TNR) / non-members) / 4.
// NaN when a list has fewer than 2 scores.
struct HeldOutAccuracy {
  double balanced_accuracy, lo, hi;
};
HeldOutAccuracy heldout_balanced_accuracy(const std::vector<double>& members, const std::vector<double>& nonmembers);
// Share (%) of `scores` below the threshold (called non-member); NaN for none.
double share_below(const std::vector<double>& scores, double threshold);

// k-NN classifier with cosine similarity (rows L2-normalized here): majority of the k nearest
// bank rows, ties broken by the larger summed similarity, then the lower label.
std::vector<int32_t> knn_predict(const at::Tensor& bank, const std::vector<int32_t>& bank_labels,
                                 const at::Tensor& queries, int64_t k);

// Linear CKA (Kornblith et al. 2019) of two representations of the same n rows: columns centered,
// ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), in float64. 1 for X = Y up to rotation and scale.
double linear_cka(const at::Tensor& x, const at::Tensor& y);

// Mean of the values at the rows where mask is true; NaN for none.
double masked_mean(const std::vector<double>& values, const std::vector<char>& mask);

}  // namespace runner::eval
