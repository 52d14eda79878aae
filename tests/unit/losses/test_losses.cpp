// Losses against the reference MERU code (meru_losses.pt) and closed forms, at world 1.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "geometry/lorentz.h"
#include "losses/contrastive.h"
#include "support/golden.h"

namespace runner::losses {
namespace {

using runner::testing::close;
using runner::testing::Golden;

const Golden& g() {
  static const Golden golden("meru_losses.pt");
  return golden;
}

at::Tensor golden_curv() { return g()["log_curv"].reshape({}).exp(); }

TEST(LossesGolden, HyperbolicEmbeddingsOfTheProjectedFeatures) {
  // MERU: exp_map0(exp(alpha) * projected features, c).
  at::Tensor img = geometry::exp_map0(g()["img_feats"] * g()["visual_alpha"].exp(), golden_curv());
  at::Tensor txt = geometry::exp_map0(g()["txt_feats"] * g()["textual_alpha"].exp(), golden_curv());
  EXPECT_TRUE(close(img, g()["img_hyp"], 1e-5, 1e-6));
  EXPECT_TRUE(close(txt, g()["txt_hyp"], 1e-5, 1e-6));
}

// Losses are means of log-sum-exps over 8 logits scaled by up to 100: float32 round-off in the
// logits (~1e-6 relative) stays ~1e-6 relative in the loss; 1e-5 leaves a margin.
TEST(LossesGolden, MeruContrastiveEntailmentAndTotal) {
  auto self = comm::make_self_comm();
  const at::Tensor img = g()["img_hyp"], txt = g()["txt_hyp"];
  const at::Tensor con =
      contrastive_per_pair(self, geometry::Geometry::kLorentz, img, txt, g()["logit_scale"].reshape({}), golden_curv())
          .mean();
  const at::Tensor ent = entailment_per_pair(img, txt, golden_curv()).mean();
  EXPECT_TRUE(close(con, g()["meru_contrastive"].reshape({}), 1e-5, 1e-6));
  // Entailment goes through acos near its clamp for some pairs: 1e-4 absolute (see geometry).
  EXPECT_TRUE(close(ent, g()["meru_entailment"].reshape({}), 1e-4, 1e-5));
  EXPECT_TRUE(close(con + 0.2 * ent, g()["meru_loss_entail_weight_0_2"].reshape({}), 1e-5, 2e-5));
}

TEST(LossesGolden, ClipContrastiveOnNormalizedFeatures) {
  auto self = comm::make_self_comm();
  auto norm = [](const at::Tensor& x) { return x / x.norm(2, -1, true); };
  at::Tensor l = contrastive_per_pair(self, geometry::Geometry::kEuclidean, norm(g()["img_feats"]), norm(g()["txt_feats"]),
                             g()["logit_scale"].reshape({}), at::ones({})).mean();
  EXPECT_TRUE(close(l, g()["clip_contrastive"].reshape({}), 1e-5, 1e-6));
}

TEST(Losses, PerPairIsTheSymmetricCrossEntropyOfEachRow) {
  auto self = comm::make_self_comm();
  at::Tensor img = geometry::exp_map0(at::randn({6, 5}, at::kDouble), 1.0);
  at::Tensor txt = geometry::exp_map0(at::randn({6, 5}, at::kDouble), 1.0);
  at::Tensor s = at::scalar_tensor(2.0, at::kDouble), c = at::scalar_tensor(1.0, at::kDouble);
  at::Tensor per = contrastive_per_pair(self, geometry::Geometry::kLorentz, img, txt, s, c);
  ASSERT_EQ(per.sizes(), (std::vector<int64_t>{6}));
  // Row i by hand: logits e^s * (-d(x_i, y_j)); l_i = (lse_j(row) - row_i + lse_j(col) - col_i) / 2.
  const at::Tensor logits = -geometry::pairwise_dist(img, txt, c) * std::exp(2.0);
  for (int64_t i = 0; i < 6; ++i) {
    const double row = (at::logsumexp(logits[i], 0) - logits[i][i]).item<double>();
    const double col = (at::logsumexp(logits.select(1, i), 0) - logits[i][i]).item<double>();
    EXPECT_NEAR(per[i].item<double>(), 0.5 * (row + col), 1e-10) << i;
  }
}

TEST(Losses, ClosedForms) {
  auto self = comm::make_self_comm();
  const int64_t b = 5;
  // All captions identical: every row's softmax is uniform, the loss is log(B).
  at::Tensor img = at::randn({b, 4});
  img = img / img.norm(2, -1, true);
  at::Tensor same = img[0].expand({b, 4}).contiguous();
  at::Tensor l = contrastive_per_pair(self, geometry::Geometry::kEuclidean, same, same, at::scalar_tensor(1.0), at::ones({})).mean();
  EXPECT_NEAR(l.item<double>(), std::log(static_cast<double>(b)), 1e-6);
  // Orthonormal pairs with a large scale: the loss vanishes.
  at::Tensor eye = at::eye(b);
  at::Tensor l2 = contrastive_per_pair(self, geometry::Geometry::kEuclidean, eye, eye, at::scalar_tensor(std::log(100.0)), at::ones({})).mean();
  EXPECT_LT(l2.item<double>(), 1e-10);
}

TEST(Losses, EntailmentIsZeroInsideTheConeAndPositiveOutside) {
  at::Tensor txt = geometry::exp_map0(at::randn({4, 3}, at::kDouble) + 1.0, 1.0);
  at::Tensor c = at::scalar_tensor(1.0, at::kDouble);
  // Images farther along the caption's own ray are inside its cone.
  EXPECT_TRUE(entailment_per_pair(txt * 3.0, txt, c).eq(0).all().item<bool>());
  // Images on the opposite side are outside, by angle - aperture.
  at::Tensor out = entailment_per_pair(-txt, txt, c);
  EXPECT_TRUE((out > 0).all().item<bool>());
  EXPECT_TRUE(close(out, geometry::oxy_angle(txt, -txt, c) - geometry::half_aperture(txt, c), 1e-12, 1e-12));
}

}  // namespace
}  // namespace runner::losses
