// MPI tests of src/losses at 2 and 4 ranks: the MERU loss (contrastive over gathered
// hyperbolic embeddings + entailment) and the CLIP loss on N ranks x B/N rows equal one process
// on B rows, in value and in the gradients of the features, logit scale and curvature. Not run at
// 1 rank, where it would compare a process with itself (the losses alone: tests/unit/losses).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "comm/grad_reducer.h"
#include "comm/runtime.h"
#include "geometry/lorentz.h"
#include "losses/contrastive.h"

namespace runner::losses {
namespace {

struct Inputs {
  at::Tensor img, txt, logit_scale, log_curv;
};

// Same values on every rank (same seed); each rank differentiates w.r.t. its own leaf copies.
Inputs make_inputs(int64_t batch) {
  at::manual_seed(7);
  auto o = at::TensorOptions().dtype(at::kDouble);
  return {at::randn({batch, 6}, o) * 0.6, at::randn({batch, 6}, o) * 0.6,
          at::scalar_tensor(std::log(10.0), o), at::scalar_tensor(std::log(0.7), o)};
}

Inputs leaves(const Inputs& in, int64_t start, int64_t rows) {
  return {in.img.narrow(0, start, rows).clone().set_requires_grad(true),
          in.txt.narrow(0, start, rows).clone().set_requires_grad(true),
          in.logit_scale.clone().set_requires_grad(true), in.log_curv.clone().set_requires_grad(true)};
}

at::Tensor loss_of(const comm::CommPtr& comm, const Inputs& x, bool meru) {
  if (!meru) {
    auto norm = [](const at::Tensor& t) { return t / t.norm(2, -1, true); };
    return contrastive_per_pair(comm, geometry::Geometry::kEuclidean, norm(x.img), norm(x.txt), x.logit_scale, at::ones({})).mean();
  }
  at::Tensor c = x.log_curv.exp();
  const at::Tensor img = geometry::exp_map0(x.img, c), txt = geometry::exp_map0(x.txt, c);
  // MERU's total: mean contrastive + 0.2 * mean entailment.
  return contrastive_per_pair(comm, geometry::Geometry::kLorentz, img, txt, x.logit_scale, c).mean() +
         0.2 * entailment_per_pair(img, txt, c).mean();
}

// float64: only the order of additions differs, so 1e-10 relative is round-off with margin.
void check(bool meru) {
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  const int64_t batch = 12, b = batch / w;
  Inputs in = make_inputs(batch);
  Inputs ref = leaves(in, 0, batch);
  at::Tensor ref_loss = loss_of(comm::make_self_comm(), ref, meru);
  ref_loss.backward();

  Inputs mine = leaves(in, r * b, b);
  at::Tensor loss = loss_of(comm, mine, meru);
  loss.backward();
  at::Tensor mean_loss = loss.detach().clone();
  comm->all_reduce(mean_loss, comm::ReduceOp::kSum);
  EXPECT_NEAR(mean_loss.item<double>() / w, ref_loss.item<double>(), 1e-10 * std::abs(ref_loss.item<double>()));
  // Feature gradients: w times this rank's rows of the reference gradient. Every rank's loss
  // (a mean over B/N rows) reaches these rows through the gather, and the reference is the
  // mean of those w losses; GradReducer's average over ranks then brings parameters back to 1x.
  EXPECT_TRUE(mine.img.grad().allclose(ref.img.grad().narrow(0, r * b, b) * w, 1e-9, 1e-12));
  EXPECT_TRUE(mine.txt.grad().allclose(ref.txt.grad().narrow(0, r * b, b) * w, 1e-9, 1e-12));
  // Shared scalars: the rank average of their gradients, as GradReducer computes it.
  for (at::Tensor* p : {&mine.logit_scale, &mine.log_curv}) {
    if (p == &mine.log_curv && !meru) continue;  // CLIP has no curvature
    at::Tensor g = p->grad().clone();
    comm->all_reduce(g, comm::ReduceOp::kSum);
    at::Tensor expect = (p == &mine.logit_scale ? ref.logit_scale : ref.log_curv).grad();
    EXPECT_NEAR(g.item<double>() / w, expect.item<double>(), 1e-9 * (1 + std::abs(expect.item<double>())));
  }
}

TEST(LossEquivalence, MeruNRanksEqualsOneProcess) { check(/*meru=*/true); }
TEST(LossEquivalence, ClipNRanksEqualsOneProcess) { check(/*meru=*/false); }

}  // namespace
}  // namespace runner::losses
