// Batches of a dataset split for one rank, assembled by a prefetch thread ahead of compute:
// images as float tensors, captions (optionally tokenized in the same thread) and concepts.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace runner::data {

struct Batch {
  at::Tensor images;    // float32 [B, C, H, W] in [0, 1]
  at::Tensor tokens;    // int64 [B, L] when the loader has a tokenize function, else undefined
  std::vector<std::string> captions;
  at::Tensor concepts;  // int64 [B], -1 = none
  at::Tensor rows;      // int64 [B], row indices in the split
  int64_t epoch = 0;
  int64_t index = 0;    // batch number within the epoch
};

using TokenizeFn = std::function<at::Tensor(const std::vector<std::string>&)>;

struct LoaderOptions {
  std::string split = "train";
  // Rows of the split to draw from (e.g. the retain set); empty = every row.
  std::vector<int64_t> subset;
  int64_t batch_size = 64;
  uint64_t seed = 0;
  bool shuffle = true;
  TailPolicy tail = TailPolicy::kDrop;
  int prefetch = 4;         // batches read ahead; 0 reads in the caller's thread
  TokenizeFn tokenize;      // run in the prefetch thread when set
  bool pin_memory = false;  // page-locked batches (for a GPU run; needs a CUDA build)
  // data.augment random_resized_crop: each row gets a random resized crop drawn from (seed,
  // epoch, row), so a run is reproducible and resumes with the same crops.
  bool augment = false;
  int decode_threads = 1;   // threads that decode JPEG rows / crop, inside the prefetch thread's batch
};

// Every rank gets the same number of batches per epoch (DistributedSampler); each reads only its
// own rows. Errors in the prefetch thread (a read failure, say) are rethrown by next().
class Loader {
 public:
  Loader(std::shared_ptr<const DatasetFile> file, LoaderOptions opts, int rank, int world);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts (or restarts) producing the batches of `epoch`, from batch `first` (for resuming).
  void start_epoch(int64_t epoch, int64_t first = 0);
  // The next batch of the current epoch, or nullopt when it is exhausted.
  std::optional<Batch> next();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// data.decode_threads: `configured` when > 0, else this machine's cores shared by its ranks.
int decode_threads_for(int64_t configured, int local_ranks);

// Reads and converts the given rows: the work of one batch, exposed for benchmarks and tests.
// crop_seed != 0 augments (a random resized crop per row, drawn from crop_seed and the row).
Batch make_batch(const DatasetFile& file, const std::string& split, const std::vector<int64_t>& rows,
                 const TokenizeFn& tokenize, uint64_t crop_seed = 0, int decode_threads = 1);

}  // namespace runner::data
