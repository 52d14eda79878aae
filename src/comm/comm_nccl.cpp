// NcclComm: collectives on CUDA tensors through NCCL, bootstrapped by an MPI (or self)
// communicator that carries NCCL's unique id and the cheap CPU-side agreement checks.
//
// It compiles against any CUDA toolkit + NCCL. With a CUDA LibTorch (RUNNER_TORCH_CUDA) it orders
// its own stream after torch's current stream; with a CPU LibTorch it orders after the legacy
// default stream, which is what torch's current stream is unless a caller changed it.
#include <cuda_runtime.h>
#include <nccl.h>

#include <ATen/ATen.h>
#include <cstring>
#include <fmt/format.h>

#ifdef RUNNER_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#include "core/error.h"
#include "comm/runtime.h"

namespace runner::comm {
namespace {

void check_cuda(cudaError_t rc, const char* call) {
  if (rc == cudaSuccess) return;
  throw CommError(fmt::format("{} failed: {} ({})", call, cudaGetErrorString(rc),
                              cudaGetErrorName(rc)));
}

void check_nccl(ncclResult_t rc, const char* call, ncclComm_t comm = nullptr) {
  if (rc == ncclSuccess) return;
  const char* last = comm != nullptr ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
  throw CommError(fmt::format("{} failed: {}{}{}", call, ncclGetErrorString(rc),
                              (last != nullptr && *last != '\0') ? ": " : "",
                              last != nullptr ? last : ""));
}

ncclDataType_t nccl_type(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kChar: return ncclInt8;
    case at::kByte:
    case at::kBool: return ncclUint8;
    default:
      throw CommError(fmt::format("NCCL: dtype {} is not supported", c10::toString(st)));
  }
}

ncclRedOp_t nccl_op(ReduceOp op, at::ScalarType st) {
  if (st == at::kBool) return op == ReduceOp::kMin ? ncclMin : ncclMax;  // or / and on 0/1
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

class NcclComm final : public Comm {
 public:
  explicit NcclComm(CommPtr bootstrap) : boot_(std::move(bootstrap)) {
    // Every failure before ncclCommInitRank is agreed on through the bootstrap, so that a rank
    // without a device makes every rank throw instead of leaving the others in a broadcast.
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    const bool have_device = rc == cudaSuccess && count > 0;
    std::string why = !have_device ? (rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices") : "";
    if (!boot_->all_ok(have_device)) {
      throw CommError(fmt::format(
          "NCCL communicator: no CUDA device visible on {} ({}); GPU runs need a GPU per rank "
          "(check CUDA_VISIBLE_DEVICES and the driver)",
          have_device ? "another rank" : fmt::format("rank {}", boot_->rank()),
          have_device ? "this rank has one" : why));
    }
    device_ = boot_->local_rank() % count;
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    std::string id_bytes;
    std::string id_error;
    if (boot_->rank() == 0) {
      ncclResult_t r = ncclGetUniqueId(&id);
      if (r == ncclSuccess) {
        id_bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
      } else {
        id_error = ncclGetErrorString(r);
      }
    }
    id_bytes = boot_->broadcast_string(id_bytes, /*root=*/0);
    if (id_bytes.size() != sizeof(id)) {
      throw CommError(fmt::format("ncclGetUniqueId failed on rank 0{}{}", id_error.empty() ? "" : ": ",
                                  id_error));
    }
    std::memcpy(&id, id_bytes.data(), sizeof(id));
    check_nccl(ncclCommInitRank(&comm_, boot_->world_size(), id, boot_->rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check_cuda(cudaEventCreateWithFlags(&before_, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventCreateWithFlags(&after_, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~NcclComm() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (before_ != nullptr) cudaEventDestroy(before_);
    if (after_ != nullptr) cudaEventDestroy(after_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return boot_->rank(); }
  int world_size() const override { return boot_->world_size(); }
  int local_rank() const override { return boot_->local_rank(); }
  int local_size() const override { return boot_->local_size(); }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_cuda_tensor(t, "all_reduce");
    at::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    run([&] {
      check_nccl(ncclAllReduce(buf.data_ptr(), buf.data_ptr(), static_cast<size_t>(buf.numel()),
                               nccl_type(buf.scalar_type()), nccl_op(op, buf.scalar_type()), comm_,
                               stream_),
                 "ncclAllReduce", comm_);
    });
    if (!buf.is_same(t)) t.copy_(buf);
  }

  at::Tensor all_gather(const at::Tensor& t) override {
    check_cuda_tensor(t, "all_gather");
    check_same_shape([this](const at::Tensor& x) { return boot_->all_gather(x); }, world_size(),
                     t, "all_gather");
    at::Tensor src = t.contiguous();
    std::vector<int64_t> sizes = src.sizes().vec();
    sizes[0] *= world_size();
    at::Tensor out = at::empty(sizes, src.options());
    run([&] {
      check_nccl(ncclAllGather(src.data_ptr(), out.data_ptr(), static_cast<size_t>(src.numel()),
                               nccl_type(src.scalar_type()), comm_, stream_),
                 "ncclAllGather", comm_);
    });
    return out;
  }

  void broadcast(at::Tensor& t, int root) override {
    check_cuda_tensor(t, "broadcast");
    at::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    run([&] {
      check_nccl(ncclBroadcast(buf.data_ptr(), buf.data_ptr(), static_cast<size_t>(buf.numel()),
                               nccl_type(buf.scalar_type()), root, comm_, stream_),
                 "ncclBroadcast", comm_);
    });
    if (!buf.is_same(t)) t.copy_(buf);
  }

  // Host-side agreement goes through the bootstrap communicator: no device sync needed.
  void barrier() override {
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    boot_->barrier();
  }
  bool all_ok(bool ok) override { return boot_->all_ok(ok); }
  std::string broadcast_string(const std::string& s, int root) override {
    return boot_->broadcast_string(s, root);
  }
  std::shared_ptr<Comm> split(int color, int key) override {
    return std::make_shared<NcclComm>(boot_->split(color, key));
  }
  void abort(int code) noexcept override {
    if (comm_ != nullptr) ncclCommAbort(comm_), comm_ = nullptr;
    boot_->abort(code);
  }

 private:
  void check_cuda_tensor(const at::Tensor& t, const char* call) const {
    if (!t.defined() || !t.is_cuda()) {
      throw CommError(fmt::format("{}: the NCCL communicator takes CUDA tensors, got {}", call,
                                  t.defined() ? t.device().str() : std::string("undefined")));
    }
    if (t.device().index() != device_) {
      throw CommError(fmt::format("{}: tensor on cuda:{} but this rank's NCCL device is cuda:{}",
                                  call, t.device().index(), device_));
    }
  }
  cudaStream_t current_stream() const {
#ifdef RUNNER_TORCH_CUDA
    return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
#else
    return cudaStreamLegacy;
#endif
  }
  // NCCL runs on its own stream, after everything queued on the current stream, and the current
  // stream waits for it: callers see stream-ordered semantics, as with any torch op.
  template <typename F>
  void run(F&& launch) {
    cudaStream_t cur = current_stream();
    check_cuda(cudaEventRecord(before_, cur), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream_, before_, 0), "cudaStreamWaitEvent");
    launch();
    check_cuda(cudaEventRecord(after_, stream_), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(cur, after_, 0), "cudaStreamWaitEvent");
  }

  CommPtr boot_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t before_ = nullptr;
  cudaEvent_t after_ = nullptr;
};

}  // namespace

bool nccl_built() { return true; }

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100);
}

CommPtr make_nccl_comm(const CommPtr& bootstrap) {
  if (!bootstrap) throw CommError("make_nccl_comm: null bootstrap communicator");
  if (bootstrap->backend() == "nccl") throw CommError("make_nccl_comm: bootstrap must be MPI or self");
  return std::make_shared<NcclComm>(bootstrap);
}

std::string cuda_device_description(int index) {
  cudaDeviceProp p{};
  const cudaError_t rc = cudaGetDeviceProperties(&p, index);
  if (rc != cudaSuccess) return fmt::format("unknown (cuda:{}: {})", index, cudaGetErrorString(rc));
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  return fmt::format("{} (compute {}.{}, {:.0f} GiB; CUDA runtime {}.{}, driver {}.{})", p.name, p.major, p.minor,
                     static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), runtime / 1000,
                     runtime % 1000 / 10, driver / 1000, driver % 1000 / 10);
}

}  // namespace runner::comm
