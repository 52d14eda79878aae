// GoogleTest main for MPI tests: every rank runs every test; rank 0 prints the usual report,
// other ranks print only their failures; if any rank failed, every rank exits non-zero.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>

#include "core/log.h"
#include "comm/runtime.h"

namespace {

// Prints failures of a non-zero rank with its rank in front, so they are not lost.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_,
                   r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  runner::comm::InitOptions opts;
  opts.force_mpi = true;
  auto world = runner::comm::init_world(opts);
  // Same seed everywhere: tests build identical data on every rank, then take their shard.
  at::manual_seed(1234);
  if (world->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world->rank()));
  }
  const int rc = RUN_ALL_TESTS();
  const bool all_passed = world->all_ok(rc == 0);
  if (world->rank() == 0 && !all_passed && rc == 0) {
    std::fprintf(stderr, "tests passed on rank 0 but failed on another rank\n");
  }
  world.reset();
  runner::comm::finalize_world();
  return all_passed ? 0 : 1;
}
