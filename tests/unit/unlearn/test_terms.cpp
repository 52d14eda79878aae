// Unlearning loss terms and methods (src/unlearn; AC arXiv 2406.03603, HAC arXiv 2503.15166) at world 1, against closed forms
// written out here with plain double loops: MERU's Lorentz formulas (arXiv 2304.09172, constants as in
// src/geometry/lorentz.cpp), the symmetric contrastive loss (CLIP/MERU), and each method's sum.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "geometry/lorentz.h"
#include "geometry/pair.h"
#include "unlearn/method.h"
#include "unlearn/registry.h"
#include "unlearn/terms.h"

namespace runner::unlearn {
namespace {

using Vec = std::vector<double>;

geometry::Geometry geo(bool meru) { return meru ? geometry::Geometry::kLorentz : geometry::Geometry::kEuclidean; }
using Mat = std::vector<Vec>;

constexpr double kCurv = 0.8;        // c, not 1, so that every sqrt(c) is exercised
constexpr double kScale = 5.0;       // exp(logit_scale)
constexpr double kEpsHand = 1e-8;    // MERU's eps
constexpr double kMinRadiusHand = 0.1;
constexpr double kTol = 1e-11;       // float64 throughout: only the order of additions differs

// ---- closed forms, by hand -------------------------------------------------------------------
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}
double norm(const Vec& a) { return std::sqrt(dot(a, a)); }
double cosine(const Vec& a, const Vec& b) { return dot(a, b) / (norm(a) * norm(b)); }
double time_of(const Vec& x) { return std::sqrt(1.0 / kCurv + dot(x, x)); }
double lorentz_inner(const Vec& x, const Vec& y) { return dot(x, y) - time_of(x) * time_of(y); }
double lorentz_dist(const Vec& x, const Vec& y) {
  return std::acosh(std::max(-kCurv * lorentz_inner(x, y), 1.0 + kEpsHand)) / std::sqrt(kCurv);
}
double clamp(double v, double lo, double hi) { return std::min(hi, std::max(lo, v)); }
double half_aperture(const Vec& t) {
  const double arg = 2.0 * kMinRadiusHand / (norm(t) * std::sqrt(kCurv) + kEpsHand);
  return std::asin(clamp(arg, -1.0 + kEpsHand, 1.0 - kEpsHand));
}
// Exterior angle at x of the triangle O-x-y.
double oxy_angle(const Vec& x, const Vec& y) {
  const double q = kCurv * lorentz_inner(x, y);
  const double num = time_of(y) + q * time_of(x);
  const double den = norm(x) * std::sqrt(std::max(q * q - 1.0, kEpsHand)) + kEpsHand;
  return std::acos(clamp(num / den, -1.0 + kEpsHand, 1.0 - kEpsHand));
}
double dist0(const Vec& x) {
  return std::acosh(std::max(std::sqrt(1.0 + kCurv * dot(x, x)), 1.0 + kEpsHand)) / std::sqrt(kCurv);
}
double meru_entailment(const Vec& img, const Vec& txt) {
  return std::max(0.0, oxy_angle(txt, img) - half_aperture(txt));
}

// l_i = 1/2 [CE(s sim(img_i, txt_.), i) + CE(s sim(txt_i, img_.), i)].
Vec hand_per_pair(const Mat& img, const Mat& txt, bool meru) {
  auto sim = [&](const Vec& a, const Vec& b) { return meru ? -lorentz_dist(a, b) : cosine(a, b); };
  auto ce = [&](const Vec& anchor, const Mat& others, size_t target) {
    double z = 0;
    for (const Vec& o : others) z += std::exp(kScale * sim(anchor, o));
    return std::log(z) - kScale * sim(anchor, others[target]);
  };
  Vec out;
  for (size_t i = 0; i < img.size(); ++i) out.push_back(0.5 * (ce(img[i], txt, i) + ce(txt[i], img, i)));
  return out;
}

// Mean of v over rows where pick(i), 0 when none.
double mean_where(const Vec& v, const std::function<bool(size_t)>& pick) {
  double s = 0, n = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (pick(i)) s += v[i], n += 1;
  }
  return n > 0 ? s / n : 0.0;
}

Mat to_mat(const at::Tensor& t) {
  at::Tensor d = t.detach().to(at::kDouble).contiguous();
  Mat m(static_cast<size_t>(d.size(0)), Vec(static_cast<size_t>(d.size(1))));
  auto a = d.accessor<double, 2>();
  for (size_t i = 0; i < m.size(); ++i) {
    for (size_t k = 0; k < m[i].size(); ++k) m[i][k] = a[static_cast<int64_t>(i)][static_cast<int64_t>(k)];
  }
  return m;
}
double val(const at::Tensor& t) { return t.detach().to(at::kDouble).item<double>(); }

// ---- a hand-made batch ------------------------------------------------------------------------
// Six rows in R^3; rows 1, 3, 4 are forget rows. Rows 1 and 4 lie inside their caption's cone and
// row 3 far outside it; retain row 2 lies outside its cone, rows 0 and 5 inside (checked below).
const Mat kImage = {{0.9, 0.35, 0.05}, {0.6, -0.3, 0.32}, {0.5, -0.2, 0.3},
                    {0.4, 0.4, -0.3},  {0.2, 0.25, -0.8}, {-0.5, -0.8, 0.1}};
const Mat kText = {{0.3, 0.1, 0.0}, {0.2, -0.1, 0.1}, {0.0, 0.4, 0.1},
                   {-0.3, 0.0, 0.2}, {0.1, 0.1, -0.3}, {-0.2, -0.3, 0.0}};
const std::vector<bool> kForget = {false, true, false, true, true, false};

struct Batch {
  Features f;
  Context ctx;
  Mat img, txt, txt_own;  // what the features hold, for the hand computations
  std::vector<bool> forget;
  bool is_forget(size_t i) const { return forget[i]; }
  bool is_retain(size_t i) const { return !forget[i]; }
};

at::Tensor tensor_of(const Mat& m, bool unit_rows) {
  std::vector<double> flat;
  for (const Vec& r : m) {
    for (double v : r) flat.push_back(unit_rows ? v / norm(r) : v);
  }
  return at::tensor(flat, at::kDouble).reshape({static_cast<int64_t>(m.size()), static_cast<int64_t>(m[0].size())});
}

// CLIP rows are L2-normalized. Each forget row's contrastive caption is the next forget row's
// (cyclically), as the partner permutation would give. image and text_own are leaves with grad.
Batch make_batch(bool meru, const std::vector<bool>& forget = kForget) {
  Batch b;
  b.forget = forget;
  b.ctx.comm = comm::make_self_comm();
  b.ctx.geometry = geo(meru);
  b.ctx.beta_eff = 0.7;
  b.ctx.entail_weight = 0.2;
  b.f.image = tensor_of(kImage, !meru).set_requires_grad(true);
  b.f.text_own = tensor_of(kText, !meru).set_requires_grad(true);
  std::vector<int64_t> fpos, partner;
  for (size_t i = 0; i < forget.size(); ++i) {
    if (forget[i]) fpos.push_back(static_cast<int64_t>(i));
  }
  for (size_t k = 0; k < fpos.size(); ++k) partner.push_back(fpos[(k + 1) % fpos.size()]);
  b.f.forget = at::tensor(std::vector<int64_t>(forget.begin(), forget.end()), at::kLong).to(at::kBool);
  b.f.text = fpos.empty() ? b.f.text_own
                          : b.f.text_own.index_copy(0, at::tensor(fpos, at::kLong),
                                                    b.f.text_own.index_select(0, at::tensor(partner, at::kLong)));
  b.f.logit_scale = at::scalar_tensor(std::log(kScale), at::kDouble);
  if (meru) b.f.curv = at::scalar_tensor(kCurv, at::kDouble);
  std::vector<double> ri, rt;
  for (size_t i = 0; i < forget.size(); ++i) ri.push_back(0.3 + 0.1 * i), rt.push_back(0.2 + 0.05 * i);
  b.f.ref_image_dist0 = at::tensor(ri, at::kDouble);
  b.f.ref_text_dist0 = at::tensor(rt, at::kDouble);
  std::vector<double> rp, ra;
  for (size_t i = 0; i < forget.size(); ++i) rp.push_back(0.8 + 0.2 * i), ra.push_back(0.5 + 0.05 * i);
  b.f.ref_pair_dist = at::tensor(rp, at::kDouble);
  b.f.ref_text_aperture = at::tensor(ra, at::kDouble);
  b.img = to_mat(b.f.image), b.txt = to_mat(b.f.text), b.txt_own = to_mat(b.f.text_own);
  return b;
}

std::vector<std::string> names(const Terms& t) {
  std::vector<std::string> n;
  for (const auto& p : t.parts) n.push_back(p.first);
  return n;
}
double part(const Terms& t, const std::string& name) {
  for (const auto& p : t.parts) {
    if (p.first == name) return val(p.second);
  }
  ADD_FAILURE() << "no part " << name;
  return NAN;
}

config::UnlearnConfig hac_cfg() {
  config::UnlearnConfig c;
  c.method = "hac";
  c.alpha = 0.5;  // exactly representable: the method's weights are float32
  c.entcal = true, c.entcal_retain = true, c.entcal_partner = true, c.entcal_margin = 0.1;
  c.norm = true, c.norm_mode = "keep";
  c.pos_mode = "neg_dist";
  return c;
}

// ---- global_weighted_mean --------------------------------------------------------------------
TEST(UnlearnGlobalWeightedMean, IsTheWeightedMean) {
  auto self = comm::make_self_comm();
  const Vec v = {1.5, -2.0, 0.25, 4.0, 3.0}, w = {1.0, 0.0, 2.0, 0.5, 1.0};
  double num = 0, den = 0;
  for (size_t i = 0; i < v.size(); ++i) num += w[i] * v[i], den += w[i];
  for (auto dtype : {at::kDouble, at::kFloat}) {
    at::Tensor r = global_weighted_mean(self, at::tensor(v, dtype), at::tensor(w, at::kFloat));
    EXPECT_EQ(r.dim(), 0);
    EXPECT_EQ(r.scalar_type(), dtype);
    EXPECT_NEAR(val(r), num / den, dtype == at::kDouble ? 1e-14 : 1e-6);
  }
  // Boolean weights (a mask) select rows.
  at::Tensor mask = at::tensor(std::vector<int64_t>{1, 0, 0, 1, 0}, at::kLong).to(at::kBool);
  EXPECT_NEAR(val(global_weighted_mean(self, at::tensor(v, at::kDouble), mask)), (1.5 + 4.0) / 2, 1e-14);
}

TEST(UnlearnGlobalWeightedMean, AllZeroWeightsGiveExactlyZero) {
  auto self = comm::make_self_comm();
  at::Tensor v = at::tensor(Vec{1e30, -3.0, NAN}, at::kDouble).set_requires_grad(true);
  at::Tensor r = global_weighted_mean(self, v, at::zeros({3}, at::kFloat));
  EXPECT_EQ(r.dim(), 0);
  EXPECT_EQ(val(r), 0.0);  // exactly, even with a NaN among the unweighted values
  EXPECT_FALSE(r.requires_grad());
}

// ---- per-pair contrastive and paired distance -------------------------------------------------
TEST(UnlearnPerPairContrastive, ClipIsSymmetricCrossEntropyOfScaledCosines) {
  Batch b = make_batch(/*meru=*/false);
  const Vec hand = hand_per_pair(b.img, b.txt, /*meru=*/false);
  at::Tensor l = per_pair_contrastive(b.ctx, b.f);
  ASSERT_EQ(l.numel(), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_NEAR(val(l[i]), hand[static_cast<size_t>(i)], kTol) << "row " << i;
}

TEST(UnlearnPerPairContrastive, MeruUsesNegativeLorentzDistanceLogits) {
  Batch b = make_batch(/*meru=*/true);
  const Vec hand = hand_per_pair(b.img, b.txt, /*meru=*/true);
  at::Tensor l = per_pair_contrastive(b.ctx, b.f);
  ASSERT_EQ(l.numel(), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_NEAR(val(l[i]), hand[static_cast<size_t>(i)], kTol) << "row " << i;
  at::Tensor d = geometry::paired_dist(b.f.image, b.f.text_own, b.f.curv);
  for (int64_t i = 0; i < 6; ++i) {
    const size_t r = static_cast<size_t>(i);
    EXPECT_NEAR(val(d[i]), lorentz_dist(b.img[r], b.txt_own[r]), kTol) << "row " << i;
    EXPECT_NEAR(val(paired_similarity(b.ctx, b.f)[i]), -lorentz_dist(b.img[r], b.txt_own[r]), kTol);
  }
}

// ---- calibrated contrastive -------------------------------------------------------------------
TEST(UnlearnCalibratedContrastive, WeightsForgetRowsByAlpha) {
  for (bool meru : {false, true}) {
    Batch b = make_batch(meru);
    const Vec l = hand_per_pair(b.img, b.txt, meru);
    for (double alpha : {0.0, 0.5, 1.0, 2.0}) {
      double sr = 0, sf = 0, nr = 0, nf = 0;
      for (size_t i = 0; i < l.size(); ++i) {
        (b.forget[i] ? sf : sr) += l[i];
        (b.forget[i] ? nf : nr) += 1;
      }
      Terms t;
      const double got = val(calibrated_contrastive(b.ctx, b.f, alpha, t));
      EXPECT_NEAR(got, (sr + alpha * sf) / (nr + alpha * nf), kTol) << "meru " << meru << " alpha " << alpha;
      EXPECT_EQ(names(t), std::vector<std::string>{"con"});
      EXPECT_EQ(part(t, "con"), got);
      if (alpha == 0.0) {
        EXPECT_NEAR(got, mean_where(l, [&](size_t i) { return b.is_retain(i); }), kTol);
      }
      if (alpha == 1.0) {
        EXPECT_NEAR(got, mean_where(l, [](size_t) { return true; }), kTol);
      }
    }
  }
}

// ---- positive calibration ---------------------------------------------------------------------
TEST(UnlearnPositiveCalibration, ClipIsMeanForgetCosineOfOwnCaption) {
  Batch b = make_batch(/*meru=*/false);
  Vec cos;
  for (size_t i = 0; i < 6; ++i) cos.push_back(cosine(b.img[i], b.txt_own[i]));
  Terms t;
  EXPECT_NEAR(val(positive_calibration(b.ctx, b.f, hac_cfg(), t)),
              mean_where(cos, [&](size_t i) { return b.is_forget(i); }), kTol);
  EXPECT_EQ(names(t), std::vector<std::string>{"pos"});
}

TEST(UnlearnPositiveCalibration, MeruNegDistAndHinge) {
  Batch b = make_batch(/*meru=*/true);
  Vec d;
  for (size_t i = 0; i < 6; ++i) d.push_back(lorentz_dist(b.img[i], b.txt_own[i]));
  auto fg = [&](size_t i) { return b.is_forget(i); };
  config::UnlearnConfig cfg = hac_cfg();
  Terms t;
  EXPECT_NEAR(val(positive_calibration(b.ctx, b.f, cfg, t)), -mean_where(d, fg), kTol);
  // Margin at the mean forget distance: some forget rows are inside the hinge, some beyond.
  cfg.pos_mode = "hinge";
  cfg.pos_margin = mean_where(d, fg);
  Vec hinge;
  int active = 0;
  for (size_t i = 0; i < 6; ++i) {
    hinge.push_back(std::max(0.0, cfg.pos_margin - d[i]));
    active += fg(i) && hinge.back() > 0;
  }
  ASSERT_GT(active, 0);
  ASSERT_LT(active, 3);
  EXPECT_NEAR(val(positive_calibration(b.ctx, b.f, cfg, t)), mean_where(hinge, fg), kTol);
}

// The bounded and radius-invariant forms, by hand: angle, hinge_ref, rescaled.
double angle_hand(const Vec& a, const Vec& b) { return std::acos(clamp(cosine(a, b), -1.0 + 1e-6, 1.0 - 1e-6)); }
Vec scaled_to(const Vec& x, double norm_wanted) {
  Vec out;
  for (double v : x) out.push_back(v * norm_wanted / norm(x));
  return out;
}
Vec at_radius(const Vec& x, double r) { return scaled_to(x, std::sinh(std::sqrt(kCurv) * r) / std::sqrt(kCurv)); }

TEST(UnlearnPositiveCalibration, BoundedAndRadiusInvariantFormsByHand) {
  for (bool meru : {false, true}) {
    Batch b = make_batch(meru);
    auto fg = [&](size_t i) { return b.is_forget(i); };
    config::UnlearnConfig cfg = hac_cfg();
    cfg.pos_margin_ratio = 1.7;
    Vec angle, hinge_ref, rescaled;
    for (size_t i = 0; i < 6; ++i) {
      const double a = angle_hand(b.img[i], b.txt_own[i]);
      const double d = meru ? lorentz_dist(b.img[i], b.txt_own[i]) : a;
      const double ref = val(b.f.ref_pair_dist[static_cast<int64_t>(i)]);
      angle.push_back(-a);
      hinge_ref.push_back(std::max(0.0, cfg.pos_margin_ratio * ref - d));
      rescaled.push_back(meru ? -lorentz_dist(at_radius(b.img[i], val(b.f.ref_image_dist0[static_cast<int64_t>(i)])),
                                             at_radius(b.txt_own[i], val(b.f.ref_text_dist0[static_cast<int64_t>(i)])))
                              : cosine(b.img[i], b.txt_own[i]));
    }
    for (const auto& [mode, want] : {std::pair<std::string, Vec>{"angle", angle}, {"hinge_ref", hinge_ref},
                                     {"rescaled", rescaled}}) {
      cfg.pos_mode = mode;
      Terms t;
      EXPECT_NEAR(val(positive_calibration(b.ctx, b.f, cfg, t)), mean_where(want, fg), 1e-9) << mode << " meru " << meru;
    }
    // hinge_ref reads the original's pair distances; without them it is an error, not a guess.
    Features no_ref = b.f;
    no_ref.ref_pair_dist = at::Tensor();
    cfg.pos_mode = "hinge_ref";
    Terms t;
    EXPECT_THROW(positive_calibration(b.ctx, no_ref, cfg, t), Error);
  }
}

// Forget images turned away from their caption at fixed norm (and so fixed radius).
at::Tensor turned_away(const at::Tensor& image, const at::Tensor& text, const at::Tensor& forget, double amount) {
  const at::Tensor r = image.norm(2, -1, true);
  const at::Tensor away = image / r - amount * text / text.norm(2, -1, true);
  const at::Tensor moved = away / away.norm(2, -1, true) * r;
  return at::where(forget.unsqueeze(-1), moved, image);
}

TEST(UnlearnPositiveCalibration, EveryFormFallsWhenPairsSeparateAtFixedRadius) {
  for (bool meru : {false, true}) {
    for (const std::string mode : {"neg_dist", "hinge", "hinge_ref", "angle", "rescaled"}) {
      Batch b = make_batch(meru);
      config::UnlearnConfig cfg = hac_cfg();
      cfg.pos_mode = mode;
      cfg.pos_margin = 10.0, cfg.pos_margin_ratio = 10.0;  // the hinges active on every forget row
      Terms t;
      const double before = val(positive_calibration(b.ctx, b.f, cfg, t));
      Features moved = b.f;
      moved.image = turned_away(b.f.image.detach(), b.f.text_own.detach(), b.f.forget, 0.5);
      // The radius is unchanged (the turn keeps each norm).
      EXPECT_TRUE(moved.image.norm(2, -1).allclose(b.f.image.detach().norm(2, -1), 1e-12, 1e-12));
      const double after = val(positive_calibration(b.ctx, moved, cfg, t));
      EXPECT_LT(after, before - 1e-3) << mode << " meru " << meru;
    }
  }
}

TEST(UnlearnPositiveCalibration, BoundedFormsDoNotFallWhenOnlyTheRadiusGrows) {
  Batch b = make_batch(/*meru=*/true);
  config::UnlearnConfig cfg = hac_cfg();
  auto value = [&](const std::string& mode, double grow) {
    cfg.pos_mode = mode;
    Features f = b.f;
    f.image = b.f.image.detach() * grow;
    f.text_own = b.f.text_own.detach() * grow;
    Terms t;
    return val(positive_calibration(b.ctx, f, cfg, t));
  };
  // The unbounded -d_c falls about one for one with the radius, without end.
  EXPECT_LT(value("neg_dist", 1e3), value("neg_dist", 1.0) - 5.0);
  EXPECT_LT(value("neg_dist", 1e4), value("neg_dist", 1e3) - 1.0);
  // Radius-invariant: the angle at the origin, and d_c at the original's radii.
  for (const std::string mode : {"angle", "rescaled"}) {
    for (double grow : {3.0, 1e3}) EXPECT_NEAR(value(mode, grow), value(mode, 1.0), 1e-9) << mode << " x" << grow;
  }
  // The hinges are bounded below by 0: once the margin is passed, growing further changes nothing.
  for (const std::string mode : {"hinge", "hinge_ref"}) {
    EXPECT_GE(value(mode, 1.0), 0.0);
    EXPECT_EQ(value(mode, 1e3), 0.0) << mode;
    EXPECT_EQ(value(mode, 1e4), 0.0) << mode;
  }
}

TEST(UnlearnPositiveCalibration, AngleHasNoRadialGradient) {
  Batch b = make_batch(/*meru=*/true);
  config::UnlearnConfig cfg = hac_cfg();
  cfg.pos_mode = "angle";
  Terms t;
  positive_calibration(b.ctx, b.f, cfg, t).backward();
  // The gradient of each row is orthogonal to the row: growing the radius cannot lower the term.
  const at::Tensor radial = (b.f.image.grad() * b.f.image.detach()).sum(-1);
  EXPECT_LT(radial.abs().max().item<double>(), 1e-12);
  EXPECT_GT(b.f.image.grad().abs().max().item<double>(), 1e-3);
}

// ---- entailment calibration -------------------------------------------------------------------
TEST(UnlearnEntailmentCalibration, OutRetainAndPartnerTerms) {
  Batch b = make_batch(/*meru=*/true);
  const config::UnlearnConfig cfg = hac_cfg();
  Vec out, ent_own, ent_partner;
  for (size_t i = 0; i < 6; ++i) {
    out.push_back(std::max(0.0, half_aperture(b.txt_own[i]) + cfg.entcal_margin - oxy_angle(b.txt_own[i], b.img[i])));
    ent_own.push_back(meru_entailment(b.img[i], b.txt_own[i]));
    ent_partner.push_back(meru_entailment(b.img[i], b.txt[i]));
  }
  // The batch exercises both sides of every hinge that is averaged.
  EXPECT_GT(out[1], 0.0);
  EXPECT_GT(out[4], 0.0);
  EXPECT_EQ(out[3], 0.0);
  EXPECT_GT(ent_own[2], 0.0);
  EXPECT_EQ(ent_own[0], 0.0);
  auto fg = [&](size_t i) { return b.is_forget(i); };
  auto rt = [&](size_t i) { return b.is_retain(i); };
  const double e_out = mean_where(out, fg), e_ret = mean_where(ent_own, rt), e_par = mean_where(ent_partner, fg);
  Terms t;
  const double total = val(entailment_calibration(b.ctx, b.f, cfg, t));
  EXPECT_EQ(names(t), (std::vector<std::string>{"entcal_out", "entcal_retain", "entcal_partner"}));
  EXPECT_NEAR(part(t, "entcal_out"), e_out, kTol);
  EXPECT_NEAR(part(t, "entcal_retain"), e_ret, kTol);
  EXPECT_NEAR(part(t, "entcal_partner"), e_par, kTol);
  EXPECT_NEAR(total, e_out + e_ret + e_par, kTol);

  config::UnlearnConfig only_out = cfg;
  only_out.entcal_retain = false, only_out.entcal_partner = false;
  Terms t2;
  EXPECT_NEAR(val(entailment_calibration(b.ctx, b.f, only_out, t2)), e_out, kTol);
  EXPECT_EQ(names(t2), std::vector<std::string>{"entcal_out"});

  // The aperture of the original's caption instead of the current one.
  config::UnlearnConfig original = only_out;
  original.entcal_aperture = "original";
  Vec out_ref;
  for (size_t i = 0; i < 6; ++i) {
    out_ref.push_back(std::max(0.0, val(b.f.ref_text_aperture[static_cast<int64_t>(i)]) + cfg.entcal_margin -
                                        oxy_angle(b.txt_own[i], b.img[i])));
  }
  Terms t3;
  EXPECT_NEAR(val(entailment_calibration(b.ctx, b.f, original, t3)), mean_where(out_ref, fg), kTol);

  Batch clip = make_batch(/*meru=*/false);
  EXPECT_THROW(entailment_calibration(clip.ctx, clip.f, cfg, t2), ConfigError);
}

// A gradient step on entcal_out with the radial part removed (the image kept at its radius, the
// caption fixed) moves a forget image that lies inside its caption's cone out of it.
TEST(UnlearnEntailmentCalibration, MovesAnImageOutOfItsConeAtFixedRadius) {
  Batch b = make_batch(/*meru=*/true);
  config::UnlearnConfig cfg = hac_cfg();
  cfg.entcal_retain = false, cfg.entcal_partner = false, cfg.entcal_margin = 0.0;
  const int64_t row = 1;  // a forget row inside its caption's cone
  auto margin = [&](const at::Tensor& image) {
    return val((geometry::oxy_angle(b.f.text_own, image, b.f.curv) - geometry::half_aperture(b.f.text_own, b.f.curv))[row]);
  };
  at::Tensor x = b.f.image.detach().clone();
  ASSERT_LT(margin(x), 0.0);
  const double radius = val(x[row].norm());
  for (int step = 0; step < 400 && margin(x) <= 0.0; ++step) {
    Features f = b.f;
    f.image = x.clone().set_requires_grad(true);
    Terms t;
    entailment_calibration(b.ctx, f, cfg, t).backward();
    at::Tensor g = f.image.grad();
    const at::Tensor unit = x / x.norm(2, -1, true);
    g = g - (g * unit).sum(-1, true) * unit;  // tangential: no radius change
    x = x - 0.05 * g;
    x = x / x.norm(2, -1, true) * b.f.image.detach().norm(2, -1, true);
  }
  EXPECT_NEAR(val(x[row].norm()), radius, 1e-12);
  EXPECT_GT(margin(x), 0.0) << "the image should have left its caption's cone at its radius";
}

// ---- norm regularization ----------------------------------------------------------------------
TEST(UnlearnNormRegularization, OriginKeepAndAnchorRetain) {
  Batch b = make_batch(/*meru=*/true);
  Vec origin, sq_dev;
  for (size_t i = 0; i < 6; ++i) {
    const double di = dist0(b.img[i]), dt = dist0(b.txt_own[i]);
    const double ri = val(b.f.ref_image_dist0[static_cast<int64_t>(i)]);
    const double rt = val(b.f.ref_text_dist0[static_cast<int64_t>(i)]);
    origin.push_back(0.5 * (di + dt));
    sq_dev.push_back(0.5 * ((di - ri) * (di - ri) + (dt - rt) * (dt - rt)));
  }
  auto fg = [&](size_t i) { return b.is_forget(i); };
  auto rt = [&](size_t i) { return b.is_retain(i); };
  config::UnlearnConfig cfg = hac_cfg();
  const std::vector<std::pair<std::string, double>> expect = {
      {"origin", mean_where(origin, fg)}, {"keep", mean_where(sq_dev, fg)}, {"anchor_retain", mean_where(sq_dev, rt)}};
  for (const auto& [mode, want] : expect) {
    cfg.norm_mode = mode;
    Terms t;
    EXPECT_NEAR(val(norm_regularization(b.ctx, b.f, cfg, t)), want, kTol) << mode;
    EXPECT_EQ(names(t), std::vector<std::string>{"norm"});
  }
  // l1 and grow, on forget rows and with norm_retain on retain rows too (their own mean, added).
  Vec abs_dev, grow_dev;
  for (size_t i = 0; i < 6; ++i) {
    const double di = dist0(b.img[i]) - val(b.f.ref_image_dist0[static_cast<int64_t>(i)]);
    const double dt = dist0(b.txt_own[i]) - val(b.f.ref_text_dist0[static_cast<int64_t>(i)]);
    abs_dev.push_back(0.5 * (std::abs(di) + std::abs(dt)));
    grow_dev.push_back(0.5 * (std::max(di, 0.0) + std::max(dt, 0.0)));
  }
  for (const auto& [mode, dev] : {std::pair<std::string, Vec>{"l1", abs_dev}, {"grow", grow_dev}, {"keep", sq_dev}}) {
    cfg.norm_mode = mode;
    cfg.norm_retain = false;
    Terms t;
    EXPECT_NEAR(val(norm_regularization(b.ctx, b.f, cfg, t)), mean_where(dev, fg), kTol) << mode;
    cfg.norm_retain = true;
    Terms t2;
    EXPECT_NEAR(val(norm_regularization(b.ctx, b.f, cfg, t2)), mean_where(dev, fg) + mean_where(dev, rt), kTol) << mode;
    EXPECT_EQ(names(t2), (std::vector<std::string>{"norm", "norm_retain"}));
    EXPECT_NEAR(part(t2, "norm_retain"), mean_where(dev, rt), kTol);
  }
  cfg.norm_retain = false;
  // keep and anchor_retain need the reference distances; CLIP has no hyperbolic norm.
  Features no_ref = b.f;
  no_ref.ref_image_dist0 = at::Tensor();
  Terms t;
  cfg.norm_mode = "keep";
  EXPECT_THROW(norm_regularization(b.ctx, no_ref, cfg, t), Error);
  cfg.norm_mode = "origin";
  EXPECT_NO_THROW(norm_regularization(b.ctx, no_ref, cfg, t));
  Batch clip = make_batch(/*meru=*/false);
  EXPECT_THROW(norm_regularization(clip.ctx, clip.f, cfg, t), ConfigError);
}

// At the start of unlearning every distance equals the original's: the quadratic keep has no
// gradient there, l1 and grow resist growth from the first step (and only on the rows they cover).
TEST(UnlearnNormRegularization, L1AndGrowHaveAGradientAtTheStart) {
  for (const std::string mode : {"keep", "l1", "grow"}) {
    for (bool retain : {false, true}) {
      Batch b = make_batch(/*meru=*/true);
      b.f.ref_image_dist0 = geometry::dist0(b.f.image, b.f.curv).detach();
      b.f.ref_text_dist0 = geometry::dist0(b.f.text_own, b.f.curv).detach();
      config::UnlearnConfig cfg = hac_cfg();
      cfg.norm_mode = mode;
      cfg.norm_retain = retain;
      Terms t;
      const at::Tensor v = norm_regularization(b.ctx, b.f, cfg, t);
      EXPECT_EQ(val(v), 0.0) << mode;
      v.backward();
      // Gradient along each row's own direction (d/d radius): > 0 means descent shrinks the radius.
      const at::Tensor radial = (b.f.image.grad() * b.f.image.detach()).sum(-1);
      for (int64_t i = 0; i < 6; ++i) {
        const bool covered = mode != "keep" && (b.is_forget(static_cast<size_t>(i)) || retain);
        if (covered) {
          EXPECT_GT(val(radial[i]), 1e-3) << mode << " row " << i;
        } else {
          EXPECT_EQ(val(radial[i]), 0.0) << mode << " row " << i;
        }
      }
    }
  }
}

TEST(UnlearnMethods, NormScaledMultipliesTheNormWeightByBetaEff) {
  Batch b = make_batch(/*meru=*/true);
  config::UnlearnConfig cfg = hac_cfg();
  cfg.norm_weight = 2.0;
  cfg.norm_mode = "l1";
  cfg.norm_scaled = false;
  const double plain = val(make_method(cfg, geo(true))->loss(b.ctx, b.f).loss);
  cfg.norm_scaled = true;
  const double scaled = val(make_method(cfg, geo(true))->loss(b.ctx, b.f).loss);
  Terms t;
  const double norm = val(norm_regularization(b.ctx, b.f, cfg, t));
  ASSERT_GT(norm, 0.0);
  EXPECT_NEAR(plain - scaled, 2.0 * norm * (1.0 - b.ctx.beta_eff), 1e-9);
}

// ---- batches without forget (or retain) rows --------------------------------------------------
bool grads_finite(const Features& f) {
  for (const at::Tensor* x : {&f.image, &f.text_own}) {
    if (!x->grad().defined() || !at::isfinite(x->grad()).all().item<bool>()) return false;
  }
  return true;
}

TEST(UnlearnNoForgetRows, ForgetTermsAreZeroAndTheLossIsFinite) {
  const std::vector<bool> none(6, false);
  for (bool meru : {false, true}) {
    Batch b = make_batch(meru, none);
    config::UnlearnConfig cfg = hac_cfg();
    Terms t;
    for (std::string mode : {"neg_dist", "hinge"}) {
      cfg.pos_mode = mode;
      EXPECT_EQ(val(positive_calibration(b.ctx, b.f, cfg, t)), 0.0) << mode;
    }
    // Without forget rows alpha changes nothing: the plain mean.
    EXPECT_NEAR(val(calibrated_contrastive(b.ctx, b.f, 0.5, t)),
                mean_where(hand_per_pair(b.img, b.txt, meru), [](size_t) { return true; }), kTol);
    if (meru) {
      cfg.entcal_retain = false;
      EXPECT_EQ(val(entailment_calibration(b.ctx, b.f, cfg, t)), 0.0);  // out + partner
      for (std::string mode : {"origin", "keep"}) {
        cfg.norm_mode = mode;
        EXPECT_EQ(val(norm_regularization(b.ctx, b.f, cfg, t)), 0.0) << mode;
      }
    }
    cfg = hac_cfg();
    cfg.method = meru ? "hac" : "ac";
    Terms all = make_method(cfg, geo(meru))->loss(b.ctx, b.f);
    for (const auto& [name, v] : all.parts) EXPECT_TRUE(std::isfinite(val(v))) << name;
    ASSERT_TRUE(std::isfinite(val(all.loss)));
    all.loss.backward();
    EXPECT_TRUE(grads_finite(b.f)) << "meru " << meru;
  }
}

TEST(UnlearnNoRetainRows, RetainTermsAreZero) {
  Batch b = make_batch(/*meru=*/true, std::vector<bool>(6, true));
  config::UnlearnConfig cfg = hac_cfg();
  cfg.entcal_partner = false, cfg.entcal_margin = -10.0;  // entcal_out is 0 for every row
  Terms t;
  EXPECT_EQ(val(entailment_calibration(b.ctx, b.f, cfg, t)), 0.0);
  EXPECT_EQ(part(t, "entcal_retain"), 0.0);
  cfg.norm_mode = "anchor_retain";
  EXPECT_EQ(val(norm_regularization(b.ctx, b.f, cfg, t)), 0.0);
  cfg = hac_cfg();
  Terms all = make_method(cfg, geo(true))->loss(b.ctx, b.f);
  ASSERT_TRUE(std::isfinite(val(all.loss)));
  all.loss.backward();
  EXPECT_TRUE(grads_finite(b.f));
}

// ---- whole methods ----------------------------------------------------------------------------
struct LossAndGrads {
  Terms terms;
  at::Tensor g_image, g_text;
};
LossAndGrads run(const Method& m, bool meru) {
  Batch b = make_batch(meru);
  LossAndGrads r{m.loss(b.ctx, b.f), {}, {}};
  r.terms.loss.backward();
  r.g_image = b.f.image.grad(), r.g_text = b.f.text_own.grad();
  return r;
}

TEST(UnlearnMethods, HacWithoutEntcalAndNormIsAcOnMeru) {
  config::UnlearnConfig cfg = hac_cfg();
  cfg.entcal = false, cfg.norm = false, cfg.pos_mode = "hinge", cfg.pos_margin = 2.0;
  const LossAndGrads hac = run(*make_method(cfg, geo(true)), true);
  cfg.method = "ac";
  const LossAndGrads ac = run(*make_method(cfg, geo(true)), true);
  EXPECT_TRUE(hac.terms.loss.equal(ac.terms.loss));
  EXPECT_TRUE(hac.g_image.equal(ac.g_image));
  EXPECT_TRUE(hac.g_text.equal(ac.g_text));
  EXPECT_EQ(names(hac.terms), (std::vector<std::string>{"con", "pos"}));
  EXPECT_EQ(names(ac.terms), (std::vector<std::string>{"con", "pos"}));
}

TEST(UnlearnMethods, HacIsTheWeightedSumOfItsTerms) {
  Batch b = make_batch(/*meru=*/true);
  config::UnlearnConfig cfg = hac_cfg();
  cfg.entcal_weight = 0.3, cfg.norm_weight = 0.05;
  const Vec l = hand_per_pair(b.img, b.txt, true);
  auto fg = [&](size_t i) { return b.is_forget(i); };
  auto rt = [&](size_t i) { return b.is_retain(i); };
  const double con = (mean_where(l, rt) * 3 + cfg.alpha * mean_where(l, fg) * 3) / (3 + cfg.alpha * 3);
  Vec d, out, own, par, dev;
  for (size_t i = 0; i < 6; ++i) {
    d.push_back(lorentz_dist(b.img[i], b.txt_own[i]));
    out.push_back(std::max(0.0, half_aperture(b.txt_own[i]) + cfg.entcal_margin - oxy_angle(b.txt_own[i], b.img[i])));
    own.push_back(meru_entailment(b.img[i], b.txt_own[i]));
    par.push_back(meru_entailment(b.img[i], b.txt[i]));
    const double di = dist0(b.img[i]) - val(b.f.ref_image_dist0[static_cast<int64_t>(i)]);
    const double dt = dist0(b.txt_own[i]) - val(b.f.ref_text_dist0[static_cast<int64_t>(i)]);
    dev.push_back(0.5 * (di * di + dt * dt));
  }
  const double want = con - b.ctx.beta_eff * mean_where(d, fg) +
                      cfg.entcal_weight * (mean_where(out, fg) + mean_where(own, rt) + mean_where(par, fg)) +
                      cfg.norm_weight * mean_where(dev, fg);
  const Terms t = make_method(cfg, geo(true))->loss(b.ctx, b.f);
  EXPECT_NEAR(val(t.loss), want, kTol);
}

TEST(UnlearnMethods, BaselinesByHand) {
  for (bool meru : {false, true}) {
    Batch b = make_batch(meru);
    const Vec l = hand_per_pair(b.img, b.txt, meru);
    Vec ent;
    for (size_t i = 0; i < 6; ++i) ent.push_back(meru ? meru_entailment(b.img[i], b.txt[i]) : 0.0);
    auto all = [](size_t) { return true; };
    const double native = mean_where(l, all) + (meru ? b.ctx.entail_weight * mean_where(ent, all) : 0.0);
    double signed_sum = 0;
    for (size_t i = 0; i < 6; ++i) signed_sum += b.forget[i] ? -l[i] : l[i];
    config::UnlearnConfig cfg;
    cfg.l1_weight = 0.01;
    b.f.params = {at::tensor(Vec{0.5, -1.5}, at::kDouble), at::tensor(Vec{-2.0}, at::kDouble)};
    for (std::string name : {"ft", "retrain", "ga", "ng", "l1"}) {
      cfg.method = name;
      const Terms t = make_method(cfg, geo(meru))->loss(b.ctx, b.f);
      double want = native;
      if (name == "ga") want = -native;
      if (name == "ng") want = signed_sum / 6;
      if (name == "l1") want = native + 0.01 * (0.5 + 1.5 + 2.0);
      EXPECT_NEAR(val(t.loss), want, kTol) << name << " meru " << meru;
    }
    EXPECT_NEAR(val(make_pretrain_method()->loss(b.ctx, b.f).loss), native, kTol);
  }
}

TEST(UnlearnMethods, PartsEachMethodReports) {
  using Names = std::vector<std::string>;
  config::UnlearnConfig cfg = hac_cfg();
  auto parts_of = [&](bool meru) {
    const Batch b = make_batch(meru);
    return names(make_method(cfg, geo(meru))->loss(b.ctx, b.f));
  };
  cfg.entcal_partner = false;
  EXPECT_EQ(parts_of(true), (Names{"con", "pos", "entcal_out", "entcal_retain", "norm"}));
  cfg.entcal_partner = true;
  EXPECT_EQ(parts_of(true), (Names{"con", "pos", "entcal_out", "entcal_retain", "entcal_partner", "norm"}));
  cfg.entcal = false;
  EXPECT_EQ(parts_of(true), (Names{"con", "pos", "norm"}));
  cfg.entcal = true, cfg.norm = false;
  EXPECT_EQ(parts_of(true), (Names{"con", "pos", "entcal_out", "entcal_retain", "entcal_partner"}));
  cfg.method = "ac";
  EXPECT_EQ(parts_of(false), (Names{"con", "pos"}));
  EXPECT_EQ(parts_of(true), (Names{"con", "pos"}));
  for (std::string name : {"ft", "ga", "retrain"}) {
    cfg.method = name;
    EXPECT_EQ(parts_of(false), (Names{"contrastive"})) << name;
    EXPECT_EQ(parts_of(true), (Names{"contrastive", "entailment"})) << name;
  }
  cfg.method = "ng";
  EXPECT_EQ(parts_of(true), (Names{"signed_contrastive"}));
  cfg.method = "l1";
  EXPECT_EQ(parts_of(false), (Names{"contrastive", "l1"}));
  EXPECT_EQ(parts_of(true), (Names{"contrastive", "entailment", "l1"}));
  Batch b = make_batch(true);
  EXPECT_EQ(names(make_pretrain_method()->loss(b.ctx, b.f)), (Names{"contrastive", "entailment"}));
}

// ---- the factory and beta_eff -----------------------------------------------------------------
TEST(UnlearnMakeMethod, NamesAndErrors) {
  config::UnlearnConfig cfg;
  cfg.method = "forget_everything";
  EXPECT_THROW(make_method(cfg, geo(true)), ConfigError);
  cfg.method = "hac";
  EXPECT_THROW(make_method(cfg, geo(false)), ConfigError);
  EXPECT_NO_THROW(make_method(cfg, geo(true)));
  for (const std::string& name : method_names()) {
    cfg.method = name;
    EXPECT_EQ(make_method(cfg, geo(true))->name(), name);
  }
  EXPECT_EQ(make_pretrain_method()->name(), "pretrain");
}

// ---- the registry ------------------------------------------------------------------------------
TEST(UnlearnRegistry, NamesAreUniqueWithHelpAndLorentzReasons) {
  std::vector<std::string> names = method_names();
  ASSERT_EQ(names.size(), methods().size());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  for (const MethodInfo& m : methods()) {
    EXPECT_EQ(find_method(m.name), &m);
    EXPECT_GT(std::string(m.help).size(), 10u) << m.name;
    EXPECT_EQ(m.lorentz_only, std::string(m.lorentz_why).size() > 0) << m.name;
    config::UnlearnConfig cfg;
    cfg.method = m.name;
    // A Lorentz-only method is refused on CLIP with its reason; the others build on both geometries.
    if (m.lorentz_only) {
      try {
        make_method(cfg, geo(false));
        ADD_FAILURE() << m.name << " built on CLIP";
      } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(m.lorentz_why), std::string::npos) << e.what();
      }
    } else {
      EXPECT_EQ(make_method(cfg, geo(false))->name(), m.name);
    }
  }
  EXPECT_EQ(find_method("pretrain"), nullptr);  // the pretraining objective is not an unlearning method
  EXPECT_EQ(find_method("scrub"), nullptr);
}

TEST(UnlearnRegistry, ConfigCheckNamesTheKeyTheValueAndEveryMethod) {
  config::Config c;
  for (const std::string& name : method_names()) {
    c.unlearn.method = name;
    EXPECT_NO_THROW(check_method(c)) << name;
  }
  c.unlearn.method = "scrub";
  try {
    check_method(c);
    FAIL() << "scrub accepted";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unlearn.method"), std::string::npos) << what;
    EXPECT_NE(what.find("'scrub'"), std::string::npos) << what;
    for (const std::string& name : method_names()) EXPECT_NE(what.find(name), std::string::npos) << what;
  }
}

TEST(UnlearnRegistry, MarkdownHasARowPerMethodAndDocsAreCurrent) {
  const std::string md = methods_markdown();
  for (const MethodInfo& m : methods()) {
    EXPECT_NE(md.find(std::string("| `") + m.name + "` |"), std::string::npos) << m.name;
  }
  // docs/training.md carries the table between markers (scripts/fill-markers.py pastes it).
  std::ifstream in(std::string(RUNNER_SOURCE_DIR) + "/docs/training.md");
  ASSERT_TRUE(in) << "docs/training.md";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- methods-table:begin -->\n", end = "<!-- methods-table:end -->";
  const auto b = doc.find(begin), e = doc.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), md + "\n")
      << "docs/training.md's methods table is stale: run `hac config --methods > methods.md` and "
         "`scripts/fill-markers.py docs/training.md methods-table methods.md`";
}

TEST(UnlearnMakeMethod, RowsNeedsTrainsFromScratch) {
  struct Want {
    std::string name;
    Rows rows;
    bool partners, reference, trains, scratch;
  };
  const std::vector<Want> wants = {
      {"hac", Rows::kAll, true, true, true, false},   {"ac", Rows::kAll, true, false, true, false},
      {"ft", Rows::kRetain, false, false, true, false}, {"ga", Rows::kForget, false, false, true, false},
      {"ng", Rows::kAll, false, false, true, false},  {"l1", Rows::kRetain, false, false, true, false},
      {"retrain", Rows::kRetain, false, false, true, true}, {"none", Rows::kAll, false, false, false, false},
  };
  config::UnlearnConfig cfg;  // defaults: norm on, norm_mode keep
  for (const Want& w : wants) {
    cfg.method = w.name;
    auto m = make_method(cfg, geo(true));
    EXPECT_EQ(m->rows(), w.rows) << w.name;
    EXPECT_EQ(m->needs().partners, w.partners) << w.name;
    EXPECT_EQ(m->needs().reference, w.reference) << w.name;
    EXPECT_EQ(m->trains(), w.trains) << w.name;
    EXPECT_EQ(m->from_scratch(), w.scratch) << w.name;
  }
  auto pre = make_pretrain_method();
  EXPECT_EQ(pre->rows(), Rows::kAll);
  EXPECT_TRUE(pre->trains());
  EXPECT_FALSE(pre->from_scratch());
  EXPECT_FALSE(pre->needs().partners || pre->needs().reference);
  // hac needs reference distances only for the norm modes that compare with them.
  cfg.method = "hac";
  for (const auto& [norm, mode, want] : std::vector<std::tuple<bool, std::string, bool>>{
           {true, "keep", true}, {true, "anchor_retain", true}, {true, "origin", false}, {false, "keep", false}}) {
    cfg.norm = norm, cfg.norm_mode = mode;
    EXPECT_EQ(make_method(cfg, geo(true))->needs().reference, want) << norm << " " << mode;
  }
}

TEST(UnlearnMakeMethod, NoneRefusesToComputeALoss) {
  config::UnlearnConfig cfg;
  cfg.method = "none";
  Batch b = make_batch(true);
  EXPECT_THROW(make_method(cfg, geo(true))->loss(b.ctx, b.f), Error);
}

TEST(UnlearnEffectiveBeta, ScaledAndUnscaled) {
  config::UnlearnConfig cfg;
  cfg.beta = 2.0;
  cfg.beta_scaled = true;
  EXPECT_DOUBLE_EQ(effective_beta(cfg, /*forget_size=*/30, /*retain_size=*/90), 2.0 * 30 / 120);
  EXPECT_EQ(effective_beta(cfg, 0, 90), 0.0);
  EXPECT_EQ(effective_beta(cfg, 0, 0), 0.0);  // no rows at all: no NaN
  cfg.beta_scaled = false;
  EXPECT_EQ(effective_beta(cfg, 30, 90), 2.0);
}

}  // namespace
}  // namespace runner::unlearn
