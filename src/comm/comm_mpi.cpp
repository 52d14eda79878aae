// MpiComm (CPU tensors over MPI) and the process-wide runtime: init, finalize, abort.
#include <mpi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <sched.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "comm/runtime.h"

namespace runner::comm {
namespace {

// Largest element count passed to one MPI call (counts are int).
constexpr int64_t kMaxCount = int64_t{1} << 30;
// Largest all-reduce handed to MPI in one call. Open MPI allocates a temporary buffer of the
// message size; at >= 32 MB glibc serves it with a fresh mmap every call, and the page faults
// cut bandwidth ~20x on the machines measured (docs/benchmarks.md). Chunks stay below that.
constexpr int64_t kAllReduceChunkBytes = int64_t{16} << 20;

void check_mpi(int rc, const char* call, int rank = -1) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw CommError(fmt::format("{} failed{}: {} (MPI error {})", call,
                              rank >= 0 ? fmt::format(" on rank {}", rank) : std::string(),
                              std::string(msg, static_cast<size_t>(len)), rc));
}

bool mpi_initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init != 0 && fin == 0;
}

// The MPI datatype for a tensor dtype that MPI reduces natively; nullopt for half types.
std::optional<MPI_Datatype> mpi_type(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kShort: return MPI_INT16_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: return std::nullopt;
  }
}

MPI_Op mpi_op(ReduceOp op, at::ScalarType st) {
  if (st == at::kBool) {  // MPI defines only logical ops on C_BOOL: sum/max = or, min = and
    return op == ReduceOp::kMin ? MPI_LAND : MPI_LOR;
  }
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_SUM;
}

class MpiComm final : public Comm {
 public:
  MpiComm(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm local;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
              "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rank_);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~MpiComm() override {
    if (owned_ && mpi_initialized()) MPI_Comm_free(&comm_);
  }
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_cpu(t, "all_reduce");
    if (size_ == 1) return;
    auto type = mpi_type(t.scalar_type());
    if (!type) {  // float16/bfloat16: MPI has no such types; reduce in float32
      at::Tensor up = t.to(at::kFloat);
      all_reduce(up, op);
      t.copy_(up);
      return;
    }
    at::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    const int64_t n = buf.numel();
    const int64_t esize = buf.element_size();
    const int64_t chunk = std::min(kMaxCount, std::max<int64_t>(1, kAllReduceChunkBytes / esize));
    auto* base = static_cast<char*>(buf.data_ptr());
    for (int64_t off = 0; off < n; off += chunk) {
      int count = static_cast<int>(std::min(chunk, n - off));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, base + off * esize, count, *type,
                              mpi_op(op, buf.scalar_type()), comm_),
                "MPI_Allreduce", rank_);
    }
    if (!buf.is_same(t)) t.copy_(buf);
  }

  at::Tensor all_gather(const at::Tensor& t) override {
    check_cpu(t, "all_gather");
    if (size_ == 1) return t.clone();
    check_same_shape([this](const at::Tensor& x) { return gather_raw(x); }, size_, t,
                     "all_gather");
    return gather_raw(t);
  }

  void broadcast(at::Tensor& t, int root) override {
    check_cpu(t, "broadcast");
    check_root(root, "broadcast");
    if (size_ == 1) return;
    at::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    bcast_bytes(static_cast<char*>(buf.data_ptr()), buf.numel() * buf.element_size(), root);
    if (!buf.is_same(t)) t.copy_(buf);
  }

  void barrier() override { check_mpi(MPI_Barrier(comm_), "MPI_Barrier", rank_); }

  bool all_ok(bool ok) override {
    int v = ok ? 1 : 0;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce(all_ok)",
              rank_);
    return v == 1;
  }

  std::string broadcast_string(const std::string& s, int root) override {
    check_root(root, "broadcast_string");
    int64_t len = static_cast<int64_t>(s.size());
    check_mpi(MPI_Bcast(&len, 1, MPI_INT64_T, root, comm_), "MPI_Bcast(length)", rank_);
    std::string out = rank_ == root ? s : std::string(static_cast<size_t>(len), '\0');
    bcast_bytes(out.data(), len, root);
    return out;
  }

  std::shared_ptr<Comm> split(int color, int key) override {
    if (color < 0) throw CommError(fmt::format("split: color must be >= 0, got {}", color));
    MPI_Comm sub;
    check_mpi(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split", rank_);
    return std::make_shared<MpiComm>(sub, /*owned=*/true);
  }

  void abort(int code) noexcept override {
    if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  }

  void send_int(int64_t value, int dest, int tag) override {
    check_root(dest, "send_int");
    check_mpi(MPI_Send(&value, 1, MPI_INT64_T, dest, tag, comm_), "MPI_Send", rank_);
  }

  int64_t recv_int(int source, int tag, int* from) override {
    if (source != -1) check_root(source, "recv_int");
    int64_t value = 0;
    MPI_Status st;
    check_mpi(MPI_Recv(&value, 1, MPI_INT64_T, source == -1 ? MPI_ANY_SOURCE : source, tag, comm_, &st), "MPI_Recv",
              rank_);
    if (from != nullptr) *from = st.MPI_SOURCE;
    return value;
  }

 private:
  void check_cpu(const at::Tensor& t, const char* call) const {
    if (!t.defined()) throw CommError(fmt::format("{}: undefined tensor", call));
    if (!t.device().is_cpu()) {
      throw CommError(fmt::format("{}: the MPI communicator takes CPU tensors, got one on {} "
                                  "(GPU runs use the NCCL communicator)", call, t.device().str()));
    }
    if (t.is_sparse()) throw CommError(fmt::format("{}: sparse tensors are not supported", call));
  }
  void check_root(int root, const char* call) const {
    if (root < 0 || root >= size_) {
      throw CommError(fmt::format("{}: root {} outside a world of {}", call, root, size_));
    }
  }
  void bcast_bytes(char* p, int64_t n, int root) {
    for (int64_t off = 0; off < n; off += kMaxCount) {
      int count = static_cast<int>(std::min(kMaxCount, n - off));
      check_mpi(MPI_Bcast(p + off, count, MPI_BYTE, root, comm_), "MPI_Bcast", rank_);
    }
  }
  at::Tensor gather_raw(const at::Tensor& t) {
    at::Tensor src = t.contiguous();
    std::vector<int64_t> out_sizes = src.sizes().vec();
    if (out_sizes.empty()) out_sizes.push_back(1);
    out_sizes[0] *= size_;
    at::Tensor out = at::empty(out_sizes, src.options());
    const int64_t bytes = src.numel() * src.element_size();
    if (bytes > INT_MAX) {
      throw CommError(fmt::format("all_gather: {} bytes per rank exceeds MPI's int count; gather "
                                  "in chunks", bytes));
    }
    check_mpi(MPI_Allgather(src.data_ptr(), static_cast<int>(bytes), MPI_BYTE, out.data_ptr(),
                            static_cast<int>(bytes), MPI_BYTE, comm_),
              "MPI_Allgather", rank_);
    return out;
  }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

struct Runtime {
  std::mutex mu;
  LaunchEnv env;
  CommPtr world;
  bool mpi_init_here = false;
};

Runtime& runtime() {
  static Runtime* r = new Runtime();  // lives until exit: main's catch may need it late
  return *r;
}

void ensure_mpi_initialized() {
  if (mpi_initialized()) return;
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) throw CommError("MPI was already finalized in this process");
  int provided = 0;
  // SERIALIZED: collectives may come from a thread other than main (never two at once).
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  runtime().mpi_init_here = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided < MPI_THREAD_FUNNELED) {
    throw CommError(fmt::format("MPI_Init_thread provided thread level {}, need at least "
                                "MPI_THREAD_FUNNELED", provided));
  }
}

int pick_threads(const InitOptions& opts, int local_size) {
  if (opts.threads > 0) return opts.threads;
  if (const char* v = std::getenv("HAC_NUM_THREADS"); v != nullptr && *v != '\0') {
    try {
      int n = std::stoi(v);
      if (n > 0) return n;
    } catch (const std::exception&) {
    }
    throw ConfigError(fmt::format("HAC_NUM_THREADS='{}' is not a positive integer", v));
  }
  // A launcher that pins each rank (srun --cpu-bind, mpirun --bind-to) already gave it its
  // share: use the CPUs this process may run on. Unpinned ranks share the host's cores.
  const int host = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
    const int allowed = CPU_COUNT(&mask);
    if (allowed > 0 && allowed < host) return allowed;
  }
  return std::max(1, host / std::max(1, local_size));
}

}  // namespace

CommPtr make_mpi_world_comm() {
  ensure_mpi_initialized();
  return std::make_shared<MpiComm>(MPI_COMM_WORLD, /*owned=*/false);
}

CommPtr init_world(const InitOptions& opts) {
  auto& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  if (rt.world) return rt.world;
  rt.env = detect_launch_env();
  if (rt.env.mpi_launched || opts.force_mpi) {
    check_launch_before_mpi_init(rt.env);
    rt.world = make_mpi_world_comm();
    check_world_matches_launch(rt.env, rt.world->world_size());
  } else {
    rt.world = make_self_comm();
  }
  core::log_set_rank(rt.world->rank(), rt.world->world_size());
  const int threads = pick_threads(opts, rt.world->local_size());
  at::set_num_threads(threads);
  core::log_debug("launch: {}; communicator {} (local rank {} of {}); {} torch threads",
                  describe(rt.env), describe(*rt.world), rt.world->local_rank(),
                  rt.world->local_size(), threads);
  return rt.world;
}

CommPtr world() { return runtime().world; }

const LaunchEnv& launch_env() { return runtime().env; }

void finalize_world() {
  auto& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  rt.world.reset();
  if (rt.mpi_init_here && mpi_initialized()) check_mpi(MPI_Finalize(), "MPI_Finalize");
}

void abort_world(int code) noexcept {
  auto& rt = runtime();
  // No lock: called from main's catch, possibly while another thread holds it.
  if (rt.world && rt.world->world_size() > 1) rt.world->abort(code);
}

std::string mpi_library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, static_cast<size_t>(len));
  // Open MPI's text is one line followed by build details; the first line is enough.
  auto nl = s.find_first_of("\n,");
  if (nl != std::string::npos) s = s.substr(0, nl);
  return s;
}

#ifndef RUNNER_HAVE_NCCL
bool nccl_built() { return false; }
std::string nccl_version() { return "none"; }
std::string cuda_device_description(int /*index*/) { return "unknown (this hac was built without CUDA)"; }
CommPtr make_nccl_comm(const CommPtr& /*bootstrap*/) {
  throw CommError("this hac was built without NCCL (RUNNER_WITH_NCCL=OFF or NCCL not found at "
                  "configure time); rebuild with NCCL_HOME set for GPU runs");
}
#endif

}  // namespace runner::comm
