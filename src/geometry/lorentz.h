// Lorentz-model (hyperboloid) functions under MERU's names, argument order, clamps and eps.
//
// Points are stored by their space components x in R^D; the time component is
// t(x) = sqrt(1/c + |x|^2). `curv` is the curvature magnitude c > 0 (the space has curvature
// -c), given as a double or as a 0-dim tensor (which may require grad). Every function is
// differentiable and works in the dtype of its inputs. In float32, clamp bounds 1 + eps and
// +-(1 - eps) with eps = 1e-8 round to 1 and +-1, exactly as in the reference code.
#pragma once

#include <ATen/core/Tensor.h>

namespace runner::geometry {

constexpr double kEps = 1e-8;
constexpr double kMinRadius = 0.1;  // MERU's K in the half-aperture of entailment cones

// [B1, D], [B2, D] -> [B1, B2]: Lorentzian inner product x.y - t(x) t(y).
at::Tensor pairwise_inner(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv);
at::Tensor pairwise_inner(const at::Tensor& x, const at::Tensor& y, double curv);

// [B1, D], [B2, D] -> [B1, B2]: geodesic distance acosh(clamp(-c <x,y>_L, min=1+eps)) / sqrt(c).
at::Tensor pairwise_dist(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv,
                         double eps = kEps);
at::Tensor pairwise_dist(const at::Tensor& x, const at::Tensor& y, double curv, double eps = kEps);

// [B, D] -> [B, D]: exponential map at the origin of tangent vectors v.
at::Tensor exp_map0(const at::Tensor& v, const at::Tensor& curv, double eps = kEps);
at::Tensor exp_map0(const at::Tensor& v, double curv, double eps = kEps);

// [B, D] -> [B, D]: logarithmic map at the origin (inverse of exp_map0).
at::Tensor log_map0(const at::Tensor& x, const at::Tensor& curv, double eps = kEps);
at::Tensor log_map0(const at::Tensor& x, double curv, double eps = kEps);

// [B, D] -> [B]: half-aperture of the entailment cone of each point.
at::Tensor half_aperture(const at::Tensor& x, const at::Tensor& curv,
                         double min_radius = kMinRadius, double eps = kEps);
at::Tensor half_aperture(const at::Tensor& x, double curv, double min_radius = kMinRadius,
                         double eps = kEps);

// [B, D], [B, D] -> [B]: exterior angle at x of the triangle O-x-y, row by row. "x entails y"
// (y lies in the cone of x) iff oxy_angle(x, y) <= half_aperture(x).
at::Tensor oxy_angle(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv,
                     double eps = kEps);
at::Tensor oxy_angle(const at::Tensor& x, const at::Tensor& y, double curv, double eps = kEps);

// [B, D] -> [B]: geodesic distance of each point to the origin, acosh(sqrt(1 + c|x|^2)) / sqrt(c).
at::Tensor dist0(const at::Tensor& x, const at::Tensor& curv, double eps = kEps);

// [B, D], [B] -> [B, D]: each point moved along its ray from the origin to distance r from it
// (space norm sinh(sqrt(c) r) / sqrt(c)); its direction is kept. r is treated as a constant.
at::Tensor at_dist0(const at::Tensor& x, const at::Tensor& r, const at::Tensor& curv, double eps = kEps);

}  // namespace runner::geometry
