// Which geometry a model embeds into, and the score of an image-text pair in it: the one place
// that says how CLIP (Euclidean) and MERU (Lorentz) compare embeddings. Contrastive logits,
// AC/HAC's calibration terms and the evaluation's per-pair scores all come from here.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace runner::geometry {

// kEuclidean: CLIP (L2-normalized features, cosine); kLorentz: MERU (space components on the
// hyperboloid of curvature -c, negative geodesic distance).
enum class Geometry { kEuclidean, kLorentz };

// model.kind's words: "clip" | "meru".
std::string model_kind_name(Geometry g);
// "clip" -> kEuclidean, "meru" -> kLorentz; ConfigError naming model.kind otherwise.
Geometry parse_model_kind(const std::string& kind);

// [B, D], [B, D] -> [B]: Lorentz distance d_c(x_i, y_i) of paired rows (MERU's pairwise_dist on
// the diagonal, with its clamp and eps).
at::Tensor paired_dist(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv);

// [B, D], [B, D] -> [B]: the angle at the origin between each row's two vectors, in [0, pi]
// (acos of the clamped cosine): the angle between CLIP's normalized features, and in MERU's
// Lorentz model the angle at the origin between the geodesics to x and to y. It does not change
// when either vector is scaled, so a loss on it cannot be lowered by growing radii.
at::Tensor angle_at_origin(const at::Tensor& x, const at::Tensor& y);

// [B1, D], [B2, D] -> [B1, B2]: every image against every text. Euclidean: dot product of the
// (already L2-normalized) features; Lorentz: -pairwise_dist with curvature `curv` (0-dim;
// ignored and may be undefined for Euclidean).
at::Tensor pairwise_score(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv);

// [B, D], [B, D] -> [B]: the score of each row's pair, the diagonal of pairwise_score:
// Euclidean cosine, Lorentz -d_c.
at::Tensor pair_score(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv);

}  // namespace runner::geometry
