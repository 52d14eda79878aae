// GradReducer: bucketed averaging of gradients over ranks.
#include "comm/grad_reducer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <map>
#include <tuple>

#include "core/error.h"

namespace runner::comm {

GradReducer::GradReducer(CommPtr comm, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)) {
  if (!comm_) throw CommError("GradReducer: null communicator");
  if (bucket_bytes <= 0) throw CommError(fmt::format("GradReducer: bucket size {} bytes", bucket_bytes));
  // Layout agreement: count, total elements and a dtype/shape checksum must match everywhere.
  int64_t total = 0;
  uint64_t checksum = 0;  // unsigned: wraps by definition
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (!p.defined()) throw CommError(fmt::format("GradReducer: parameter {} is undefined", i));
    total += p.numel();
    checksum = checksum * 1000003u + static_cast<uint64_t>(p.numel()) * 31u +
               static_cast<uint64_t>(p.scalar_type());
  }
  auto sig = at::tensor({static_cast<int64_t>(params_.size()), total,
                         static_cast<int64_t>(checksum >> 1)}, at::kLong);
  auto lo = sig.clone(), hi = sig.clone();
  comm_->all_reduce(lo, ReduceOp::kMin);
  comm_->all_reduce(hi, ReduceOp::kMax);
  if (!lo.equal(hi)) {
    throw CommError(fmt::format(
        "GradReducer: ranks registered different parameters (this rank: {} tensors, {} elements; "
        "range over ranks: {}..{} tensors, {}..{} elements); every rank must build the same model",
        params_.size(), total, lo[0].item<int64_t>(), hi[0].item<int64_t>(), lo[1].item<int64_t>(),
        hi[1].item<int64_t>()));
  }

  // Reverse order: the last layers' gradients are ready first in backward.
  std::map<std::tuple<int, int, int>, int64_t> open;  // (dtype, device type, index) -> bucket
  std::vector<int64_t> used;                          // bytes in each bucket so far
  for (int64_t i = static_cast<int64_t>(params_.size()) - 1; i >= 0; --i) {
    const auto& p = params_[static_cast<size_t>(i)];
    if (!p.requires_grad()) continue;
    auto key = std::make_tuple(static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()),
                               static_cast<int>(p.device().index()));
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    auto it = open.find(key);
    if (it != open.end()) {
      if (used[static_cast<size_t>(it->second)] + bytes > bucket_bytes) {
        open.erase(it);
        it = open.end();
      }
    }
    if (it == open.end()) {
      buckets_.push_back(Bucket{});
      used.push_back(0);
      it = open.emplace(key, static_cast<int64_t>(buckets_.size()) - 1).first;
    }
    Bucket& b = buckets_[static_cast<size_t>(it->second)];
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(i);
    used[static_cast<size_t>(it->second)] += bytes;
  }
  for (auto& b : buckets_) {
    const auto& last = params_[static_cast<size_t>(b.params.back())];
    const int64_t n = b.offsets.back() + last.numel();
    b.buffer = at::zeros({n}, last.options().requires_grad(false));
  }
}

int64_t GradReducer::bucket_bytes(int64_t b) const {
  const Bucket& bk = buckets_.at(static_cast<size_t>(b));
  return bk.buffer.defined() ? bk.buffer.numel() * static_cast<int64_t>(bk.buffer.element_size())
                             : 0;
}

void GradReducer::reduce() {
  const int world = comm_->world_size();
  if (world == 1) return;
  at::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    for (size_t k = 0; k < b.params.size(); ++k) {
      const auto& p = params_[static_cast<size_t>(b.params[k])];
      at::Tensor slot = b.buffer.narrow(0, b.offsets[k], p.numel());
      const at::Tensor& g = p.grad();
      if (g.defined()) {
        if (g.is_sparse()) throw CommError("GradReducer: sparse gradients are not supported");
        slot.copy_(g.reshape({-1}));
      } else {
        slot.zero_();
      }
    }
    comm_->all_reduce(b.buffer, ReduceOp::kSum);
    b.buffer.div_(world);
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto p = params_[static_cast<size_t>(b.params[k])];
      at::Tensor slot = b.buffer.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot);
      } else {
        p.mutable_grad() = slot.clone();
      }
    }
  }
}

}  // namespace runner::comm
