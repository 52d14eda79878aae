// GradReducer: averages parameter gradients over ranks, bucketed, after backward.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "comm/comm.h"

namespace runner::comm {

// Averages the gradients of `params` over the ranks of `comm` with one all-reduce per bucket:
// gradients are copied into flat buffers of at most `bucket_bytes` (a parameter larger than that
// gets a bucket of its own), grouped by dtype and device in reverse registration order (the
// order backward produces them). A parameter whose gradient is undefined on this rank
// contributes zeros, so ranks never disagree on what is reduced; afterwards every parameter that
// requires grad has a defined gradient (when world > 1).
class GradReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

  // Collective: checks that every rank registered the same parameter layout (CommError naming
  // the difference otherwise).
  GradReducer(CommPtr comm, std::vector<at::Tensor> params,
              int64_t bucket_bytes = kDefaultBucketBytes);

  // Call on every rank after backward. No-op with world 1.
  void reduce();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Parameter indices (into the constructor's list) of bucket b, in buffer order.
  const std::vector<int64_t>& bucket_params(int64_t b) const { return buckets_.at(b).params; }
  int64_t bucket_bytes(int64_t b) const;

 private:
  struct Bucket {
    std::vector<int64_t> params;
    std::vector<int64_t> offsets;  // element offset of each parameter in `buffer`
    at::Tensor buffer;             // flat, numel = sum of the parameters' numel
  };
  CommPtr comm_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
};

}  // namespace runner::comm
