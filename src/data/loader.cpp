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

namespace runner::data {

Batch make_batch(const DatasetFile& file, const std::string& split, const std::vector<int64_t>& rows,
                 const TokenizeFn& tokenize) {
  // Read in ascending row order (neighbours share chunks and runs become single reads), then
  // put the rows back in batch order.
  std::vector<int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rows[a] < rows[b]; });
  std::vector<int64_t> sorted(rows.size());
  for (size_t i = 0; i < order.size(); ++i) sorted[i] = rows[order[i]];
  Rows r = file.read(split, sorted);
  std::vector<int64_t> inverse(rows.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
  at::Tensor inv = at::tensor(inverse, at::kLong);

  Batch b;
  b.images = r.images.index_select(0, inv).permute({0, 3, 1, 2}).contiguous().to(at::kFloat).div_(255.0);
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
    Batch b = make_batch(*file, opts.split, rows, opts.tokenize);
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
