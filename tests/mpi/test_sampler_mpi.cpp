// MPI tests of src/data/sampler at 1, 2 and 4 real ranks: each rank computes only its own shard,
// epoch indices and forget partners; all-gathered, they must be disjoint, covering and
// equal-sized, and the partners identical on every rank.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "data/sampler.h"
#include "comm/runtime.h"

namespace runner::data {
namespace {

at::Tensor to_tensor(const std::vector<int64_t>& v) {
  return at::tensor(at::ArrayRef<int64_t>(v), at::kLong);
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<int64_t> iota64(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

TEST(MpiSampler, ShardsAreDisjointCoveringAndBalanced) {
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  for (int64_t n : {0, 1, 3, 4, 5, 1000, 1003}) {
    const ShardRange s = shard_range(n, r, w);
    const auto g = to_vector(comm->all_gather(to_tensor({s.begin, s.end})));
    ASSERT_EQ(g.size(), 2u * w);
    int64_t next = 0, min_size = n, max_size = 0;
    for (int k = 0; k < w; ++k) {
      EXPECT_EQ(g[2 * k], next) << "n=" << n << ": rank " << k << " does not start where rank "
                                << k - 1 << " ends";
      const int64_t size = g[2 * k + 1] - g[2 * k];
      min_size = std::min(min_size, size);
      max_size = std::max(max_size, size);
      next = g[2 * k + 1];
    }
    EXPECT_EQ(next, n);
    EXPECT_LE(max_size - min_size, 1);
  }
}

TEST(MpiSampler, EpochIndicesAreDisjointAndEqualSizedWithDrop) {
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  const int64_t n = 1003;
  const DistributedSampler s(n, r, w, 8, /*seed=*/2024);
  for (int64_t epoch : {0, 1, 5}) {
    const auto mine = s.epoch_indices(epoch);
    ASSERT_EQ(static_cast<int64_t>(mine.size()), n / w);
    const auto all = to_vector(comm->all_gather(to_tensor(mine)));
    const std::set<int64_t> unique(all.begin(), all.end());
    EXPECT_EQ(unique.size(), all.size()) << "epoch " << epoch << ": ranks share samples";
    // Only the permutation's last n % w samples are missing.
    const auto perm = s.permutation(epoch);
    const std::set<int64_t> kept(perm.begin(), perm.end() - n % w);
    EXPECT_EQ(unique, kept);
    // The permutation itself is the same on every rank.
    const auto perms = to_vector(comm->all_gather(to_tensor(perm)));
    for (int k = 0; k < w; ++k) {
      EXPECT_TRUE(std::equal(perm.begin(), perm.end(), perms.begin() + k * n))
          << "rank " << k << " drew another permutation";
    }
  }
}

TEST(MpiSampler, EpochIndicesCoverEverythingWithPad) {
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  for (int64_t n : {1, 3, 1003}) {
    const DistributedSampler s(n, r, w, 1, /*seed=*/7, true, TailPolicy::kPad);
    const auto mine = s.epoch_indices(2);
    ASSERT_EQ(static_cast<int64_t>(mine.size()), (n + w - 1) / w);
    auto all = to_vector(comm->all_gather(to_tensor(mine)));
    const std::set<int64_t> unique(all.begin(), all.end());
    const auto expected = iota64(n);
    EXPECT_EQ(unique, std::set<int64_t>(expected.begin(), expected.end())) << "n=" << n;
  }
}

TEST(MpiSampler, BatchesInterleaveIntoTheGlobalBatch) {
  // Every rank's batch b, in rank order, holds the same samples as positions
  // [b * B * w, (b + 1) * B * w) of the shared permutation: N ranks x B rows = 1 rank x N*B rows.
  auto comm = comm::world();
  const int w = comm->world_size(), r = comm->rank();
  const int64_t batch = 4;
  const DistributedSampler s(250, r, w, batch, /*seed=*/99);
  const auto perm = s.permutation(1);
  for (int64_t b = 0; b < s.num_batches(); ++b) {
    const auto all = to_vector(comm->all_gather(to_tensor(s.batch(1, b))));
    std::vector<int64_t> expected(perm.begin() + b * batch * w, perm.begin() + (b + 1) * batch * w);
    std::sort(expected.begin(), expected.end());
    auto got = all;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << "batch " << b;
  }
}

TEST(MpiSampler, ForgetPartnersAreIdenticalOnEveryRank) {
  auto comm = comm::world();
  const int w = comm->world_size();
  for (int64_t m : {2, 17, 500}) {
    const auto p = forget_partners(m, /*seed=*/31337);
    const auto all = to_vector(comm->all_gather(to_tensor(p)));
    for (int k = 0; k < w; ++k) {
      EXPECT_TRUE(std::equal(p.begin(), p.end(), all.begin() + k * m))
          << "m=" << m << ": rank " << k << " drew other partners";
    }
  }
  std::vector<int32_t> concepts(40);
  for (size_t i = 0; i < concepts.size(); ++i) concepts[i] = static_cast<int32_t>(i % 3);
  const auto p = forget_partners(40, 5, concepts);
  const auto all = to_vector(comm->all_gather(to_tensor(p)));
  for (int k = 0; k < w; ++k) EXPECT_TRUE(std::equal(p.begin(), p.end(), all.begin() + k * 40));
}

}  // namespace
}  // namespace runner::data
