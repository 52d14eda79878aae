// MPI tests of src/unlearn at 2 and 4 ranks: every method's loss on W shards of a fixed global
// batch of 8 rows, with gradients averaged by GradReducer, equals the method on the whole batch
// in one process (make_self_comm), for a tiny MERU and a tiny CLIP; at 1 rank, where that would
// compare a process with itself, only the mask check runs (tests/CMakeLists.txt). The forget
// mask puts forget and retain rows on every rank at 2 ranks; at 4 ranks one rank has only forget
// rows and another none, so the guards for empty sets run inside a real collective.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "comm/grad_reducer.h"
#include "comm/runtime.h"
#include "models/contrastive_model.h"
#include "unlearn/method.h"
#include "unlearn/registry.h"

namespace runner::unlearn {
namespace {

constexpr int64_t kRows = 8;        // G, the global batch
constexpr int64_t kTokens = 8;      // caption length (the tiny text encoder allows 32)
constexpr int64_t kEot = 511;       // the tiny vocabulary's largest id: pooled position
constexpr uint64_t kModelSeed = 11; // every model (distributed and reference) starts from this
// Rank shards at W = 4: [0,1] mixed, [2,3] mixed, [4,5] forget only, [6,7] retain only.
const std::vector<int64_t> kForgetRows = {0, 3, 4, 5};
// Each forget row's partner caption: another forget row's (a derangement of kForgetRows).
const std::vector<int64_t> kPartnerRows = {3, 4, 5, 0};

// float32 through a transformer: sums in a different order across batch sizes. A gradient entry
// is a sum of contributions of the size of the tensor's largest entries, so near-zero entries
// carry round-off of that size (measured: up to 2.2e-6 of the largest entry at 4 ranks); the
// absolute tolerance grows with the tensor's largest entry (kScaleTol), a wrong weighting or a
// missing rank changes gradients by far more.
constexpr double kRtol = 1e-4, kAtol = 1e-6, kScaleTol = 1e-5;

struct GlobalBatch {
  at::Tensor pixels, tokens, forget, ref_image_dist0, ref_text_dist0, ref_pair_dist, ref_text_aperture;
  std::vector<int64_t> partner_of;  // row -> partner row (forget rows), -1 for retain rows
};

GlobalBatch make_global_batch() {
  at::manual_seed(2024);
  GlobalBatch g;
  g.pixels = at::rand({kRows, 1, 28, 28});
  g.tokens = at::randint(1, kEot - 100, {kRows, kTokens}, at::kLong);
  g.tokens.select(1, kTokens - 1).fill_(kEot);
  g.forget = at::zeros({kRows}, at::kBool);
  g.partner_of.assign(kRows, -1);
  for (size_t k = 0; k < kForgetRows.size(); ++k) {
    g.forget[kForgetRows[k]] = true;
    g.partner_of[static_cast<size_t>(kForgetRows[k])] = kPartnerRows[k];
  }
  // Distances to the origin under "the original model": constants, as the loop would precompute.
  g.ref_image_dist0 = at::linspace(0.4, 1.1, kRows, at::kFloat);
  g.ref_text_dist0 = at::linspace(0.9, 0.3, kRows, at::kFloat);
  g.ref_pair_dist = at::linspace(1.2, 3.0, kRows, at::kFloat);
  g.ref_text_aperture = at::linspace(0.3, 0.9, kRows, at::kFloat);
  return g;
}

models::ContrastiveModel make_model(bool meru) {
  at::manual_seed(kModelSeed);
  return models::ContrastiveModel(models::model_preset("tiny", meru ? geometry::Geometry::kLorentz : geometry::Geometry::kEuclidean));
}

std::vector<at::Tensor> trainable(models::ContrastiveModel& m) {
  std::vector<at::Tensor> ps;
  for (auto& p : m->parameters()) {
    if (p.requires_grad()) ps.push_back(p);
  }
  return ps;
}

// The features of rows [start, start + n) of the global batch, as train/loop.cpp's Run::features
// builds them: own and partner captions in one text pass, partners written over forget rows.
Features features(models::ContrastiveModel& m, const Method& method, const GlobalBatch& g, int64_t start,
                  int64_t n) {
  Features f;
  f.forget = g.forget.narrow(0, start, n).clone();
  const at::Tensor own_tokens = g.tokens.narrow(0, start, n);
  std::vector<int64_t> forget_pos, partner_rows;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = g.partner_of[static_cast<size_t>(start + i)];
    if (p >= 0) forget_pos.push_back(i), partner_rows.push_back(p);
  }
  if (method.needs().partners && !forget_pos.empty()) {
    const at::Tensor partner_tokens = g.tokens.index_select(0, at::tensor(partner_rows, at::kLong));
    const at::Tensor all = m->encode_text(at::cat({own_tokens, partner_tokens}));
    f.text_own = all.slice(0, 0, n);
    f.text = f.text_own.index_copy(0, at::tensor(forget_pos, at::kLong), all.slice(0, n));
  } else {
    f.text_own = m->encode_text(own_tokens);
    f.text = f.text_own;
  }
  f.image = m->encode_image(g.pixels.narrow(0, start, n));
  f.logit_scale = m->logit_scale;
  if (m->is_meru()) f.curv = m->curvature();
  f.ref_image_dist0 = g.ref_image_dist0.narrow(0, start, n).clone();
  f.ref_text_dist0 = g.ref_text_dist0.narrow(0, start, n).clone();
  f.ref_pair_dist = g.ref_pair_dist.narrow(0, start, n).clone();
  f.ref_text_aperture = g.ref_text_aperture.narrow(0, start, n).clone();
  f.params = trainable(m);
  return f;
}

struct Case {
  std::string label;  // test-name suffix
  std::string method; // "pretrain" or an unlearn.method
  bool meru;
  config::UnlearnConfig cfg;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

std::unique_ptr<Method> method_of(const Case& c) {
  if (c.method == "pretrain") return make_pretrain_method();
  return make_method(c.cfg, c.meru ? geometry::Geometry::kLorentz : geometry::Geometry::kEuclidean);
}

Case make_case(const std::string& method, bool meru, const std::string& variant = "") {
  Case c{method + (meru ? "_meru" : "_clip") + variant, method, meru, {}};
  c.cfg.method = method == "pretrain" ? "ft" : method;
  c.cfg.alpha = 0.7;
  c.cfg.l1_weight = 1e-3;  // large enough that the penalty shows in the gradients
  c.cfg.entcal_margin = 2.5;  // at initialization images lie far outside their caption cones
  c.cfg.entcal_partner = true;
  c.cfg.norm_mode = "keep";
  if (variant == "_anchor_hinge") c.cfg.norm_mode = "anchor_retain", c.cfg.pos_mode = "hinge", c.cfg.pos_margin = 2.0;
  // The bounded pushes and the norm forms that hold radii (docs/training.md).
  if (variant == "_hingeref_l1") {
    c.cfg.pos_mode = "hinge_ref", c.cfg.norm_mode = "l1", c.cfg.norm_retain = true, c.cfg.norm_scaled = true;
    c.cfg.pos_margin_ratio = 2.0;
  }
  if (variant == "_angle_grow") c.cfg.pos_mode = "angle", c.cfg.norm_mode = "grow", c.cfg.entcal_aperture = "original";
  if (variant == "_rescaled") c.cfg.pos_mode = "rescaled", c.cfg.norm_mode = "l1";
  return c;
}

double part_value(const Terms& t, const std::string& name) {
  for (const auto& [n, v] : t.parts) {
    if (n == name) return v.item<double>();
  }
  ADD_FAILURE() << "no part " << name;
  return NAN;
}

class UnlearnRanks : public ::testing::TestWithParam<Case> {};

TEST_P(UnlearnRanks, ShardsWithGradReducerEqualOneProcess) {
  const Case& c = GetParam();
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  ASSERT_EQ(kRows % w, 0);
  const int64_t b = kRows / w;
  const GlobalBatch g = make_global_batch();
  auto method = method_of(c);
  Context ctx;
  ctx.geometry = c.meru ? geometry::Geometry::kLorentz : geometry::Geometry::kEuclidean;
  ctx.beta_eff = 0.5;
  ctx.entail_weight = 0.2;

  // One process, the whole batch (on every rank, so every rank can compare).
  models::ContrastiveModel ref = make_model(c.meru);
  ctx.comm = comm::make_self_comm();
  const Terms ref_terms = method->loss(ctx, features(ref, *method, g, 0, kRows));
  ref_terms.loss.backward();

  // W ranks, rows [r b, (r + 1) b) each.
  models::ContrastiveModel mine = make_model(c.meru);
  std::vector<at::Tensor> params = trainable(mine);
  comm::GradReducer reducer(comm, params);
  ctx.comm = comm;
  const Terms terms = method->loss(ctx, features(mine, *method, g, r * b, b));
  terms.loss.backward();
  reducer.reduce();

  // Loss and every logged part: the mean over ranks is the single-process value.
  ASSERT_EQ(terms.parts.size(), ref_terms.parts.size());
  std::vector<at::Tensor> vals{terms.loss.detach().to(at::kDouble).reshape({1})};
  for (const auto& [name, v] : terms.parts) vals.push_back(v.reshape({1}));
  at::Tensor mean = at::cat(vals).contiguous();
  comm->all_reduce(mean, comm::ReduceOp::kSum);
  mean /= static_cast<double>(w);
  const double ref_loss = ref_terms.loss.item<double>();
  EXPECT_NEAR(mean[0].item<double>(), ref_loss, kRtol * std::abs(ref_loss) + kAtol) << "loss of " << c.label;
  for (size_t k = 0; k < terms.parts.size(); ++k) {
    const std::string& name = terms.parts[k].first;
    const double want = part_value(ref_terms, name);
    EXPECT_NEAR(mean[static_cast<int64_t>(k + 1)].item<double>(), want, kRtol * std::abs(want) + kAtol)
        << "part " << name << " of " << c.label;
  }

  // Every parameter's averaged gradient is the single-process gradient.
  const auto ref_named = ref->named_parameters();
  const auto mine_named = mine->named_parameters();
  ASSERT_EQ(ref_named.size(), mine_named.size());
  int64_t compared = 0, nonzero = 0;
  for (size_t i = 0; i < ref_named.size(); ++i) {
    const at::Tensor& p = mine_named[i].value();
    if (!p.requires_grad()) continue;
    const std::string& name = mine_named[i].key();
    at::Tensor want = ref_named[i].value().grad();
    at::Tensor got = p.grad();
    if (!want.defined()) want = at::zeros_like(p);
    if (!got.defined()) got = at::zeros_like(p);
    ASSERT_TRUE(at::isfinite(want).all().item<bool>()) << name << " of " << c.label;
    const double scale = want.abs().max().item<double>();
    EXPECT_TRUE(got.allclose(want, kRtol, kAtol + kScaleTol * scale))
        << c.label << ": gradient of " << name << " differs by " << (got - want).abs().max().item<double>()
        << " (largest reference entry " << scale << ")";
    ++compared;
    nonzero += scale > 0;
  }
  EXPECT_GT(compared, 10);
  EXPECT_GT(nonzero, compared / 2) << "most gradients should be non-zero, else the comparison is vacuous";
}

std::vector<Case> cases() {
  // Every method of the registry that trains, on each geometry it accepts, plus pretraining.
  std::vector<Case> out = {make_case("hac", true, "_anchor_hinge"), make_case("hac", true, "_hingeref_l1"),
                           make_case("hac", true, "_angle_grow"),    make_case("hac", true, "_rescaled"),
                           make_case("ac", false, "_hingeref_l1"),   make_case("ac", false, "_angle_grow"),
                           make_case("pretrain", true),              make_case("pretrain", false)};
  for (const MethodInfo& m : methods()) {
    if (!traits(m).trains) continue;
    out.push_back(make_case(m.name, true));
    if (!m.lorentz_only) out.push_back(make_case(m.name, false));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, UnlearnRanks, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.label; });

// The fixed mask does what the header says at 4 ranks: one rank without forget rows, one
// without retain rows, each of the others with both.
TEST(UnlearnRanksMask, ShardsCoverTheEmptySetCases) {
  const GlobalBatch g = make_global_batch();
  const std::vector<int64_t> forget_per_pair = {1, 1, 2, 0};
  for (int64_t s = 0; s < 4; ++s) {
    EXPECT_EQ(g.forget.narrow(0, 2 * s, 2).sum().item<int64_t>(), forget_per_pair[static_cast<size_t>(s)]);
  }
  for (int64_t s = 0; s < 2; ++s) {
    const int64_t nf = g.forget.narrow(0, 4 * s, 4).sum().item<int64_t>();
    EXPECT_TRUE(nf > 0 && nf < 4) << "2-rank shard " << s << " must mix forget and retain rows";
  }
}

}  // namespace
}  // namespace runner::unlearn
