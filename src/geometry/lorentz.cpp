// Lorentz-model functions (after MERU's lorentz.py, facebookresearch/meru).
#include "geometry/lorentz.h"

#include <ATen/ATen.h>

#include <cmath>

namespace runner::geometry {
namespace {

// A curvature given as a number becomes a 0-dim tensor of the inputs' dtype and device.
at::Tensor as_curv(double curv, const at::Tensor& like) {
  return at::scalar_tensor(curv, like.options().requires_grad(false));
}

at::Tensor sq_norm(const at::Tensor& x) { return (x * x).sum(/*dim=*/-1, /*keepdim=*/true); }

at::Tensor l2_norm(const at::Tensor& x) {
  return at::linalg_vector_norm(x, /*ord=*/2, /*dim=*/{-1}, /*keepdim=*/true);
}

// [B, D] -> [B, 1]: time component sqrt(1/c + |x|^2).
at::Tensor time_component(const at::Tensor& x, const at::Tensor& curv) {
  return at::sqrt(1.0 / curv + sq_norm(x));
}

}  // namespace

at::Tensor pairwise_inner(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv) {
  at::Tensor xt = time_component(x, curv);
  at::Tensor yt = time_component(y, curv);
  return at::matmul(x, y.t()) - at::matmul(xt, yt.t());
}

at::Tensor pairwise_dist(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv,
                         double eps) {
  at::Tensor c_xyl = -curv * pairwise_inner(x, y, curv);
  return at::acosh(at::clamp_min(c_xyl, 1.0 + eps)) / at::sqrt(curv);
}

at::Tensor exp_map0(const at::Tensor& v, const at::Tensor& curv, double eps) {
  at::Tensor rc_xnorm = at::sqrt(curv) * l2_norm(v);
  // asinh(2^15) caps sinh's output at 2^15 so float32 does not overflow.
  at::Tensor sinh_input = at::clamp(rc_xnorm, eps, std::asinh(std::pow(2.0, 15)));
  return at::sinh(sinh_input) * v / at::clamp_min(rc_xnorm, eps);
}

at::Tensor log_map0(const at::Tensor& x, const at::Tensor& curv, double eps) {
  at::Tensor rc_x_time = at::sqrt(1.0 + curv * sq_norm(x));
  at::Tensor distance0 = at::acosh(at::clamp_min(rc_x_time, 1.0 + eps));
  at::Tensor rc_xnorm = at::sqrt(curv) * l2_norm(x);
  return distance0 * x / at::clamp_min(rc_xnorm, eps);
}

at::Tensor half_aperture(const at::Tensor& x, const at::Tensor& curv, double min_radius,
                         double eps) {
  at::Tensor asin_input = 2.0 * min_radius / (l2_norm(x).squeeze(-1) * at::sqrt(curv) + eps);
  return at::asin(at::clamp(asin_input, -1.0 + eps, 1.0 - eps));
}

at::Tensor oxy_angle(const at::Tensor& x, const at::Tensor& y, const at::Tensor& curv,
                     double eps) {
  at::Tensor x_time = time_component(x, curv).squeeze(-1);
  at::Tensor y_time = time_component(y, curv).squeeze(-1);
  // c * <x, y>_L, row by row.
  at::Tensor c_xyl = curv * ((x * y).sum(-1) - x_time * y_time);
  at::Tensor acos_numer = y_time + c_xyl * x_time;
  at::Tensor acos_denom = at::sqrt(at::clamp_min(c_xyl * c_xyl - 1.0, eps));
  at::Tensor acos_input = acos_numer / (l2_norm(x).squeeze(-1) * acos_denom + eps);
  return at::acos(at::clamp(acos_input, -1.0 + eps, 1.0 - eps));
}

at::Tensor dist0(const at::Tensor& x, const at::Tensor& curv, double eps) {
  at::Tensor rc_x_time = at::sqrt(1.0 + curv * sq_norm(x)).squeeze(-1);
  return at::acosh(at::clamp_min(rc_x_time, 1.0 + eps)) / at::sqrt(curv);
}

at::Tensor at_dist0(const at::Tensor& x, const at::Tensor& r, const at::Tensor& curv, double eps) {
  const at::Tensor rc = at::sqrt(curv);
  const at::Tensor target = at::sinh(rc * r.detach()) / rc;
  return x * (target / at::clamp_min(l2_norm(x).squeeze(-1), eps)).unsqueeze(-1);
}

at::Tensor pairwise_inner(const at::Tensor& x, const at::Tensor& y, double curv) {
  return pairwise_inner(x, y, as_curv(curv, x));
}
at::Tensor pairwise_dist(const at::Tensor& x, const at::Tensor& y, double curv, double eps) {
  return pairwise_dist(x, y, as_curv(curv, x), eps);
}
at::Tensor exp_map0(const at::Tensor& v, double curv, double eps) {
  return exp_map0(v, as_curv(curv, v), eps);
}
at::Tensor log_map0(const at::Tensor& x, double curv, double eps) {
  return log_map0(x, as_curv(curv, x), eps);
}
at::Tensor half_aperture(const at::Tensor& x, double curv, double min_radius, double eps) {
  return half_aperture(x, as_curv(curv, x), min_radius, eps);
}
at::Tensor oxy_angle(const at::Tensor& x, const at::Tensor& y, double curv, double eps) {
  return oxy_angle(x, y, as_curv(curv, x), eps);
}

}  // namespace runner::geometry
