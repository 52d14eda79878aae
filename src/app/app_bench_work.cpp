// `hac bench data` (loader throughput per rank) and `hac bench step` (training-step throughput),
// so the loader can be compared with what a step consumes (docs/benchmarks.md).
#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "app/app.h"
#include "core/error.h"
#include "core/log.h"
#include "data/image.h"
#include "data/loader.h"
#include "comm/runtime.h"
#include "models/contrastive_model.h"
#include "config/config.h"
#include "train/optim.h"
#include "train/step.h"
#include "unlearn/method.h"

namespace runner::app {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct BenchDataOptions {
  std::string file, split = "train";
  int64_t batch = 256;
  double seconds = 5.0;
  int prefetch = 4;
  int64_t synthetic_rows = 0, synthetic_size = 224;
  std::string synthetic_storage = "pixels";
  bool augment = false;
  int64_t threads = 0;
};

// Photo-like stand-ins: smooth colour fields (random 7x7 grids, bilinearly enlarged) with
// sensor-like noise, so JPEG compresses them about as it does photographs (docs/benchmarks.md
// states the measured size per row). Seeded per slice: the same file on every machine.
at::Tensor synthetic_images(int64_t n, int64_t size, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor coarse = at::rand({n, 3, 7, 7}, gen, at::kFloat) * 255.0;
  at::Tensor smooth = at::upsample_bilinear2d(coarse, {size, size}, /*align_corners=*/false);
  at::Tensor noisy = smooth + at::randn({n, 3, size, size}, gen, at::kFloat) * 6.0;
  return noisy.clamp(0, 255).round().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

// Synthetic images and short captions, written in slices so memory stays small.
void write_synthetic(const std::string& path, int64_t rows, int64_t size, const std::string& storage) {
  RUNNER_CHECK(storage == data::kStoragePixels || storage == data::kStorageJpeg, ConfigError,
               fmt::format("--synthetic-storage must be pixels or jpeg, got '{}'", storage));
  data::DatasetWriter w(path);
  const int64_t slice = std::max<int64_t>(1, (int64_t{64} << 20) / (size * size * 3));
  uint64_t slice_seed = 1;
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", rows}, {"test", std::max<int64_t>(1, rows / 10)}}) {
    for (int64_t done = 0; done < n; done += slice) {
      const int64_t k = std::min(slice, n - done);
      std::vector<std::string> caps(static_cast<size_t>(k));
      std::vector<int32_t> concepts(static_cast<size_t>(k));
      for (int64_t i = 0; i < k; ++i) {
        caps[i] = fmt::format("synthetic image {} of class {}", done + i, (done + i) % 10);
        concepts[i] = static_cast<int32_t>((done + i) % 10);
      }
      const at::Tensor images = synthetic_images(k, size, slice_seed++);
      if (storage == data::kStorageJpeg) {
        std::vector<std::string> jpegs(static_cast<size_t>(k));
        const uint8_t* px = images.data_ptr<uint8_t>();
        data::parallel_rows(k, data::decode_threads_for(0, 1), [&](int64_t i) {
          data::DecodedImage im;
          im.height = im.width = size;
          im.channels = 3;
          im.pixels.assign(px + i * size * size * 3, px + (i + 1) * size * size * 3);
          jpegs[static_cast<size_t>(i)] = data::encode_jpeg(im, 95);
        });
        w.append_encoded(split, jpegs, data::ImageShape{size, size, 3}, caps, concepts);
      } else {
        w.append(split, images, caps, concepts);
      }
      core::log_info("synthetic {}: {}/{} rows", split, done + k, n);
    }
  }
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back(fmt::format("class {}", c));
  w.set_concepts(names, {});
  w.set_attribute("builder", "hac bench data (synthetic: smooth colour fields with noise; JPEG quality 95)");
  w.commit();
}

int run_bench_data(const BenchDataOptions& o) {
  auto comm = comm::init_world();
  if (o.synthetic_rows > 0 && !std::ifstream(o.file).good()) {
    if (comm->rank() == 0) write_synthetic(o.file, o.synthetic_rows, o.synthetic_size, o.synthetic_storage);
    comm->barrier();
  }
  auto file = data::DatasetFile::open(o.file);
  data::LoaderOptions lo;
  lo.split = o.split;
  lo.batch_size = o.batch;
  lo.prefetch = o.prefetch;
  lo.augment = o.augment;
  lo.decode_threads = data::decode_threads_for(o.threads, comm->local_size());
  data::Loader loader(file, lo, comm->rank(), comm->world_size());
  const auto& shape = file->info().splits.at(o.split).image;
  comm->barrier();
  const auto t0 = Clock::now();
  int64_t samples = 0;
  for (int64_t epoch = 0; seconds_since(t0) < o.seconds; ++epoch) {
    loader.start_epoch(epoch);
    while (seconds_since(t0) < o.seconds) {
      auto b = loader.next();
      if (!b) break;
      samples += b->images.size(0);
    }
  }
  const double dt = seconds_since(t0);
  at::Tensor mine = at::tensor({static_cast<double>(samples) / dt}, at::kDouble);
  at::Tensor all = comm->all_gather(mine);
  const double mb = static_cast<double>(shape.bytes()) / 1e6;
  const auto& info = file->info();
  int64_t all_rows = 0;
  for (const std::string& sp : data::split_names()) all_rows += info.splits.at(sp).size;
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(o.file, ec);
  core::log_info("bench data: {} ({} rows of {}x{}x{}, {} storage, {:.1f} MB per 1,000 rows on disk), batch {}, "
                 "prefetch {}, {} decode thread(s), augment {}, {} rank(s)", o.file, info.splits.at(o.split).size,
                 shape.height, shape.width, shape.channels, info.storage,
                 ec || all_rows == 0 ? 0.0 : static_cast<double>(file_bytes) / static_cast<double>(all_rows) / 1e3,
                 o.batch, o.prefetch, lo.decode_threads, o.augment ? "random_resized_crop" : "none",
                 comm->world_size());
  double total = 0;
  for (int r = 0; r < comm->world_size(); ++r) {
    const double sps = all[r].item<double>();
    total += sps;
    core::log_info("  rank {}: {:.0f} samples/s, {:.1f} MB/s of pixels", r, sps, sps * mb);
  }
  core::log_info("  all ranks: {:.0f} samples/s, {:.1f} MB/s of pixels", total, total * mb);
  comm->barrier();
  comm::finalize_world();
  return 0;
}

struct BenchStepOptions {
  std::string preset = "tiny", kind = "meru", json;
  int64_t batch = 128;
  int steps = 20, warmup = 3, threads = 0;
};

// The step `hac train` runs (train::TrainStep): encoders, the native loss over features gathered
// from every rank (MERU: contrastive + train.entail_weight entailment), the terms' all-reduce,
// backward, bucketed gradient all-reduce, AdamW with MERU's parameter groups and the recipe's
// settings and schedule (config defaults). Inputs are fixed random tensors: no data loading is timed.
int run_bench_step(const BenchStepOptions& o) {
  comm::InitOptions init;
  init.threads = o.threads;
  auto comm = comm::init_world(init);
  torch::manual_seed(0);
  models::ContrastiveModel model(models::model_preset(o.preset, geometry::parse_model_kind(o.kind)));
  const auto& mo = model->options();
  // The pretraining recipe's optimizer and schedule, from the config defaults.
  const config::TrainConfig recipe;
  const auto method = unlearn::make_pretrain_method();
  unlearn::Context ctx;
  ctx.comm = comm;
  ctx.geometry = model->geometry();
  ctx.entail_weight = recipe.entail_weight;
  train::TrainStep stepper(*model, *method, ctx, train::adamw_options(recipe, recipe.weight_decay));
  const int64_t side = mo.vision.image_size;
  const at::Tensor pixels = torch::rand({o.batch, mo.vision.channels, side, side});
  at::Tensor tokens = torch::randint(1, mo.text.vocab_size - 1, {o.batch, std::min<int64_t>(mo.text.context_length, 16)},
                                     torch::kLong);
  tokens.select(1, tokens.size(1) - 1).fill_(mo.text.vocab_size - 1);  // the end token pools the sequence
  auto features = [&] {
    unlearn::Features f;
    f.image = model->encode_image(pixels);
    f.text_own = f.text = model->encode_text(tokens);
    f.forget = at::zeros({o.batch}, at::kBool);
    f.logit_scale = model->logit_scale;
    if (model->is_meru()) f.curv = model->curvature();
    return f;
  };
  const int64_t total = o.warmup + o.steps;
  double timed = 0, comm_s = 0;
  for (int s = 0; s < total; ++s) {
    const auto t0 = Clock::now();
    const train::StepOutcome out =
        stepper.run(features, train::lr_at(s, total, recipe.warmup_steps, recipe.lr), /*stop=*/false, s + 1);
    if (s >= o.warmup) timed += seconds_since(t0), comm_s += out.reduce_s;
  }
  const double sps = static_cast<double>(o.batch * o.steps) / timed;
  at::Tensor stats = at::tensor({sps, comm_s / timed}, at::kDouble);
  comm->all_reduce(stats);
  const double per_rank = stats[0].item<double>() / comm->world_size();
  const double share = stats[1].item<double>() / comm->world_size();
  core::log_info("bench step: {} {} batch {} per rank, {} rank(s) x {} torch thread(s): {:.1f} samples/s per rank, "
                 "{:.1f} in all, {:.4f} s per step, gradient all-reduce {:.1f}% of the step",
                 o.kind, o.preset, o.batch, comm->world_size(), at::get_num_threads(), per_rank,
                 per_rank * comm->world_size(), o.batch / per_rank, 100.0 * share);
  if (comm->rank() == 0 && !o.json.empty()) {
    std::ofstream out(o.json);
    out << fmt::format(R"({{"kind": "{}", "preset": "{}", "batch": {}, "ranks": {}, "threads": {}, )"
                       R"("samples_per_s_per_rank": {}, "samples_per_s": {}, "allreduce_share": {}}})",
                       o.kind, o.preset, o.batch, comm->world_size(), at::get_num_threads(), per_rank,
                       per_rank * comm->world_size(), share)
        << "\n";
    if (!out) throw IoError(fmt::format("{}: cannot write", o.json));
  }
  comm->barrier();
  comm::finalize_world();
  return 0;
}

}  // namespace

void add_bench_work(CLI::App& bench, Action& action) {
  auto d = std::make_shared<BenchDataOptions>();
  auto* data = bench.add_subcommand("data", "Loader throughput per rank (samples/s, MB/s)");
  data->add_option("--file", d->file, "Dataset file")->required();
  data->add_option("--split", d->split, "Split")->capture_default_str();
  data->add_option("--batch", d->batch, "Batch size per rank")->capture_default_str();
  data->add_option("--seconds", d->seconds, "How long to read")->capture_default_str();
  data->add_option("--prefetch", d->prefetch, "Batches read ahead (0 = inline)")->capture_default_str();
  data->add_option("--synthetic-rows", d->synthetic_rows, "Create FILE first (if absent) with this many random rows");
  data->add_option("--synthetic-size", d->synthetic_size, "Image size of the synthetic file")->capture_default_str();
  data->add_option("--synthetic-storage", d->synthetic_storage, "Storage of the synthetic file: pixels | jpeg")
      ->capture_default_str();
  data->add_flag("--augment", d->augment, "Random resized crops (data.augment random_resized_crop)");
  data->add_option("--threads", d->threads, "Decode threads per rank (data.decode_threads; 0 = cores / ranks)")
      ->capture_default_str();
  data->callback([&action, d] { action = [d] { return run_bench_data(*d); }; });

  auto s = std::make_shared<BenchStepOptions>();
  auto* step = bench.add_subcommand(
      "step", "Training-step throughput of `hac train` (forward, loss, backward, all-reduce, AdamW)");
  step->add_option("--preset", s->preset, "Model preset (tiny, vit_s, vit_b, vit_l)")->capture_default_str();
  step->add_option("--kind", s->kind, "clip or meru")->capture_default_str();
  step->add_option("--batch", s->batch, "Batch size per rank")->capture_default_str();
  step->add_option("--steps", s->steps, "Timed steps")->capture_default_str();
  step->add_option("--warmup", s->warmup, "Untimed steps first")->capture_default_str();
  step->add_option("--threads", s->threads, "Torch threads per rank (0 = cores / ranks)")->capture_default_str();
  step->add_option("--json", s->json, "Also write the figures to this JSON file");
  step->callback([&action, s] { action = [s] { return run_bench_step(*s); }; });
}

}  // namespace runner::app
