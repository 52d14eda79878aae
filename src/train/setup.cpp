// Building a run from its config: dataset, tokenizer, models, method, forget sets, partners.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "comm/runtime.h"
#include "data/sampler.h"
#include "train/session.h"
#include "train/step.h"

namespace runner::train {

namespace {

// The captions of `rows` of the train split (no images read).
std::vector<std::string> read_captions(const data::DatasetFile& file, const std::vector<int64_t>& rows) {
  return file.read("train", rows, /*with_images=*/false).captions;
}

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), 0);
  return r;
}

void make_tokenizer(Session& s, const std::map<std::string, std::string>& extras) {
  const config::DataConfig& d = s.cfg.data;
  if (s.unlearning) {
    // The original's own vocabulary (the text encoder's ids mean these words), or CLIP's BPE.
    s.tokenizer = models::checkpoint_tokenizer(extras, d.vocab_file, s.cfg.unlearn.original);
    if (const auto* w = dynamic_cast<const models::WordTokenizer*>(s.tokenizer.get())) s.tokenizer_text = w->to_text();
  } else if (d.tokenizer == "clip_bpe") {
    s.tokenizer = models::load_clip_bpe(d.vocab_file);
  } else {
    const auto n = s.file->info().splits.at("train").size;
    auto w = std::make_shared<models::WordTokenizer>(
        models::WordTokenizer::build(read_captions(*s.file, all_rows(n)), d.word_min_count));
    s.tokenizer_text = w->to_text();
    s.tokenizer = w;
  }
}

void check_image_shape(const Session& s, const models::ModelOptions& o) {
  data::check_image_shape(s.file->info().path, s.file->info().splits.at("train").image, o.vision.image_size,
                          o.vision.channels,
                          fmt::format("the model (model.preset {}, or the original checkpoint)", s.cfg.model.preset));
}

models::ModelOptions options_from_config(const config::Config& cfg, int64_t vocab_size) {
  models::ModelOptions o = models::model_preset(cfg.model.preset, geometry::parse_model_kind(cfg.model.kind));
  if (cfg.model.embed_dim > 0) o.embed_dim = cfg.model.embed_dim;
  o.curv_init = cfg.model.curv_init;
  o.curv_learn = cfg.model.curv_learn;
  o.vision.ln_eps = cfg.model.vision_ln_eps;
  o.text.vocab_size = vocab_size;
  models::validate(o);
  return o;
}

// Same weights on every rank whatever each rank's generator did before: rank 0's.
void broadcast_weights(const comm::CommPtr& comm, torch::nn::Module& m) {
  if (comm->world_size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) comm->broadcast(p, 0);
}

// Each forget row's stand-in caption row (unlearn.partners), their captions, and the share of
// stand-ins that repeat the row's own caption (logged and recorded: a stand-in equal to the own
// caption re-teaches what is to be forgotten).
void make_partners(Session& s, const data::ForgetRetain& fr) {
  const config::UnlearnConfig& u = s.cfg.unlearn;
  const std::vector<int32_t>& concepts = s.file->concepts("train");
  std::vector<int32_t> forget_concepts;
  for (int64_t r : fr.forget) forget_concepts.push_back(concepts[static_cast<size_t>(r)]);
  const bool several = std::any_of(forget_concepts.begin(), forget_concepts.end(),
                                   [&](int32_t c) { return c != forget_concepts.front(); });
  std::vector<int64_t> partner_rows(fr.forget.size());
  if (u.partners == "same_concept" || (u.partners == "other_concept" && several)) {
    RUNNER_CHECK(s.forget_size >= 2, ConfigError,
                 fmt::format("unlearn.forget: {} needs at least 2 forget rows for partner captions, found {}",
                             u.method, s.forget_size));
    const auto p = u.partners == "same_concept" ? data::forget_partners(s.forget_size, s.seed)
                                                : data::forget_partners(s.forget_size, s.seed, forget_concepts);
    for (size_t i = 0; i < p.size(); ++i) partner_rows[i] = fr.forget[static_cast<size_t>(p[i])];
    s.partners_used = u.partners;
  } else {  // retain_caption, or other_concept with one forget concept: retain rows are of other concepts
    const auto p = data::retain_partners(s.forget_size, static_cast<int64_t>(fr.retain.size()), s.seed);
    for (size_t i = 0; i < p.size(); ++i) partner_rows[i] = fr.retain[static_cast<size_t>(p[i])];
    s.partners_used = "retain_caption";
  }
  const auto own = read_captions(*s.file, fr.forget);
  const auto stand_in = read_captions(*s.file, partner_rows);
  int64_t same = 0;
  for (size_t i = 0; i < partner_rows.size(); ++i) {
    s.partner_of[static_cast<size_t>(fr.forget[i])] = partner_rows[i];
    s.partner_captions.emplace(partner_rows[i], stand_in[i]);
    same += stand_in[i] == own[i];
  }
  s.partner_same_caption = s.forget_size > 0 ? static_cast<double>(same) / static_cast<double>(s.forget_size) : 0.0;
  core::log_info("partners: {} (unlearn.partners {}); {:.1f}% of stand-in captions equal the row's own", s.partners_used,
                 u.partners, 100.0 * s.partner_same_caption);
}

void make_forget_sets(Session& s) {
  const config::UnlearnConfig& u = s.cfg.unlearn;
  const data::DatasetInfo& info = s.file->info();
  RUNNER_CHECK(!u.forget.empty() || !u.forget_captions.empty(), ConfigError,
               "unlearn.forget: no concept named (give one or several names, or caption keywords in "
               "unlearn.forget_captions)");
  const std::vector<int32_t> ids =
      u.forget.empty() ? std::vector<int32_t>{}
                       : data::forget_concept_ids(u.forget, u.forget_descendants, info.concept_names, info.concept_parent);
  for (int32_t c : ids) s.forget_concepts.push_back(info.concept_names.at(static_cast<size_t>(c)));
  const std::vector<int32_t>& concepts = s.file->concepts("train");
  const std::vector<char> by_caption = data::caption_match_flags(*s.file, "train", u.forget_captions);
  if (!u.forget_captions.empty()) {
    for (size_t i = 0; i < by_caption.size(); ++i) {
      if (!by_caption[i]) continue;
      s.caption_rows.push_back(static_cast<int64_t>(i));
      const int32_t c = concepts[i];
      if (c < 0 || std::find(ids.begin(), ids.end(), c) == ids.end()) ++s.caption_only_rows;
    }
    core::log_info("unlearn.forget_captions [{}]: {} train rows match ({} of them not in a forget concept)",
                   fmt::join(u.forget_captions, ", "), s.caption_rows.size(), s.caption_only_rows);
  }
  RUNNER_CHECK(!ids.empty() || !s.caption_rows.empty(), ConfigError,
               fmt::format("unlearn.forget_captions: keywords [{}] select no rows of {}/train",
                           fmt::join(u.forget_captions, ", "), info.path));
  const auto fr = data::split_forget_retain(concepts, ids, static_cast<int32_t>(info.concept_names.size()), by_caption);
  s.forget_rows = fr.forget;
  s.forget_size = static_cast<int64_t>(fr.forget.size());
  s.retain_size = static_cast<int64_t>(fr.retain.size());
  RUNNER_CHECK(s.forget_size > 0, ConfigError,
               fmt::format("unlearn.forget: concepts [{}] and caption keywords [{}] select no rows of {}/train",
                           fmt::join(u.forget, ", "), fmt::join(u.forget_captions, ", "), info.path));
  switch (s.method->rows()) {
    case unlearn::Rows::kAll: break;
    case unlearn::Rows::kRetain: s.subset = fr.retain; break;
    case unlearn::Rows::kForget: s.subset = fr.forget; break;
  }
  s.partner_of.assign(static_cast<size_t>(info.splits.at("train").size), -1);
  if (s.method->needs().partners) {
    make_partners(s, fr);
  }
}

}  // namespace

at::Device run_device(const config::Config& cfg, const comm::CommPtr& comm) {
  if (cfg.dist.device != "cuda") return at::kCPU;
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  RUNNER_CHECK(visible > 0, ConfigError,
               fmt::format("dist.device: cuda, but rank {} on {} sees no CUDA device (CUDA_VISIBLE_DEVICES={})",
                           comm->rank(), core::host_name(),
                           std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset"));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(comm->local_rank() % visible));
}

Session make_session(const config::Config& cfg, const comm::CommPtr& comm, bool unlearning) {
  Session s;
  s.cfg = cfg;
  s.comm = comm;
  s.unlearning = unlearning;
  s.kind = unlearning ? "unlearn" : "train";
  s.seed = static_cast<uint64_t>(cfg.train.seed);
  config::check_device_supported(cfg);  // a CPU build: how to get a CUDA one
  s.device = run_device(cfg, comm);
  if (s.device.is_cuda()) s.comm = comm::make_dispatch_comm(comm, comm::make_nccl_comm(comm));
  RUNNER_CHECK(!cfg.data.file.empty(), ConfigError, "data.file: no dataset given");
  s.file = data::DatasetFile::open(cfg.data.file, data::Holdout{cfg.data.val_fraction, static_cast<uint64_t>(cfg.data.val_seed)});

  std::map<std::string, std::string> extras;
  models::ModelOptions original_options;
  models::ContrastiveModel original{nullptr};
  if (unlearning) {
    RUNNER_CHECK(!cfg.unlearn.original.empty(), ConfigError, "unlearn.original: no original checkpoint given");
    original = models::load_model(cfg.unlearn.original, &extras, &original_options);
  }
  make_tokenizer(s, extras);
  s.context_length = unlearning ? original_options.text.context_length
                                : models::model_preset(cfg.model.preset, geometry::Geometry::kLorentz).text.context_length;

  const geometry::Geometry geo = unlearning ? original->geometry() : geometry::parse_model_kind(cfg.model.kind);
  s.method = unlearning ? unlearn::make_method(cfg.unlearn, geo) : unlearn::make_pretrain_method();
  const bool scratch = s.method->from_scratch();

  torch::manual_seed(s.seed);
  if (!unlearning) {
    if (cfg.model.init.empty()) {
      s.model = models::ContrastiveModel(options_from_config(cfg, s.tokenizer->vocab_size()));
    } else {
      s.model = models::load_model(cfg.model.init, nullptr, nullptr);
    }
  } else if (scratch) {
    s.model = models::ContrastiveModel(original_options);  // same architecture, random weights
  } else {
    s.model = original;
  }
  s.model->to(s.device);
  broadcast_weights(s.comm, *s.model);
  check_image_shape(s, s.model->options());
  RUNNER_CHECK(s.tokenizer->vocab_size() <= s.model->options().text.vocab_size, ConfigError,
               fmt::format("the tokenizer has {} ids but the text encoder only {}", s.tokenizer->vocab_size(),
                           s.model->options().text.vocab_size));
  if (s.model->is_meru()) {
    // Pretraining follows model.curv_learn; unlearning freezes the curvature unless asked.
    const bool learn = unlearning && !scratch ? cfg.unlearn.curv_learn : cfg.model.curv_learn;
    s.model->curv.set_requires_grad(learn);
    if (unlearning && !scratch && cfg.unlearn.freeze_alphas) {
      s.model->visual_alpha.set_requires_grad(false);
      s.model->textual_alpha.set_requires_grad(false);
    }
  }

  if (unlearning) {
    make_forget_sets(s);
    if (s.method->needs().reference) {
      s.reference = models::load_model(cfg.unlearn.original, nullptr, nullptr);
      s.reference->to(s.device);
      s.reference->eval();
      for (auto& p : s.reference->parameters()) p.set_requires_grad(false);
    }
  }

  // Optimization settings: the pretraining recipe for train and retrain, unlearn.* otherwise.
  const bool recipe = !unlearning || scratch;
  s.steps = recipe ? cfg.train.steps : cfg.unlearn.steps;
  s.lr = recipe ? cfg.train.lr : cfg.unlearn.lr;
  s.warmup = recipe ? cfg.train.warmup_steps : cfg.unlearn.warmup_steps;
  s.adamw = adamw_options(cfg.train, recipe ? cfg.train.weight_decay : cfg.unlearn.weight_decay);

  s.ctx.comm = s.comm;
  s.ctx.geometry = s.model->geometry();
  s.ctx.entail_weight = cfg.train.entail_weight;
  s.ctx.beta_eff = unlearning ? unlearn::effective_beta(cfg.unlearn, s.forget_size, s.retain_size) : 0.0;

  const int64_t pool = s.subset.empty() && !(unlearning && s.method->rows() != unlearn::Rows::kAll)
                           ? s.file->info().splits.at("train").size
                           : static_cast<int64_t>(s.subset.size());
  if (s.method->trains() && pool / comm->world_size() < cfg.data.batch_size) {
    throw ConfigError(fmt::format("data.batch_size: {} rows per rank x {} ranks exceed the {} rows the {} method "
                                  "draws from; lower data.batch_size",
                                  cfg.data.batch_size, comm->world_size(), pool, s.method->name()));
  }
  return s;
}

}  // namespace runner::train
