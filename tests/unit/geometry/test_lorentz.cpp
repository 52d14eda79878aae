// Lorentz functions against the reference MERU code (meru_lorentz.pt, three curvatures), closed
// forms, and finite-difference gradients in float64.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <set>

#include "geometry/lorentz.h"
#include "support/golden.h"

namespace runner::geometry {
namespace {

using runner::testing::close;
using runner::testing::Golden;

const Golden& lorentz_golden() {
  static const Golden g("meru_lorentz.pt");
  return g;
}

class LorentzGolden : public ::testing::TestWithParam<int> {
 protected:
  std::string key(const std::string& name) const { return "c" + std::to_string(GetParam()) + "." + name; }
  at::Tensor get(const std::string& name) const { return lorentz_golden()[key(name)]; }
  at::Tensor curv() const { return get("curv").reshape({}); }
};

// Float32 throughout, as in the reference. 1e-5 relative is a few ulps after the sqrt/acosh
// chains; atol 1e-6 covers values near 0.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

TEST_P(LorentzGolden, ExpMap0) { EXPECT_TRUE(close(exp_map0(get("v"), curv()), get("exp_map0"), kRtol, kAtol)); }
TEST_P(LorentzGolden, LogMap0) { EXPECT_TRUE(close(log_map0(get("x"), curv()), get("log_map0"), kRtol, kAtol)); }
TEST_P(LorentzGolden, PairwiseInner) {
  EXPECT_TRUE(close(pairwise_inner(get("x"), get("y"), curv()), get("pairwise_inner"), kRtol, kAtol));
}
TEST_P(LorentzGolden, PairwiseDist) {
  // acosh has slope 1/sqrt(z^2-1): near z = 1 a 1-ulp difference in the inner product moves
  // the distance by ~sqrt(2 ulp) ~ 5e-4 absolute; the inputs here keep z well above 1, so 1e-5
  // relative holds, with 1e-5 absolute for any pair that comes close.
  EXPECT_TRUE(close(pairwise_dist(get("x"), get("y"), curv()), get("pairwise_dist"), kRtol, 1e-5));
}
TEST_P(LorentzGolden, GradOfSumPairwiseDist) {
  at::Tensor x = get("x").clone().set_requires_grad(true);
  pairwise_dist(x, get("y"), curv()).sum().backward();
  // Sums of B2 terms of 1/sqrt(z^2-1)-weighted gradients: 1e-4 relative, 1e-5 absolute.
  EXPECT_TRUE(close(x.grad(), get("grad_x_sum_pairwise_dist"), 1e-4, 1e-5));
}
TEST_P(LorentzGolden, HalfAperture) {
  EXPECT_TRUE(close(half_aperture(get("x"), curv()), get("half_aperture"), kRtol, kAtol));
}
TEST_P(LorentzGolden, OxyAngle) {
  // acos has slope 1/sqrt(1-u^2): near u = +-1 (points almost on a ray from x) float32 round-off
  // in u is amplified; 1e-4 absolute is ~sqrt(2 * 6e-8 * 1e-1) with margin.
  EXPECT_TRUE(close(oxy_angle(get("x"), get("y"), curv()), get("oxy_angle"), 1e-5, 1e-4));
}
TEST_P(LorentzGolden, DoubleCurvatureOverloadAgrees) {
  const double c = curv().item<double>();
  EXPECT_TRUE(exp_map0(get("v"), c).equal(exp_map0(get("v"), curv())));
  EXPECT_TRUE(pairwise_dist(get("x"), get("y"), c).equal(pairwise_dist(get("x"), get("y"), curv())));
}

INSTANTIATE_TEST_SUITE_P(ThreeCurvatures, LorentzGolden, ::testing::Values(0, 1, 2));

TEST(LorentzGoldenFile, HoldsThreeDistinctCurvatures) {
  std::set<double> cs;
  for (int k = 0; k < 3; ++k) cs.insert(lorentz_golden()["c" + std::to_string(k) + ".curv"].item<double>());
  EXPECT_EQ(cs.size(), 3u);
}

// Closed forms, in float64 so that they hold to round-off.
class LorentzClosedForm : public ::testing::TestWithParam<double> {};

TEST_P(LorentzClosedForm, DistanceFromOriginIsTheTangentNorm) {
  const double c = GetParam();
  at::manual_seed(1);
  at::Tensor v = at::randn({6, 5}, at::kDouble);
  at::Tensor x = exp_map0(v, c);
  at::Tensor origin = at::zeros({1, 5}, at::kDouble);
  at::Tensor d = pairwise_dist(origin, x, c).squeeze(0);
  EXPECT_TRUE(close(d, v.norm(2, -1), 1e-10, 1e-10));
  EXPECT_TRUE(close(dist0(x, at::scalar_tensor(c, at::kDouble)), v.norm(2, -1), 1e-10, 1e-10));
}

TEST_P(LorentzClosedForm, LogInvertsExp) {
  const double c = GetParam();
  // exp_map0 clamps sqrt(c)|v| at asinh(2^15) ~ 11.09 (as MERU does), so only norms below that are
  // invertible: draw norms uniformly in [0, 10 / sqrt(c)).
  at::manual_seed(7);
  at::Tensor v = at::randn({6, 5}, at::kDouble);
  v = v / v.norm(2, -1, /*keepdim=*/true) * at::rand({6, 1}, at::kDouble) * (10.0 / std::sqrt(c));
  EXPECT_TRUE(close(log_map0(exp_map0(v, c), c), v, 1e-9, 1e-10));
}

TEST_P(LorentzClosedForm, DistanceIsSymmetricAndZeroOnTheDiagonal) {
  const double c = GetParam();
  at::Tensor x = exp_map0(at::randn({7, 4}, at::kDouble), c);
  at::Tensor d = pairwise_dist(x, x, c);
  EXPECT_TRUE(close(d, d.t(), 1e-12, 1e-12));
  // acosh(clamp(z, 1+eps)): at z = 1 the result is acosh(1 + 1e-8) ~ 1.4e-4 / sqrt(c).
  EXPECT_LT(d.diagonal().abs().max().item<double>(), 2e-4 / std::sqrt(c));
  // Triangle inequality on every triple.
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j)
      for (int k = 0; k < 7; ++k)
        EXPECT_LE(d[i][k].item<double>(), d[i][j].item<double>() + d[j][k].item<double>() + 1e-9);
}

TEST_P(LorentzClosedForm, InnerProductOfAPointWithItselfIsMinusOneOverC) {
  const double c = GetParam();
  at::Tensor x = exp_map0(at::randn({5, 3}, at::kDouble), c);
  EXPECT_TRUE(close(pairwise_inner(x, x, c).diagonal(), at::full({5}, -1.0 / c, at::kDouble), 1e-10, 1e-12));
}

TEST_P(LorentzClosedForm, APointEntailsItsFartherScaling) {
  // y = t x with t > 1 lies on the geodesic ray from the origin through x: the exterior angle
  // at x is 0, inside any cone; points in the opposite direction are outside.
  const double c = GetParam();
  at::Tensor x = exp_map0(at::randn({5, 4}, at::kDouble), c) + 0.5;  // keep |x| away from 0
  at::Tensor angle = oxy_angle(x, x * 2.5, c);
  at::Tensor aperture = half_aperture(x, c);
  EXPECT_TRUE((angle <= aperture).all().item<bool>()) << angle << aperture;
  EXPECT_LT(angle.max().item<double>(), 1e-3);
  at::Tensor opposite = oxy_angle(x, -x, c);
  EXPECT_TRUE((opposite > aperture).all().item<bool>());
}

TEST_P(LorentzClosedForm, ApertureShrinksWithTheNorm) {
  const double c = GetParam();
  at::Tensor x = at::ones({1, 3}, at::kDouble);
  const double a1 = half_aperture(x, c).item<double>();
  const double a2 = half_aperture(x * 3, c).item<double>();
  EXPECT_GT(a1, a2);
  // asin(2K / (sqrt(c)|x|)) for |x| large enough that the argument is below 1.
  const double n = 3 * std::sqrt(3.0);
  if (2 * 0.1 / (std::sqrt(c) * n) < 1) {
    EXPECT_NEAR(a2, std::asin(2 * 0.1 / (std::sqrt(c) * n + 1e-8)), 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Curvatures, LorentzClosedForm, ::testing::Values(0.1, 1.0, 2.5));

// Finite differences (central, h = 1e-6) in float64 for every function, w.r.t. the points and
// the curvature: agreement to 1e-6 relative shows the autograd graph is the derivative of what
// is computed (the clamps are inactive at these inputs).
TEST(LorentzGradients, MatchFiniteDifferences) {
  at::manual_seed(3);
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor x0 = at::randn({3, 4}, opts) * 0.7;
  at::Tensor y0 = at::randn({2, 4}, opts) * 0.7;
  at::Tensor c0 = at::scalar_tensor(0.8, opts);
  using Fn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>;
  std::vector<std::pair<std::string, Fn>> fns = {
      {"pairwise_inner", [](auto& x, auto& y, auto& c) { return pairwise_inner(x, y, c); }},
      {"pairwise_dist", [](auto& x, auto& y, auto& c) { return pairwise_dist(x, y, c); }},
      {"exp_map0", [](auto& x, auto&, auto& c) { return exp_map0(x, c); }},
      {"log_map0", [](auto& x, auto&, auto& c) { return log_map0(x, c); }},
      {"half_aperture", [](auto& x, auto&, auto& c) { return half_aperture(x * 10, c); }},
      {"oxy_angle", [](auto& x, auto& y, auto& c) { return oxy_angle(x.narrow(0, 0, 2), y, c); }},
  };
  for (auto& [name, fn] : fns) {
    at::Tensor x = x0.clone().set_requires_grad(true);
    at::Tensor c = c0.clone().set_requires_grad(true);
    at::Tensor w = at::randn(fn(x0, y0, c0).sizes(), opts);  // random projection of the output
    (fn(x, y0, c) * w).sum().backward();
    const double h = 1e-6;
    for (int64_t i = 0; i < x0.numel(); ++i) {
      at::Tensor xp = x0.clone(), xm = x0.clone();
      xp.view(-1)[i] += h;
      xm.view(-1)[i] -= h;
      double fd = ((fn(xp, y0, c0) * w).sum().item<double>() - (fn(xm, y0, c0) * w).sum().item<double>()) / (2 * h);
      EXPECT_NEAR(x.grad().view(-1)[i].item<double>(), fd, 1e-6 * (1 + std::abs(fd))) << name << " d/dx[" << i << "]";
    }
    double fdc = ((fn(x0, y0, c0 + h) * w).sum().item<double>() - (fn(x0, y0, c0 - h) * w).sum().item<double>()) / (2 * h);
    EXPECT_NEAR(c.grad().item<double>(), fdc, 1e-6 * (1 + std::abs(fdc))) << name << " d/dc";
  }
}

}  // namespace
}  // namespace runner::geometry
