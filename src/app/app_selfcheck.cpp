// `hac selfcheck`: exercises the communication layer on however many ranks it was started with
// (closed-form answers), and can inject a failure on one rank to show the job ends everywhere.
#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "app/app.h"
#include "core/error.h"
#include "core/log.h"
#include "comm/autograd_ops.h"
#include "comm/grad_reducer.h"
#include "comm/runtime.h"

namespace runner::app {
namespace {

struct SelfcheckOptions {
  int fail_rank = -1;
  std::string fail_how = "throw";
};

void expect(bool ok, const std::string& what) {
  if (!ok) throw Error(fmt::format("selfcheck failed: {}", what));
}

// Each check is collective; a failure on one rank is agreed on by all before reporting.
void check_collectives(comm::Comm& comm) {
  const int w = comm.world_size(), r = comm.rank();
  const double expected = w * (w - 1) / 2.0;
  for (auto dtype : {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kHalf, at::kBFloat16}) {
    at::Tensor t = at::full({1000}, r, at::TensorOptions().dtype(dtype));
    comm.all_reduce(t, comm::ReduceOp::kSum);
    expect(t.to(at::kDouble).eq(expected).all().item<bool>(),
           fmt::format("all_reduce sum of ranks in {} gave {} not {}", c10::toString(dtype),
                       t[0].item<double>(), expected));
  }
  at::Tensor mx = at::full({3}, r, at::kLong);
  comm.all_reduce(mx, comm::ReduceOp::kMax);
  expect(mx.eq(w - 1).all().item<bool>(), "all_reduce max");
  at::Tensor g = comm.all_gather(at::full({2, 3}, r, at::kFloat));
  expect(g.size(0) == 2 * w, "all_gather shape");
  for (int k = 0; k < w; ++k) expect(g[2 * k].eq(k).all().item<bool>(), "all_gather order");
  at::Tensor b = at::full({5}, r == w - 1 ? 42 : -1, at::kInt);
  comm.broadcast(b, w - 1);
  expect(b.eq(42).all().item<bool>(), "broadcast from the last rank");
  expect(comm.broadcast_string(fmt::format("from {}", r), 0) == "from 0", "broadcast_string");
  expect(comm.all_ok(true) && (w == 1 || !comm.all_ok(r != 0)), "all_ok");

  auto sub = comm.split(r % 2, r);
  const int n_even = (w + 1) / 2;
  expect(sub->world_size() == (r % 2 == 0 ? n_even : w - n_even), "split size");
  at::Tensor s = at::ones({1}, at::kFloat);
  sub->all_reduce(s, comm::ReduceOp::kSum);
  expect(s.item<float>() == sub->world_size(), "all_reduce on a split communicator");
}

void check_autograd(const comm::CommPtr& comm) {
  const int w = comm->world_size();
  at::Tensor x = at::randn({4, 3}, at::kDouble).set_requires_grad(true);
  comm::all_gather_with_grad(comm, x).sum().backward();
  expect(x.grad().eq(w).all().item<bool>(), "all_gather_with_grad: d(sum)/dx != world size");

  at::Tensor p = at::zeros({7}, at::kFloat).set_requires_grad(true);
  at::Tensor q = at::zeros({2, 2}, at::kFloat).set_requires_grad(true);
  p.mutable_grad() = at::full({7}, comm->rank() + 1, at::kFloat);
  q.mutable_grad() = at::full({2, 2}, 2.0 * (comm->rank() + 1), at::kFloat);
  comm::GradReducer reducer(comm, {p, q});
  reducer.reduce();
  const double mean = (w + 1) / 2.0;
  expect(p.grad().eq(mean).all().item<bool>() && q.grad().eq(2 * mean).all().item<bool>(),
         "GradReducer average");
}

int run_selfcheck(const SelfcheckOptions& opts) {
  auto comm = comm::init_world();
  core::log_info("selfcheck: {} ({})", comm::describe(*comm), comm::describe(comm::launch_env()));
  if (opts.fail_rank >= comm->world_size()) {
    throw UsageError(fmt::format("--fail-rank {} is outside the world of {}", opts.fail_rank,
                                 comm->world_size()));
  }
  check_collectives(*comm);
  check_autograd(comm);
  if (opts.fail_rank >= 0) {
    // The others enter a barrier that the failing rank never reaches: without the abort in
    // main's catch they would wait forever.
    if (comm->rank() == opts.fail_rank) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (opts.fail_how == "crash") std::raise(SIGKILL);
      throw Error(fmt::format("injected failure on rank {} (selfcheck --fail-rank)", comm->rank()));
    }
    comm->barrier();
  }
  comm->barrier();
  core::log_info("selfcheck passed: collectives, split, all_gather_with_grad and GradReducer "
                 "on {} rank(s), backend {}", comm->world_size(), comm->backend());
  comm::finalize_world();
  return 0;
}

}  // namespace

void add_selfcheck(CLI::App& app, Action& action) {
  auto opts = std::make_shared<SelfcheckOptions>();
  auto* cmd = app.add_subcommand("selfcheck", "Check the communication layer on the ranks it runs on");
  cmd->add_option("--fail-rank", opts->fail_rank, "Inject a failure on this rank (testing)");
  cmd->add_option("--fail-how", opts->fail_how, "How the injected failure happens")
      ->check(CLI::IsMember({"throw", "crash"}));
  cmd->callback([&action, opts] { action = [opts] { return run_selfcheck(*opts); }; });
}

}  // namespace runner::app
