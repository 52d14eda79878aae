// MPI tests of src/comm, run at 1, 2 and 4 ranks: closed-form collectives, split, agreement
// checks, the differentiable all-gather, the gradient reducer, and the key equivalence: a
// CLIP-style contrastive loss over gathered features on N ranks x B/N rows equals one process
// on all B rows, in loss and in parameter gradients (at 2 and 4 ranks: at 1 rank the
// equivalence would compare a process with itself, so tests/CMakeLists.txt filters it out).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/error.h"
#include "comm/autograd_ops.h"
#include "comm/grad_reducer.h"
#include "comm/runtime.h"

namespace runner::comm {
namespace {

CommPtr W() { return world(); }

TEST(MpiComm, WorldMatchesTheLauncher) {
  auto comm = W();
  EXPECT_EQ(comm->backend(), "mpi");
  EXPECT_EQ(comm->world_size(), launch_env().world_size);
  EXPECT_EQ(comm->rank(), launch_env().rank);
  // One host: every rank is local.
  EXPECT_EQ(comm->local_size(), comm->world_size());
  EXPECT_EQ(comm->local_rank(), comm->rank());
}

TEST(MpiComm, AllReduceOfRanksIsTheTriangularNumberInEveryDtype) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  const double expected = w * (w - 1) / 2.0;
  for (auto dtype : {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kShort, at::kChar,
                     at::kByte, at::kHalf, at::kBFloat16}) {
    at::Tensor t = at::full({37}, r, at::TensorOptions().dtype(dtype));
    comm->all_reduce(t, ReduceOp::kSum);
    EXPECT_EQ(t.scalar_type(), dtype);
    EXPECT_TRUE(t.to(at::kDouble).eq(expected).all().item<bool>())
        << c10::toString(dtype) << " gave " << t[0].item<double>();
  }
}

TEST(MpiComm, MaxMinAndBool) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  at::Tensor mx = at::tensor({r, -r}, at::kLong);
  comm->all_reduce(mx, ReduceOp::kMax);
  EXPECT_EQ(mx[0].item<int64_t>(), w - 1);
  EXPECT_EQ(mx[1].item<int64_t>(), 0);
  at::Tensor mn = at::tensor({static_cast<float>(r) + 0.5f}, at::kFloat);
  comm->all_reduce(mn, ReduceOp::kMin);
  EXPECT_FLOAT_EQ(mn.item<float>(), 0.5f);
  at::Tensor any = at::tensor({int64_t{r == w - 1}, int64_t{0}}, at::kLong).to(at::kBool);
  comm->all_reduce(any, ReduceOp::kSum);  // or
  EXPECT_TRUE(any[0].item<bool>());
  EXPECT_FALSE(any[1].item<bool>());
  at::Tensor all = at::tensor({int64_t{r == 0}}, at::kLong).to(at::kBool);
  comm->all_reduce(all, ReduceOp::kMin);  // and
  EXPECT_EQ(all.item<bool>(), w == 1);
}

TEST(MpiComm, NonContiguousTensorsAreReducedInPlace) {
  auto comm = W();
  const int w = comm->world_size();
  at::Tensor base = at::arange(12, at::kFloat).view({3, 4});
  at::Tensor view = base.t();  // non-contiguous view of base
  comm->all_reduce(view, ReduceOp::kSum);
  EXPECT_TRUE(base.equal(at::arange(12, at::kFloat).view({3, 4}) * w));
}

TEST(MpiComm, AllGatherIsRankOrdered) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  at::Tensor x = at::full({2, 3}, r, at::kDouble) + at::arange(3, at::kDouble);
  at::Tensor g = comm->all_gather(x);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{2 * w, 3}));
  for (int k = 0; k < w; ++k) {
    EXPECT_TRUE(g.narrow(0, 2 * k, 2).equal(at::full({2, 3}, k, at::kDouble) + at::arange(3, at::kDouble)));
  }
}

TEST(MpiComm, AllGatherWithDifferentShapesThrowsOnEveryRank) {
  auto comm = W();
  if (comm->world_size() == 1) {
    EXPECT_EQ(comm->all_gather(at::zeros({3, 2})).size(0), 3);
    return;
  }
  at::Tensor x = at::zeros({comm->rank() == 0 ? 3 : 4, 2});
  try {
    comm->all_gather(x);
    FAIL() << "no error for different batch sizes";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0: Float [3, 2]"), std::string::npos) << e.what();
  }
  // And the communicator is still usable afterwards.
  EXPECT_TRUE(comm->all_ok(true));
}

TEST(MpiComm, BroadcastFromEveryRoot) {
  auto comm = W();
  for (int root = 0; root < comm->world_size(); ++root) {
    at::Tensor t = comm->rank() == root ? at::arange(5, at::kInt) * (root + 1) : at::zeros({5}, at::kInt);
    comm->broadcast(t, root);
    EXPECT_TRUE(t.equal(at::arange(5, at::kInt) * (root + 1)));
    std::string s = comm->broadcast_string(comm->rank() == root ? std::string(1000, 'a' + root) : "", root);
    EXPECT_EQ(s, std::string(1000, 'a' + root));
  }
  at::Tensor t = at::zeros({1});
  EXPECT_THROW(comm->broadcast(t, comm->world_size()), CommError);
}

TEST(MpiComm, AllOkIsFalseEverywhereWhenOneRankSaysNo) {
  auto comm = W();
  EXPECT_TRUE(comm->all_ok(true));
  EXPECT_FALSE(comm->all_ok(comm->rank() != comm->world_size() - 1));
}

TEST(MpiComm, SplitGroupsByColorAndOrdersByKey) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  // Key -r: within each color group, ranks come in reverse order.
  auto sub = comm->split(/*color=*/r % 2, /*key=*/-r);
  std::vector<int> members;
  for (int k = 0; k < w; ++k) if (k % 2 == r % 2) members.push_back(k);
  ASSERT_EQ(sub->world_size(), static_cast<int>(members.size()));
  EXPECT_EQ(sub->backend(), "mpi");
  const int pos = static_cast<int>(std::find(members.begin(), members.end(), r) - members.begin());
  EXPECT_EQ(sub->rank(), static_cast<int>(members.size()) - 1 - pos);
  at::Tensor t = at::full({1}, r, at::kLong);
  sub->all_reduce(t, ReduceOp::kSum);
  int64_t expected = 0;
  for (int m : members) expected += m;
  EXPECT_EQ(t.item<int64_t>(), expected);
  // Gathered in sub-rank order, i.e. reverse world order.
  at::Tensor g = sub->all_gather(at::full({1}, r, at::kLong));
  for (int k = 0; k < sub->world_size(); ++k) EXPECT_EQ(g[k].item<int64_t>(), members[members.size() - 1 - k]);
  // Splitting a split, and the world still works afterwards.
  auto solo = sub->split(sub->rank(), 0);
  EXPECT_EQ(solo->world_size(), 1);
  EXPECT_TRUE(comm->all_ok(true));
  EXPECT_THROW(comm->split(-1, 0), CommError);
}

TEST(AllGatherWithGrad, SumGivesEveryInputTheWorldSize) {
  auto comm = W();
  at::Tensor x = at::randn({3, 4}, at::kDouble).set_requires_grad(true);
  all_gather_with_grad(comm, x).sum().backward();
  EXPECT_TRUE(x.grad().eq(comm->world_size()).all().item<bool>());
}

TEST(AllGatherWithGrad, BackwardSumsEveryRanksGradient) {
  // Rank k's loss weighs the gathered tensor by (k+1): each input's gradient is
  // sum_k (k+1) = w(w+1)/2, whichever rank it lives on.
  auto comm = W();
  const int w = comm->world_size();
  at::Tensor x = at::randn({2, 5}, at::kDouble).set_requires_grad(true);
  (all_gather_with_grad(comm, x) * (comm->rank() + 1)).sum().backward();
  EXPECT_TRUE(x.grad().eq(w * (w + 1) / 2).all().item<bool>());
}

// Forwards to a real communicator and counts all-reduce calls.
class CountingComm final : public Comm {
 public:
  explicit CountingComm(CommPtr inner) : inner_(std::move(inner)) {}
  int all_reduces = 0;
  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  int local_rank() const override { return inner_->local_rank(); }
  int local_size() const override { return inner_->local_size(); }
  std::string backend() const override { return inner_->backend(); }
  void all_reduce(at::Tensor& t, ReduceOp op) override {
    ++all_reduces;
    inner_->all_reduce(t, op);
  }
  at::Tensor all_gather(const at::Tensor& t) override { return inner_->all_gather(t); }
  void broadcast(at::Tensor& t, int root) override { inner_->broadcast(t, root); }
  void barrier() override { inner_->barrier(); }
  bool all_ok(bool ok) override { return inner_->all_ok(ok); }
  std::string broadcast_string(const std::string& s, int root) override {
    return inner_->broadcast_string(s, root);
  }
  std::shared_ptr<Comm> split(int color, int key) override { return inner_->split(color, key); }
  void abort(int code) noexcept override { inner_->abort(code); }

 private:
  CommPtr inner_;
};

TEST(GradReducer, OneAllReducePerBucketAndTheMeanOfRanks) {
  auto counting = std::make_shared<CountingComm>(W());
  const int w = counting->world_size(), r = counting->rank();
  std::vector<at::Tensor> params;
  for (int i = 0; i < 10; ++i) params.push_back(at::zeros({50, 2}).set_requires_grad(true));
  GradReducer reducer(counting, params, /*bucket_bytes=*/1600);  // 400 B each: 4 per bucket
  ASSERT_EQ(reducer.num_buckets(), 3);
  for (int i = 0; i < 10; ++i) params[i].mutable_grad() = at::full({50, 2}, (r + 1) * (i + 1), at::kFloat);
  counting->all_reduces = 0;
  reducer.reduce();
  EXPECT_EQ(counting->all_reduces, w == 1 ? 0 : 3) << "collectives must be per bucket, not per parameter";
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(params[i].grad().allclose(at::full({50, 2}, (w + 1) / 2.0 * (i + 1), at::kFloat)));
  }
}

TEST(GradReducer, MissingGradientsCountAsZero) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  at::Tensor p = at::zeros({4}).set_requires_grad(true);
  if (r == 0) p.mutable_grad() = at::full({4}, 6.0f);
  GradReducer reducer(comm, {p});
  reducer.reduce();
  ASSERT_TRUE(p.grad().defined());
  EXPECT_TRUE(p.grad().allclose(at::full({4}, 6.0f / w)));
}

TEST(GradReducer, DifferentModelsOnDifferentRanksAreRefusedEverywhere) {
  auto comm = W();
  if (comm->world_size() == 1) return;  // nothing to disagree with
  std::vector<at::Tensor> params = {at::zeros({comm->rank() == 0 ? 3 : 4}).set_requires_grad(true)};
  EXPECT_THROW(GradReducer(comm, params), CommError);
}

// A tiny CLIP: linear towers, L2-normalized features, learnable logit scale.
struct TinyClip {
  at::Tensor w_img, w_txt, logit_scale;
  explicit TinyClip(at::ScalarType dt) {
    auto o = at::TensorOptions().dtype(dt);
    w_img = (at::randn({16, 8}, at::kDouble) * 0.3).to(dt).set_requires_grad(true);
    w_txt = (at::randn({12, 8}, at::kDouble) * 0.3).to(dt).set_requires_grad(true);
    logit_scale = at::full({}, std::log(1 / 0.07), o).set_requires_grad(true);
  }
  std::vector<at::Tensor> params() const { return {w_img, w_txt, logit_scale}; }
};

// MERU/OpenCLIP's loss: local rows against gathered columns, targets offset by b*rank.
at::Tensor contrastive_loss(const CommPtr& comm, const TinyClip& m, const at::Tensor& x_img,
                            const at::Tensor& x_txt) {
  at::Tensor img = at::matmul(x_img, m.w_img);
  at::Tensor txt = at::matmul(x_txt, m.w_txt);
  img = img / img.norm(2, -1, true);
  txt = txt / txt.norm(2, -1, true);
  at::Tensor img_all = all_gather_with_grad(comm, img);
  at::Tensor txt_all = all_gather_with_grad(comm, txt);
  at::Tensor s = m.logit_scale.exp();
  const int64_t b = img.size(0);
  at::Tensor targets = at::arange(b, at::kLong) + b * comm->rank();
  at::Tensor li = s * at::matmul(img, txt_all.t());
  at::Tensor lt = s * at::matmul(txt, img_all.t());
  return 0.5 * (at::cross_entropy_loss(li, targets) + at::cross_entropy_loss(lt, targets));
}

void check_equivalence(at::ScalarType dt, double rtol, double atol) {
  auto comm = W();
  const int w = comm->world_size(), r = comm->rank();
  constexpr int64_t kBatch = 16;  // divisible by 1, 2 and 4
  ASSERT_EQ(kBatch % w, 0);
  // Identical model and data on every rank (same seed), so each rank can compute the
  // single-process reference itself.
  at::manual_seed(42);
  TinyClip ref(dt), dist_model(dt);
  for (size_t i = 0; i < ref.params().size(); ++i) {
    at::NoGradGuard g;
    dist_model.params()[i].copy_(ref.params()[i]);
  }
  at::Tensor x_img = at::randn({kBatch, 16}, at::kDouble).to(dt);
  at::Tensor x_txt = at::randn({kBatch, 12}, at::kDouble).to(dt);

  at::Tensor ref_loss = contrastive_loss(make_self_comm(), ref, x_img, x_txt);
  ref_loss.backward();

  const int64_t b = kBatch / w;
  GradReducer reducer(comm, dist_model.params());
  at::Tensor loss = contrastive_loss(comm, dist_model, x_img.narrow(0, b * r, b), x_txt.narrow(0, b * r, b));
  loss.backward();
  reducer.reduce();
  at::Tensor mean_loss = loss.detach().clone();
  comm->all_reduce(mean_loss, ReduceOp::kSum);
  mean_loss /= w;

  EXPECT_TRUE(mean_loss.allclose(ref_loss.detach(), rtol, atol))
      << "loss " << mean_loss.item<double>() << " vs " << ref_loss.item<double>();
  const char* names[] = {"w_img", "w_txt", "logit_scale"};
  for (size_t i = 0; i < ref.params().size(); ++i) {
    at::Tensor a = dist_model.params()[i].grad(), e = ref.params()[i].grad();
    EXPECT_TRUE(a.allclose(e, rtol, atol))
        << names[i] << ": max |diff| " << (a - e).abs().max().item<double>() << ", max |ref| "
        << e.abs().max().item<double>();
  }
}

// float64: only the summation order differs between 1 and N ranks (the all-reduce adds N
// partial sums), so agreement must be at round-off level, ~1e-15 relative; 1e-10 leaves room
// for the exp/log in the softmax without admitting any real error.
TEST(ContrastiveEquivalence, Float64NRanksEqualsOneProcess) { check_equivalence(at::kDouble, 1e-10, 1e-12); }

// float32: the same reorderings cost a few ulps (eps 1.2e-7) per sum of 16 terms; with logits
// scaled by 1/0.07 ~ 14 the softmax amplifies them ~10x, so 1e-5 relative and 1e-6 absolute
// (gradients here are O(0.1)) bound the round-off with a margin but would catch any missing or
// double-counted term (those are O(1/B) = 6e-2 relative).
TEST(ContrastiveEquivalence, Float32NRanksEqualsOneProcess) { check_equivalence(at::kFloat, 1e-5, 1e-6); }

}  // namespace
}  // namespace runner::comm
