// Value checks of every section (validate() in config.h): enumerations, sizes, weights.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <initializer_list>
#include <string>

#include "config/validate.h"
#include "core/error.h"

namespace runner::config {
namespace {

std::string shown(int64_t v) { return fmt::format("{}", v); }
std::string shown(double v) { return format_double(v); }

[[noreturn]] void invalid(const std::string& key, const std::string& shown, const std::string& rule) {
  throw ConfigError(fmt::format("invalid value {} for {}: {}", shown, key, rule));
}

void check_one_of(const char* key, const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return;
  }
  invalid(key, fmt::format("'{}'", v), fmt::format("must be one of {}", fmt::join(allowed, ", ")));
}

void check_int(const char* key, int64_t v, int64_t min) {
  if (v < min) invalid(key, shown(v), fmt::format("must be >= {}", min));
}
// The comparisons are written so that NaN fails them.
void check_nonnegative(const char* key, double v) {
  if (!(v >= 0)) invalid(key, shown(v), "must be >= 0");
}
void check_positive(const char* key, double v) {
  if (!(v > 0)) invalid(key, shown(v), "must be > 0");
}
void check_unit(const char* key, double v) {
  if (!(v >= 0 && v < 1)) invalid(key, shown(v), "must be in [0, 1)");
}

}  // namespace

void validate_values(const Config& c) {
  const DataConfig& d = c.data;
  check_int("data.batch_size", d.batch_size, 1);
  check_int("data.prefetch", d.prefetch, 0);
  check_one_of("data.tail", d.tail, {"drop", "pad"});
  check_one_of("data.tokenizer", d.tokenizer, {"word", "clip_bpe"});
  if (d.tokenizer == "clip_bpe" && d.vocab_file.empty()) {
    invalid("data.vocab_file", "\"\"", "data.tokenizer clip_bpe needs the BPE vocabulary file "
            "(bpe_simple_vocab_16e6.txt.gz)");
  }
  check_int("data.word_min_count", d.word_min_count, 1);
  if (!(d.val_fraction >= 0.0 && d.val_fraction < 1.0)) {
    invalid("data.val_fraction", fmt::format("{}", d.val_fraction), "must be in [0, 1)");
  }
  check_int("data.val_seed", d.val_seed, 0);
  check_one_of("data.augment", d.augment, {"none", "random_resized_crop"});
  check_int("data.decode_threads", d.decode_threads, 0);

  const ModelConfig& m = c.model;
  check_one_of("model.kind", m.kind, {"clip", "meru"});
  check_one_of("model.preset", m.preset, {"tiny", "vit_s", "vit_b", "vit_l"});
  check_positive("model.curv_init", m.curv_init);
  check_int("model.embed_dim", m.embed_dim, 0);
  check_positive("model.vision_ln_eps", m.vision_ln_eps);

  const TrainConfig& t = c.train;
  check_int("train.steps", t.steps, 1);
  check_positive("train.lr", t.lr);
  check_nonnegative("train.weight_decay", t.weight_decay);
  check_unit("train.beta1", t.beta1);
  check_unit("train.beta2", t.beta2);
  check_positive("train.eps", t.eps);
  check_int("train.warmup_steps", t.warmup_steps, 0);
  check_nonnegative("train.entail_weight", t.entail_weight);
  check_int("train.checkpoint_every", t.checkpoint_every, 0);
  check_int("train.keep_checkpoints", t.keep_checkpoints, 1);
  check_int("train.log_every", t.log_every, 1);

  const UnlearnConfig& u = c.unlearn;
  // unlearn.method is checked against the method registry (unlearn::check_method), above config.
  for (const std::string& f : u.forget) {
    if (f.empty()) invalid("unlearn.forget", fmt::format("[{}]", fmt::join(u.forget, ", ")), "concept names must not be empty");
  }
  for (const std::string& k : u.forget_captions) {
    if (k.find_first_not_of(" \t") == std::string::npos) {
      invalid("unlearn.forget_captions", fmt::format("[{}]", fmt::join(u.forget_captions, ", ")),
              "keywords must not be empty");
    }
  }
  check_int("unlearn.steps", u.steps, 0);
  check_positive("unlearn.lr", u.lr);
  check_nonnegative("unlearn.weight_decay", u.weight_decay);
  check_int("unlearn.warmup_steps", u.warmup_steps, 0);
  check_nonnegative("unlearn.alpha", u.alpha);
  check_one_of("unlearn.partners", u.partners, {"other_concept", "same_concept", "retain_caption"});
  check_nonnegative("unlearn.beta", u.beta);
  check_one_of("unlearn.pos_mode", u.pos_mode, {"neg_dist", "hinge", "hinge_ref", "angle", "rescaled"});
  check_nonnegative("unlearn.pos_margin", u.pos_margin);
  check_nonnegative("unlearn.pos_margin_ratio", u.pos_margin_ratio);
  check_one_of("unlearn.entcal_aperture", u.entcal_aperture, {"current", "original"});
  check_nonnegative("unlearn.entcal_weight", u.entcal_weight);
  check_nonnegative("unlearn.entcal_margin", u.entcal_margin);
  check_nonnegative("unlearn.norm_weight", u.norm_weight);
  check_one_of("unlearn.norm_mode", u.norm_mode, {"origin", "keep", "l1", "grow", "anchor_retain"});
  check_nonnegative("unlearn.l1_weight", u.l1_weight);

  const EvalConfig& e = c.eval;
  check_one_of("eval.split", e.split, {"train", "val", "test"});
  if (e.split == "val" && c.data.val_fraction <= 0.0) {
    invalid("eval.split", "val", "the validation split needs data.val_fraction > 0");
  }
  check_int("eval.max_rows", e.max_rows, 0);
  if (e.templates.empty()) invalid("eval.templates", "[]", "give at least one prompt template");
  for (const std::string& item : e.display_names) {
    const size_t eq = item.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == item.size()) {
      invalid("eval.display_names", fmt::format("'{}'", item), "each item is concept=display name, e.g. dogpictures=dog");
    }
  }
  for (const std::string& tmpl : e.templates) {
    if (tmpl.find("{}") == std::string::npos) invalid("eval.templates", fmt::format("'{}'", tmpl), "a template needs {}");
  }
  check_int("eval.batch_size", e.batch_size, 1);
  check_int("eval.audit_rows", e.audit_rows, 1);
  check_int("eval.knn_k", e.knn_k, 1);
  check_int("eval.knn_bank_rows", e.knn_bank_rows, 1);
  check_int("eval.cka_rows", e.cka_rows, 2);
  check_int("eval.embedding_rows", e.embedding_rows, 0);
  check_int("eval.seed", e.seed, 0);

  check_int("dist.threads", c.dist.threads, 0);
  check_one_of("dist.device", c.dist.device, {"cpu", "cuda"});
}

bool build_has_cuda() {
#ifdef RUNNER_TORCH_CUDA
  return true;
#else
  return false;
#endif
}

void check_device_supported(const Config& c) {
  if (c.dist.device != "cuda" || build_has_cuda()) return;
  throw ConfigError(
      "dist.device: 'cuda' needs a CUDA build of hac, and this one was built with a CPU-only LibTorch; on a "
      "GPU node, build one with launch/gpu_bootstrap.sh (docs/cluster.md, \"A CUDA build\"), or set "
      "dist.device=cpu");
}

}  // namespace runner::config
