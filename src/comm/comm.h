// The communicator interface through which ranks talk (docs/cluster.md), and its factories.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace runner::comm {

enum class ReduceOp { kSum, kMax, kMin };

// A group of ranks. Collectives are called by every rank of the group in the same order with
// tensors of the same shape and dtype; an implementation detects what it cheaply can (a shape or
// dtype that differs across ranks) and throws CommError on every rank rather than deadlocking.
// Every error is a runner::CommError naming the call and the library's message.
class Comm {
 public:
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Rank among the group's ranks on the same host, and how many of those there are.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // "self", "mpi" or "nccl".
  virtual std::string backend() const = 0;

  // In place on `t` (any dense tensor of a dtype the backend supports; MPI: CPU tensors,
  // NCCL: CUDA tensors). Non-contiguous tensors are handled through a contiguous copy.
  virtual void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  // Concatenates every rank's `t` along dim 0, in rank order: [B, ...] -> [world*B, ...].
  // Throws CommError on every rank when the shapes or dtypes differ between ranks.
  virtual at::Tensor all_gather(const at::Tensor& t) = 0;
  // In place: afterwards every rank holds root's values (shapes must already agree).
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // True on every rank iff `ok` is true on every rank: lets ranks agree that a step that can
  // fail locally (opening a file, parsing a config) succeeded everywhere before going on.
  virtual bool all_ok(bool ok) = 0;
  // Returns root's string on every rank.
  virtual std::string broadcast_string(const std::string& s, int root) = 0;
  // Sub-communicator of the ranks that pass the same `color` (>= 0), ordered by `key` then by
  // rank. Collective over this group. Same backend as this one.
  virtual std::shared_ptr<Comm> split(int color, int key) = 0;

  // Point-to-point messages of one int64 (work queues: the sweep's mpi backend). recv_int takes
  // from `source` or, with -1, from any rank, and stores the sender in *from. Only MPI
  // communicators implement them; the others throw CommError.
  virtual void send_int(int64_t value, int dest, int tag);
  virtual int64_t recv_int(int source, int tag, int* from);

  // Best-effort termination of every rank of the job with `code`; never returns for MPI.
  // Used by main's single catch so that no rank hangs in a collective after another failed.
  virtual void abort(int code) noexcept = 0;
};

using CommPtr = std::shared_ptr<Comm>;

// World of one process, no library calls at all.
CommPtr make_self_comm();

// The same ranks seen through two communicators: tensor collectives (all_reduce, all_gather,
// broadcast) on CUDA tensors go to `device` (NCCL), everything else (CPU tensors, barriers,
// strings, all_ok, split, point-to-point, abort) to `host` (MPI or self). backend() is
// "<host>+<device>". Both must span the same ranks in the same order.
CommPtr make_dispatch_comm(CommPtr host, CommPtr device);

// "mpi rank r of w" for messages.
std::string describe(const Comm& comm);

// For communicator implementations: makes every rank agree that `t` has the same dtype and
// shape everywhere; throws CommError on every rank, listing each rank's shape, when not.
// `gather` is an all-gather of a small CPU int64 tensor that does not itself check shapes.
// `call` names the collective in the message.
using RawGather = std::function<at::Tensor(const at::Tensor&)>;
void check_same_shape(const RawGather& gather, int world_size, const at::Tensor& t,
                      const char* call);

}  // namespace runner::comm
