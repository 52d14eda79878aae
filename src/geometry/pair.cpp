// Geometry names and pair scores (CLIP cosine, MERU negative Lorentz distance).
#include "geometry/pair.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "core/error.h"
#include "geometry/lorentz.h"

namespace runner::geometry {

std::string model_kind_name(Geometry g) { return g == Geometry::kEuclidean ? "clip" : "meru"; }

Geometry parse_model_kind(const std::string& kind) {
  if (kind == "clip") return Geometry::kEuclidean;
  if (kind == "meru") return Geometry::kLorentz;
  throw ConfigError(fmt::format("model.kind: '{}' is not a model (clip, meru)", kind));
}

at::Tensor paired_dist(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv) {
  // MERU's pairwise_dist on the diagonal: acosh(max(-c <x, y>_L, 1 + eps)) / sqrt(c), with the
  // time components sqrt(1/c + |x|^2).
  const at::Tensor x_time = at::sqrt(1.0 / curv + (x * x).sum(-1));
  const at::Tensor y_time = at::sqrt(1.0 / curv + (y * y).sum(-1));
  const at::Tensor inner = (x * y).sum(-1) - x_time * y_time;
  return at::acosh(at::clamp_min(-curv * inner, 1.0 + kEps)) / at::sqrt(curv);
}

at::Tensor pairwise_score(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv) {
  if (g == Geometry::kEuclidean) return at::matmul(a, b.t());
  return -pairwise_dist(a, b, curv);
}

at::Tensor angle_at_origin(const at::Tensor& x, const at::Tensor& y) {
  // The clamp keeps acos's derivative finite for parallel vectors.
  constexpr double kBound = 1.0 - 1e-6;
  const at::Tensor cos = at::cosine_similarity(x, y, /*dim=*/-1, /*eps=*/1e-8);
  return at::acos(at::clamp(cos, -kBound, kBound));
}

at::Tensor pair_score(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv) {
  if (g == Geometry::kLorentz) return -paired_dist(a, b, curv);
  return (a * b).sum(-1);  // CLIP features are L2-normalized: the cosine
}

}  // namespace runner::geometry
