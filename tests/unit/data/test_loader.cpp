// The prefetching loader: rank shards of an epoch, ready tensors equal to the file's rows,
// subsets, tokenization in the worker, resume mid-epoch, and errors reaching the caller.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <map>
#include <set>

#include "core/error.h"
#include "data/loader.h"

namespace runner::data {
namespace {

struct TempDataset {
  std::string path;
  at::Tensor images;
  std::vector<std::string> captions;
  std::vector<int32_t> concepts;
  explicit TempDataset(int64_t n) {
    path = "/tmp/hac_loader_" + std::to_string(::getpid()) + ".h5";
    at::manual_seed(3);
    images = at::randint(0, 256, {n, 5, 4, 3}, at::kByte);
    for (int64_t i = 0; i < n; ++i) {
      captions.push_back("row " + std::to_string(i));
      concepts.push_back(static_cast<int32_t>(i % 3));
    }
    DatasetWriter w(path);
    w.append("train", images, captions, concepts);
    w.append("test", images.narrow(0, 0, 2), {captions[0], captions[1]}, {0, 1});
    w.set_concepts({"a", "b", "c"}, {});
    w.commit();
  }
  ~TempDataset() { std::remove(path.c_str()); }
};

std::vector<Batch> epoch_of(Loader& l, int64_t epoch, int64_t first = 0) {
  l.start_epoch(epoch, first);
  std::vector<Batch> out;
  while (auto b = l.next()) out.push_back(std::move(*b));
  return out;
}

TEST(Loader, RanksReadDisjointRowsAsReadyTensors) {
  TempDataset d(37);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 11;
  Loader r0(file, o, 0, 2), r1(file, o, 1, 2);
  EXPECT_EQ(r0.batches_per_epoch(), 4);  // 37 / 2 = 18 per rank -> 4 full batches
  EXPECT_EQ(r1.batches_per_epoch(), r0.batches_per_epoch());
  std::set<int64_t> seen;
  for (Loader* l : {&r0, &r1}) {
    for (const Batch& b : epoch_of(*l, 0)) {
      ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 5, 4}));
      EXPECT_EQ(b.images.scalar_type(), at::kFloat);
      for (int64_t i = 0; i < 4; ++i) {
        const int64_t row = b.rows[i].item<int64_t>();
        EXPECT_TRUE(seen.insert(row).second) << "row " << row << " read twice in one epoch";
        EXPECT_TRUE(b.images[i].allclose(d.images[row].permute({2, 0, 1}).to(at::kFloat) / 255.0));
        EXPECT_EQ(b.captions[i], d.captions[row]);
        EXPECT_EQ(b.concepts[i].item<int64_t>(), d.concepts[row]);
      }
    }
  }
  EXPECT_EQ(seen.size(), 32u);
}

TEST(Loader, PrefetchedAndInlineAgreeAndEpochsDiffer) {
  TempDataset d(20);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 5;
  Loader ahead(file, o, 0, 1);
  o.prefetch = 0;
  Loader inline_(file, o, 0, 1);
  auto a = epoch_of(ahead, 3), b = epoch_of(inline_, 3), c = epoch_of(ahead, 4);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].rows.equal(b[i].rows));
    EXPECT_TRUE(a[i].images.equal(b[i].images));
    EXPECT_EQ(a[i].index, static_cast<int64_t>(i));
  }
  EXPECT_FALSE(a[0].rows.equal(c[0].rows));
}

TEST(Loader, ResumeMidEpochGivesTheRemainingBatches) {
  TempDataset d(30);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 3;
  Loader l(file, o, 0, 1);
  auto full = epoch_of(l, 2);
  auto tail = epoch_of(l, 2, /*first=*/4);
  ASSERT_EQ(tail.size(), full.size() - 4);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_TRUE(tail[i].rows.equal(full[i + 4].rows));
}

TEST(Loader, SubsetAndTokenizer) {
  TempDataset d(24);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 2;
  o.subset = {1, 4, 7, 10, 13, 16};
  o.tokenize = [](const std::vector<std::string>& caps) { return at::full({static_cast<int64_t>(caps.size()), 3}, 7, at::kLong); };
  Loader l(file, o, 0, 1);
  std::set<int64_t> rows;
  for (const Batch& b : epoch_of(l, 0)) {
    EXPECT_TRUE(b.tokens.equal(at::full({2, 3}, 7, at::kLong)));
    for (int64_t i = 0; i < 2; ++i) rows.insert(b.rows[i].item<int64_t>());
  }
  EXPECT_EQ(rows, (std::set<int64_t>{1, 4, 7, 10, 13, 16}));
  o.subset = {99};
  EXPECT_THROW(Loader(file, o, 0, 1), ConfigError);
}

TEST(Loader, WorkerErrorsReachTheCaller) {
  TempDataset d(12);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 3;
  o.tokenize = [](const std::vector<std::string>&) -> at::Tensor { throw IoError("tokenizer broke"); };
  Loader l(file, o, 0, 1);
  l.start_epoch(0);
  try {
    l.next();
    FAIL() << "the worker's error was lost";
  } catch (const IoError& e) {
    EXPECT_STREQ(e.what(), "tokenizer broke");
  }
  o.split = "valid";
  EXPECT_THROW(Loader(file, o, 0, 1), ConfigError);
}

// data.augment random_resized_crop: crops differ from the plain rows and between epochs, are the
// same for the same seed and epoch (a resumed run sees the crops of an uninterrupted one), and do
// not depend on the number of decode threads.
TEST(Loader, AugmentedCropsAreSeededPerEpochAndRowAndThreadIndependent) {
  TempDataset d(24);
  auto file = DatasetFile::open(d.path);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 5;
  o.prefetch = 0;
  Loader plain(file, o, 0, 1);
  o.augment = true;
  Loader one(file, o, 0, 1);
  o.decode_threads = 4;
  o.prefetch = 2;
  Loader four(file, o, 0, 1);
  const auto p0 = epoch_of(plain, 0), a0 = epoch_of(one, 0), b0 = epoch_of(four, 0), a1 = epoch_of(one, 1);
  ASSERT_EQ(a0.size(), 3u);
  bool differs_from_plain = false, differs_between_epochs = false;
  for (size_t i = 0; i < a0.size(); ++i) {
    ASSERT_TRUE(at::equal(a0[i].rows, p0[i].rows));  // augmentation never changes which rows
    EXPECT_EQ(a0[i].images.sizes(), p0[i].images.sizes());
    EXPECT_TRUE(at::equal(a0[i].images, b0[i].images)) << "batch " << i << " depends on the thread count";
    differs_from_plain |= !at::equal(a0[i].images, p0[i].images);
  }
  // Epoch 1 visits rows in another order: compare each row's crop by row number.
  std::map<int64_t, at::Tensor> e0, e1;
  for (const auto* ep : {&a0, &a1}) {
    for (const Batch& b : *ep) {
      for (int64_t i = 0; i < b.rows.size(0); ++i) (ep == &a0 ? e0 : e1)[b.rows[i].item<int64_t>()] = b.images[i];
    }
  }
  for (const auto& [row, img] : e0) {
    if (e1.count(row)) differs_between_epochs |= !at::equal(img, e1.at(row));
  }
  EXPECT_TRUE(differs_from_plain);
  EXPECT_TRUE(differs_between_epochs);
  // Resuming at batch 2 of epoch 0 gives the crops of batch 2 of an uninterrupted epoch 0.
  const auto resumed = epoch_of(one, 0, 2);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_TRUE(at::equal(resumed[0].images, a0[2].images));
  // Pixel values stay in [0, 1].
  EXPECT_GE(a0[0].images.min().item<float>(), 0.0f);
  EXPECT_LE(a0[0].images.max().item<float>(), 1.0f);
}

}  // namespace
}  // namespace runner::data
