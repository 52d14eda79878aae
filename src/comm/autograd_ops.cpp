// all_gather_with_grad: a custom autograd function over Comm::all_gather.
#include "comm/autograd_ops.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>


#include "core/error.h"

namespace runner::comm {
namespace {

// Backward of the all-gather: sum the incoming gradient over ranks, keep this rank's rows. A
// hand-made node rather than torch::autograd::Function because it must own the communicator:
// the graph can outlive the caller's handle to it.
struct AllGatherBackward : public torch::autograd::Node {
  AllGatherBackward(CommPtr c, int64_t r) : comm(std::move(c)), rows(r) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    at::Tensor g = grads[0].contiguous().clone();
    comm->all_reduce(g, ReduceOp::kSum);
    return {g.narrow(/*dim=*/0, /*start=*/comm->rank() * rows, /*length=*/rows)};
  }
  std::string name() const override { return "runner::comm::AllGatherBackward"; }
  CommPtr comm;
  int64_t rows;
};

}  // namespace

at::Tensor all_gather_with_grad(const CommPtr& comm, const at::Tensor& x) {
  if (!comm) throw CommError("all_gather_with_grad: null communicator");
  if (x.dim() == 0) throw CommError("all_gather_with_grad: needs a tensor with a batch dimension");
  at::Tensor out;
  {
    at::NoGradGuard no_grad;
    out = comm->all_gather(x.detach());
  }
  if (torch::autograd::compute_requires_grad(x)) {
    auto node = std::make_shared<AllGatherBackward>(comm, x.size(0));
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    torch::autograd::set_history(out, node);
  }
  return out;
}


}  // namespace runner::comm
