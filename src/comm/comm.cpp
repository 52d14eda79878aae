// SelfComm (a world of one process) and helpers shared by the communicators.
#include "comm/comm.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "core/error.h"

namespace runner::comm {
namespace {

class SelfComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void all_reduce(at::Tensor& /*t*/, ReduceOp /*op*/) override {}
  // A copy, never an alias, so callers (and autograd) may treat the result as a new tensor.
  at::Tensor all_gather(const at::Tensor& t) override { return t.clone(); }
  void broadcast(at::Tensor& /*t*/, int root) override { check_root(root); }
  void barrier() override {}
  bool all_ok(bool ok) override { return ok; }
  std::string broadcast_string(const std::string& s, int root) override {
    check_root(root);
    return s;
  }
  std::shared_ptr<Comm> split(int color, int /*key*/) override {
    if (color < 0) throw CommError(fmt::format("split: color must be >= 0, got {}", color));
    return std::make_shared<SelfComm>();
  }
  void abort(int /*code*/) noexcept override {}

 private:
  static void check_root(int root) {
    if (root != 0) throw CommError(fmt::format("broadcast root {} outside a world of 1", root));
  }
};

constexpr int kMaxDims = 8;

}  // namespace

CommPtr make_self_comm() { return std::make_shared<SelfComm>(); }

namespace {

class DispatchComm final : public Comm {
 public:
  DispatchComm(CommPtr host, CommPtr device) : host_(std::move(host)), device_(std::move(device)) {
    if (host_->world_size() != device_->world_size() || host_->rank() != device_->rank()) {
      throw CommError(fmt::format("dispatch communicator: {} and {} do not span the same ranks", describe(*host_),
                                  describe(*device_)));
    }
  }
  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  int local_rank() const override { return host_->local_rank(); }
  int local_size() const override { return host_->local_size(); }
  std::string backend() const override { return host_->backend() + "+" + device_->backend(); }
  void all_reduce(at::Tensor& t, ReduceOp op) override { of(t).all_reduce(t, op); }
  at::Tensor all_gather(const at::Tensor& t) override { return of(t).all_gather(t); }
  void broadcast(at::Tensor& t, int root) override { of(t).broadcast(t, root); }
  void barrier() override { host_->barrier(); }
  bool all_ok(bool ok) override { return host_->all_ok(ok); }
  std::string broadcast_string(const std::string& s, int root) override { return host_->broadcast_string(s, root); }
  std::shared_ptr<Comm> split(int color, int key) override { return host_->split(color, key); }
  void send_int(int64_t value, int dest, int tag) override { host_->send_int(value, dest, tag); }
  int64_t recv_int(int source, int tag, int* from) override { return host_->recv_int(source, tag, from); }
  void abort(int code) noexcept override { host_->abort(code); }

 private:
  Comm& of(const at::Tensor& t) { return t.is_cuda() ? *device_ : *host_; }
  CommPtr host_, device_;
};

}  // namespace

CommPtr make_dispatch_comm(CommPtr host, CommPtr device) {
  return std::make_shared<DispatchComm>(std::move(host), std::move(device));
}

void Comm::send_int(int64_t, int dest, int) {
  throw CommError(fmt::format("send_int to rank {}: the {} communicator has no point-to-point messages", dest, backend()));
}

int64_t Comm::recv_int(int source, int, int*) {
  throw CommError(fmt::format("recv_int from rank {}: the {} communicator has no point-to-point messages", source,
                              backend()));
}

std::string describe(const Comm& comm) {
  return fmt::format("{} rank {} of {}", comm.backend(), comm.rank(), comm.world_size());
}

void check_same_shape(const RawGather& gather, int world_size, const at::Tensor& t,
                      const char* call) {
  if (world_size == 1) return;
  if (t.dim() > kMaxDims) {
    throw CommError(fmt::format("{}: tensors of more than {} dims are not supported", call, kMaxDims));
  }
  // [dtype, ndim, sizes..., padding]: one row per rank.
  auto sig = at::full({kMaxDims + 2}, -1, at::kLong);
  sig[0] = static_cast<int64_t>(t.scalar_type());
  sig[1] = t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) sig[d + 2] = t.size(d);
  at::Tensor all = gather(sig).view({world_size, kMaxDims + 2});
  if (all.eq(all[0]).all().item<bool>()) return;
  std::string shapes;
  for (int r = 0; r < world_size; ++r) {
    auto row = all[r];
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < row[1].item<int64_t>(); ++d) dims.push_back(row[d + 2].item<int64_t>());
    shapes += fmt::format("{}rank {}: {} {}", r ? ", " : "",
                          r, c10::toString(static_cast<c10::ScalarType>(row[0].item<int64_t>())),
                          fmt::format("[{}]", fmt::join(dims, ", ")));
  }
  throw CommError(fmt::format("{}: ranks disagree on the tensor's dtype or shape ({}); every rank "
                              "must pass the same shape (for gathered features: the same local "
                              "batch size)", call, shapes));
}

}  // namespace runner::comm
