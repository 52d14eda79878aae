// Loader: DistributedSampler + DatasetFile reads + conversion, in a bounded prefetch thread.
#include "data/loader.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "data/image.h"

namespace runner::data {

namespace {

// Each row's crop draw: from the batch's seed and the row, never 0 (0 = no crop).
uint64_t row_crop_seed(uint64_t crop_seed, int64_t row) {
  if (crop_seed == 0) return 0;
  const uint64_t s = core::splitmix64(crop_seed ^ core::splitmix64(static_cast<uint64_t>(row)));
  return s == 0 ? 1 : s;
}

// Random resized crops of pixel rows uint8 [n, H, W, C] (back to H x W), one seed per row.
at::Tensor crop_pixel_rows(const at::Tensor& images, const std::vector<uint64_t>& seeds, int threads) {
  const int64_t n = images.size(0), h = images.size(1), w = images.size(2), c = images.size(3);
  at::Tensor src = images.contiguous();
  at::Tensor out = at::empty_like(src);
  const uint8_t* in = src.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  parallel_rows(n, threads, [&](int64_t i) {
    DecodedImage im;
    im.height = h;
    im.width = w;
    im.channels = c;
    im.pixels.assign(in + i * h * w * c, in + (i + 1) * h * w * c);
    resize_crop(im, random_resized_crop_box(h, w, seeds[static_cast<size_t>(i)]), h, w, c, dst + i * h * w * c);
  });
  return out;
}

}  // namespace

int decode_threads_for(int64_t configured, int local_ranks) {
  if (configured > 0) return static_cast<int>(std::min<int64_t>(configured, 256));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks));
}

Batch make_batch(const DatasetFile& file, const std::string& split, const std::vector<int64_t>& rows,
                 const TokenizeFn& tokenize, uint64_t crop_seed, int decode_threads) {
  // Read in ascending row order (neighbours share chunks and runs become single reads), then
  // put the rows back in batch order.
  std::vector<int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rows[a] < rows[b]; });
  std::vector<int64_t> sorted(rows.size());
  for (size_t i = 0; i < order.size(); ++i) sorted[i] = rows[order[i]];
  const bool jpeg = file.info().storage == kStorageJpeg;
  Rows r = jpeg ? file.read_encoded(split, sorted) : file.read(split, sorted);
  std::vector<int64_t> inverse(rows.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
  at::Tensor inv = at::tensor(inverse, at::kLong);
  std::vector<uint64_t> seeds;
  if (crop_seed != 0) {
    seeds.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) seeds[i] = row_crop_seed(crop_seed, rows[i]);
  }

  at::Tensor images;  // uint8 [B, H, W, C] in batch order
  if (jpeg) {
    // Decoded here, in the prefetch thread and its helpers, straight into batch order.
    std::vector<std::string> encoded(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) encoded[i] = std::move(r.encoded[static_cast<size_t>(inverse[i])]);
    images = decode_jpeg_rows(encoded, file.info().splits.at(split).image, seeds, decode_threads,
                              file.info().path + ": " + split, rows);
  } else {
    images = r.images.index_select(0, inv);
    if (crop_seed != 0) images = crop_pixel_rows(images, seeds, decode_threads);
  }
  Batch b;
  b.images = images.permute({0, 3, 1, 2}).contiguous().to(at::kFloat).div_(255.0);
  b.captions.resize(rows.size());
  std::vector<int64_t> concepts(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    b.captions[i] = std::move(r.captions[inverse[i]]);
    concepts[i] = r.concepts[inverse[i]];
  }
  b.concepts = at::tensor(concepts, at::kLong);
  b.rows = at::tensor(rows, at::kLong);
  if (tokenize) b.tokens = tokenize(b.captions);
  return b;
}

struct Loader::State {
  std::shared_ptr<const DatasetFile> file;
  LoaderOptions opts;
  DistributedSampler sampler;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> queue;
  std::exception_ptr error;
  bool stop = false;
  bool producing = false;
  int64_t epoch = 0, next_index = 0, delivered = 0;
  uint64_t generation = 0;  // bumped by start_epoch: batches of an older start are dropped
  std::thread worker;

  State(std::shared_ptr<const DatasetFile> f, LoaderOptions o, int rank, int world)
      : file(std::move(f)),
        opts(std::move(o)),
        sampler(opts.subset.empty() ? file->info().splits.at(opts.split).size
                                    : static_cast<int64_t>(opts.subset.size()),
                rank, world, opts.batch_size, opts.seed, opts.shuffle, opts.tail) {}

  Batch produce(int64_t epoch_, int64_t index) {
    std::vector<int64_t> rows = sampler.batch(epoch_, index);
    if (!opts.subset.empty()) {
      for (auto& r : rows) r = opts.subset[static_cast<size_t>(r)];
    }
    // The crops of an epoch: from the loader's seed and the epoch (and, in make_batch, the row).
    const uint64_t crop_seed =
        opts.augment ? core::splitmix64(opts.seed ^ core::splitmix64(0xC0FFEEull + static_cast<uint64_t>(epoch_))) | 1
                     : 0;
    Batch b = make_batch(*file, opts.split, rows, opts.tokenize, crop_seed, opts.decode_threads);
    if (opts.pin_memory) {
      // Page-locked, in the prefetch thread: the copy to the GPU then runs without blocking.
      b.images = b.images.pin_memory();
      if (b.tokens.defined()) b.tokens = b.tokens.pin_memory();
    }
    b.epoch = epoch_;
    b.index = index;
    return b;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      cv.wait(lock, [&] {
        return stop || (producing && next_index < sampler.num_batches() &&
                        static_cast<int64_t>(queue.size()) < opts.prefetch);
      });
      if (stop) break;
      const int64_t e = epoch, i = next_index++;
      const uint64_t gen = generation;
      lock.unlock();
      try {
        Batch b = produce(e, i);
        lock.lock();
        if (gen == generation && producing) queue.push_back(std::move(b));
      } catch (...) {
        lock.lock();
        if (gen == generation) {
          error = std::current_exception();
          producing = false;
        }
      }
      cv.notify_all();
    }
  }
};

Loader::Loader(std::shared_ptr<const DatasetFile> file, LoaderOptions opts, int rank, int world) {
  if (!file) throw ConfigError("Loader: no dataset file");
  if (!file->info().splits.count(opts.split)) {
    throw ConfigError(fmt::format("{}: no split '{}'", file->info().path, opts.split));
  }
  if (opts.batch_size < 1) throw ConfigError(fmt::format("batch size {} must be at least 1", opts.batch_size));
  const int64_t n = file->info().splits.at(opts.split).size;
  for (int64_t r : opts.subset) {
    if (r < 0 || r >= n) throw ConfigError(fmt::format("{}: subset row {} outside [0, {})", file->info().path, r, n));
  }
  s_ = std::make_unique<State>(std::move(file), std::move(opts), rank, world);
  if (s_->opts.prefetch > 0) s_->worker = std::thread([this] { s_->run(); });
}

Loader::~Loader() {
  if (!s_) return;
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->stop = true;
  }
  s_->cv.notify_all();
  if (s_->worker.joinable()) s_->worker.join();
}

int64_t Loader::batches_per_epoch() const { return s_->sampler.num_batches(); }

void Loader::start_epoch(int64_t epoch, int64_t first) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->epoch = epoch;
  s_->next_index = first;
  s_->delivered = first;
  s_->queue.clear();
  s_->error = nullptr;
  s_->producing = true;
  ++s_->generation;
  s_->cv.notify_all();
}

std::optional<Batch> Loader::next() {
  State& s = *s_;
  if (s.opts.prefetch <= 0) {
    if (!s.producing || s.delivered >= s.sampler.num_batches()) return std::nullopt;
    return s.produce(s.epoch, s.delivered++);
  }
  std::unique_lock<std::mutex> lock(s.mu);
  if (!s.producing && !s.error) return std::nullopt;
  if (s.delivered >= s.sampler.num_batches()) return std::nullopt;
  s.cv.wait(lock, [&] { return s.error || !s.queue.empty(); });
  if (s.error) std::rethrow_exception(s.error);
  Batch b = std::move(s.queue.front());
  s.queue.pop_front();
  ++s.delivered;
  s.cv.notify_all();
  return b;
}

}  // namespace runner::data
