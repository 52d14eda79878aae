// Unit tests of src/comm that need no MPI launch: launch-environment detection (pure), the
// self communicator, all_gather_with_grad and GradReducer at world 1.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/error.h"
#include "comm/autograd_ops.h"
#include "comm/grad_reducer.h"
#include "comm/launch_env.h"
#include "comm/runtime.h"

namespace runner::comm {
namespace {

LaunchEnv detect(const std::map<std::string, std::string>& vars) {
  return detect_launch_env(env_from_map(vars));
}

TEST(LaunchEnv, NoVariablesMeansSingleProcess) {
  auto env = detect({});
  EXPECT_EQ(env.source, "single");
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(env.mpi_launched);
}

TEST(LaunchEnv, OpenMpiVariables) {
  auto env = detect({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"},
                     {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(env.source, "openmpi");
  EXPECT_TRUE(env.mpi_launched);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 2);
}

TEST(LaunchEnv, SrunWithPmix) {
  auto env = detect({{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"},
                     {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"}, {"PMIX_RANK", "1"},
                     {"SLURM_STEP_TASKS_PER_NODE", "2(x1)"}});
  EXPECT_EQ(env.source, "pmix");
  EXPECT_EQ(env.pmi, "pmix");
  EXPECT_NO_THROW(check_launch_before_mpi_init(env));
  EXPECT_TRUE(env.under_slurm);
  EXPECT_TRUE(env.slurm_step);
  EXPECT_EQ(env.world_size, 2);
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 2);
  EXPECT_NO_THROW(check_world_matches_launch(env, 2));
}

TEST(LaunchEnv, SrunWithoutPmixIsTheSingletonTrap) {
  // srun --mpi=none: Slurm says 2 tasks, MPI_Init forms a world of 1 in each process.
  auto env = detect({{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "0"},
                     {"SLURM_NTASKS", "2"}, {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_EQ(env.source, "slurm");
  EXPECT_TRUE(env.mpi_launched);
  EXPECT_EQ(env.pmi, "");
  // Caught before MPI_Init (Open MPI would abort inside it) ...
  try {
    check_launch_before_mpi_init(env);
    FAIL() << "srun without PMI was not caught before MPI_Init";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("--mpi=pmix"), std::string::npos) << e.what();
  }
  // ... and after it, for an MPI that forms a world of 1 per task instead.
  try {
    check_world_matches_launch(env, 1);
    FAIL() << "the singleton trap was not caught";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("--mpi=pmix"), std::string::npos) << e.what();
  }
}

TEST(LaunchEnv, MpirunInsideAnAllocationMayUseFewerRanks) {
  // A batch script's mpirun -np 2 inside a 4-task allocation: mpirun's variables win.
  auto env = detect({{"SLURM_JOB_ID", "9"}, {"SLURM_NTASKS", "4"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                     {"OMPI_COMM_WORLD_RANK", "0"}});
  EXPECT_EQ(env.source, "openmpi");
  EXPECT_NO_THROW(check_world_matches_launch(env, 2));
  EXPECT_THROW(check_world_matches_launch(env, 1), CommError);
}

TEST(LaunchEnv, StepNumTasksWinsOverAllocationTasks) {
  auto env = detect({{"SLURM_JOB_ID", "9"}, {"SLURM_STEP_ID", "1"}, {"SLURM_PROCID", "0"},
                     {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"PMIX_RANK", "0"}});
  EXPECT_EQ(env.world_size, 2);
  EXPECT_NO_THROW(check_world_matches_launch(env, 2));
  EXPECT_THROW(check_world_matches_launch(env, 8), CommError);
}

TEST(LaunchEnv, GenericVariables) {
  auto env = detect({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(env.source, "generic");
  EXPECT_EQ(env.rank, 1);
  EXPECT_THROW(check_world_matches_launch(env, 1), CommError);
}

TEST(LaunchEnv, MalformedVariablesAreNamed) {
  try {
    detect({{"OMPI_COMM_WORLD_SIZE", "four"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("OMPI_COMM_WORLD_SIZE"), std::string::npos);
  }
  EXPECT_THROW(detect({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "2"}}), ConfigError);
  EXPECT_THROW(detect({{"WORLD_SIZE", "0"}}), ConfigError);
}

TEST(SelfComm, CollectivesAreIdentities) {
  auto comm = make_self_comm();
  EXPECT_EQ(comm->world_size(), 1);
  EXPECT_EQ(comm->backend(), "self");
  at::Tensor t = at::arange(6, at::kFloat);
  comm->all_reduce(t, ReduceOp::kSum);
  EXPECT_TRUE(t.equal(at::arange(6, at::kFloat)));
  at::Tensor g = comm->all_gather(t);
  EXPECT_TRUE(g.equal(t));
  EXPECT_NE(g.data_ptr(), t.data_ptr()) << "all_gather must not alias its input";
  EXPECT_TRUE(comm->all_ok(true));
  EXPECT_FALSE(comm->all_ok(false));
  EXPECT_EQ(comm->broadcast_string("x", 0), "x");
  EXPECT_THROW(comm->broadcast(t, 1), CommError);
  EXPECT_EQ(comm->split(3, 0)->world_size(), 1);
  EXPECT_THROW(comm->split(-1, 0), CommError);
}

TEST(AllGatherWithGrad, WorldOneIsADifferentiableCopy) {
  auto comm = make_self_comm();
  at::Tensor x = at::randn({3, 2}, at::kDouble).set_requires_grad(true);
  at::Tensor w = at::randn({3, 2}, at::kDouble);
  (all_gather_with_grad(comm, x) * w).sum().backward();
  EXPECT_TRUE(x.grad().allclose(w));
}

TEST(AllGatherWithGrad, TheGraphOwnsTheCommunicatorUntilBackward) {
  auto comm = make_self_comm();
  std::weak_ptr<Comm> watch = comm;
  at::Tensor x = at::randn({2, 2}, at::kDouble).set_requires_grad(true);
  at::Tensor y = all_gather_with_grad(comm, x);
  comm.reset();
  EXPECT_FALSE(watch.expired()) << "backward would use a destroyed communicator";
  y.sum().backward();
  EXPECT_TRUE(x.grad().eq(1).all().item<bool>());
  y = at::Tensor();
  EXPECT_TRUE(watch.expired()) << "the graph leaked the communicator";
}

TEST(AllGatherWithGrad, NoGraphWithoutRequiresGrad) {
  at::Tensor y = all_gather_with_grad(make_self_comm(), at::ones({2, 3}));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(all_gather_with_grad(make_self_comm(), at::ones({})), CommError);
}

TEST(GradReducer, BucketsRespectTheSizeAndReverseOrder) {
  auto comm = make_self_comm();
  // Five 100-float parameters (400 bytes each), buckets of 1000 bytes: 2 + 2 + 1.
  std::vector<at::Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(at::zeros({100}).set_requires_grad(true));
  GradReducer reducer(comm, params, /*bucket_bytes=*/1000);
  ASSERT_EQ(reducer.num_buckets(), 3);
  EXPECT_EQ(reducer.bucket_params(0), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(reducer.bucket_params(1), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(reducer.bucket_params(2), (std::vector<int64_t>{0}));
  EXPECT_EQ(reducer.bucket_bytes(0), 800);
}

TEST(GradReducer, OversizedParameterGetsItsOwnBucketAndDtypesSeparate) {
  auto comm = make_self_comm();
  std::vector<at::Tensor> params = {at::zeros({10}, at::kFloat).set_requires_grad(true),
                                    at::zeros({1000}, at::kFloat).set_requires_grad(true),
                                    at::zeros({10}, at::kDouble).set_requires_grad(true),
                                    at::zeros({10}, at::kFloat).set_requires_grad(false)};
  GradReducer reducer(comm, params, /*bucket_bytes=*/256);
  // Reverse order: [2] double alone; [1] float, too big for any bucket; [0] float in a new one.
  ASSERT_EQ(reducer.num_buckets(), 3);
  EXPECT_EQ(reducer.bucket_params(0), (std::vector<int64_t>{2}));
  EXPECT_EQ(reducer.bucket_params(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(reducer.bucket_params(2), (std::vector<int64_t>{0}));
}

TEST(GradReducer, DefaultBucketIs25MB) {
  EXPECT_EQ(GradReducer::kDefaultBucketBytes, 25 * 1024 * 1024);
}

TEST(Versions, LibrariesReportThemselves) {
  EXPECT_NE(mpi_library_version().find("MPI"), std::string::npos) << mpi_library_version();
  if (nccl_built()) {
    EXPECT_NE(nccl_version(), "none");
  } else {
    EXPECT_EQ(nccl_version(), "none");
    EXPECT_THROW(make_nccl_comm(make_self_comm()), CommError);
  }
}

// A communicator that counts what reaches it (the device side of a dispatch communicator).
class CountingComm final : public Comm {
 public:
  explicit CountingComm(int world = 1) : world_(world) {}
  int rank() const override { return 0; }
  int world_size() const override { return world_; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "counting"; }
  void all_reduce(at::Tensor&, ReduceOp) override { ++calls; }
  at::Tensor all_gather(const at::Tensor& t) override { return ++calls, t.clone(); }
  void broadcast(at::Tensor&, int) override { ++calls; }
  void barrier() override { ++calls; }
  bool all_ok(bool ok) override { return ++calls, ok; }
  std::string broadcast_string(const std::string& s, int) override { return ++calls, s; }
  std::shared_ptr<Comm> split(int, int) override { return ++calls, nullptr; }
  void abort(int) noexcept override {}
  int calls = 0;

 private:
  int world_;
};

// dist.device cuda: CUDA tensors' collectives go to NCCL, the rest to MPI. On the CPU every call
// stays on the host side: the device side is never touched, and results are the host's.
TEST(DispatchComm, HostTensorsAndControlGoToTheHost) {
  auto device = std::make_shared<CountingComm>();
  CommPtr c = make_dispatch_comm(make_self_comm(), device);
  EXPECT_EQ(c->backend(), "self+counting");
  EXPECT_EQ(c->world_size(), 1);
  at::Tensor t = at::arange(6, at::kFloat);
  c->all_reduce(t);
  EXPECT_TRUE(c->all_gather(t).equal(t));
  c->broadcast(t, 0);
  c->barrier();
  EXPECT_TRUE(c->all_ok(true));
  EXPECT_EQ(c->broadcast_string("x", 0), "x");
  EXPECT_NE(c->split(0, 0), nullptr);  // the host's sub-communicator
  EXPECT_EQ(device->calls, 0);
  // Both sides must span the same ranks.
  EXPECT_THROW(make_dispatch_comm(make_self_comm(), std::make_shared<CountingComm>(2)), CommError);
}

}  // namespace
}  // namespace runner::comm
