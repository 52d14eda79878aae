// The NCCL communicator: without a GPU it must fail with a clear error on construction (this
// also proves the binary loads libnccl and libcudart); with one, collectives at world 1 work.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/error.h"
#include "comm/runtime.h"

namespace runner::comm {
namespace {

TEST(NcclWithoutGpu, ConstructionFailsWithAClearError) {
  ASSERT_TRUE(nccl_built());
  EXPECT_NE(nccl_version(), "none");
  try {
    make_nccl_comm(make_self_comm());
    FAIL() << "an NCCL communicator was created on a machine registered as GPU-less";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

TEST(NcclGpu, WorldOfOneCollectives) {
  auto comm = make_nccl_comm(make_self_comm());
  EXPECT_EQ(comm->backend(), "nccl");
  at::Tensor t = at::arange(8, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  comm->all_reduce(t, ReduceOp::kSum);
  EXPECT_TRUE(t.cpu().equal(at::arange(8, at::kFloat)));
  at::Tensor g = comm->all_gather(t.view({2, 4}));
  EXPECT_EQ(g.size(0), 2);
  at::Tensor on_cpu = at::ones({2});
  EXPECT_THROW(comm->all_reduce(on_cpu, ReduceOp::kSum), CommError);
}

}  // namespace
}  // namespace runner::comm
