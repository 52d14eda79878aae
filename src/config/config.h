// Typed run configuration (docs/config.md): the sections data, model, train, unlearn, eval, dist
// and output; YAML in and out with yaml-cpp; `--set section.key=value` overrides; validation. Keys
// equal the struct field names; unknown keys are errors. No torch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::config {

struct DataConfig {
  std::string file;              // HDF5 image-text dataset (docs/data-format.md)
  int64_t batch_size = 128;      // rows per rank and step
  int64_t prefetch = 4;          // batches read ahead by the loader thread (0 = inline)
  std::string tail = "drop";     // drop | pad: the rows that do not split evenly over ranks
  std::string tokenizer = "word";  // word (built from the train captions) | clip_bpe
  std::string vocab_file;        // clip_bpe: bpe_simple_vocab_16e6.txt.gz
  int64_t word_min_count = 1;    // word: a word needs this many occurrences
  // Validation split carved from train when the file is opened (stratified per concept, seeded):
  // training never sees it; eval.split val evaluates on it (selection), test stays for reporting.
  double val_fraction = 0.0;     // share of each concept's train rows held out (0 = no validation split)
  int64_t val_seed = 0;          // which rows
  // Training batches only (evaluation always resizes and center-crops): none | random_resized_crop
  // (MERU's: a crop of 50-100% of the area, aspect 3/4-4/3, resized to the model's image size).
  std::string augment = "none";
  int64_t decode_threads = 0;    // threads per rank that decode JPEG rows / augment (0 = cores / local ranks)
};

struct ModelConfig {
  std::string kind = "meru";     // clip | meru
  std::string preset = "tiny";   // tiny | vit_s | vit_b | vit_l (models::model_preset)
  std::string init;              // "" = random weights; else a checkpoint (released MERU/CLIP .pth or hac)
  double curv_init = 1.0;        // MERU: initial curvature c0 (clamped to [c0/10, 10 c0])
  bool curv_learn = true;        // MERU: curvature learnable during pretraining
  int64_t embed_dim = 0;         // 0 = the preset's
  // LayerNorm eps of the ViT built from the preset (MERU's: PyTorch's default). Loaded files keep
  // theirs: hac records it in its checkpoints; released MERU/CLIP files were trained with 1e-5.
  double vision_ln_eps = 1e-5;
};

struct TrainConfig {
  int64_t steps = 1000;          // optimizer steps
  double lr = 5e-4;              // peak learning rate (AdamW)
  double weight_decay = 0.2;     // not applied to logit_scale, curv, alphas, biases, norms
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-8;
  int64_t warmup_steps = 100;    // linear warmup, then cosine decay to 0
  double entail_weight = 0.2;    // MERU: weight of the entailment loss
  int64_t seed = 0;              // weights, sampler, partners
  int64_t checkpoint_every = 0;  // steps between checkpoints; 0 = only at the end
  int64_t keep_checkpoints = 2;  // newest checkpoints kept in output.dir/checkpoints
  int64_t log_every = 10;        // steps between progress lines on rank 0
};

struct UnlearnConfig {
  std::string method = "hac";    // a name of unlearn/registry.h (checked there, not here)
  std::string original;          // checkpoint of the model to unlearn from
  std::vector<std::string> forget;  // concept names (one or several)
  // Caption keywords: train rows whose caption contains one of them (case-insensitive, whole words
  // or phrases) are forget rows too, whatever their concept (data::caption_matches).
  std::vector<std::string> forget_captions;
  bool forget_descendants = true;   // forgetting a parent forgets its children
  int64_t steps = 100;
  double lr = 1e-5;
  double weight_decay = 0.0;
  int64_t warmup_steps = 0;
  bool curv_learn = false;       // MERU: curvature frozen at the original's value by default
  // AC / HAC negative calibration: forget rows get a stand-in caption, weighted alpha.
  double alpha = 1.0;
  // Where the stand-in caption comes from: other_concept (a forget row of another concept; with a
  // single forget concept, a retain row), same_concept (any other forget row, as AC draws it) or
  // retain_caption (a random retain row).
  std::string partners = "other_concept";
  // Positive calibration weight beta; beta_eff = beta |D_F| / (|D_R| + |D_F|) when beta_scaled.
  double beta = 1.0;
  bool beta_scaled = true;
  // The positive term's form (docs/training.md): neg_dist (CLIP cosine, MERU -d_c: unbounded on MERU),
  // hinge (max(0, pos_margin - d)), hinge_ref (max(0, pos_margin_ratio * d_original - d)), angle
  // (minus the angle at the origin: radius-invariant), rescaled (MERU: -d_c after rescaling both
  // embeddings to the original's distance to the origin). d: MERU d_c, CLIP the angle on the sphere.
  std::string pos_mode = "neg_dist";
  double pos_margin = 1.0;
  double pos_margin_ratio = 1.5;
  // HAC entailment calibration: forget images out of their caption's cone (+ margin).
  bool entcal = true;
  double entcal_weight = 0.2;
  double entcal_margin = 0.0;
  bool entcal_retain = true;     // plus MERU's entailment loss on retain rows
  bool entcal_partner = false;   // plus: forget images into their partner caption's cone
  std::string entcal_aperture = "current";  // current | original: the cone's aperture from the original's caption
  // HAC norm regularization on the change of distances to the origin.
  bool norm = true;
  double norm_weight = 0.05;
  // origin | keep (quadratic) | l1 | grow (hinge on growth) | anchor_retain (quadratic, retain rows)
  std::string norm_mode = "keep";
  bool norm_retain = false;      // keep/l1/grow: also on retain rows (their own mean, added)
  bool norm_scaled = false;      // the norm weight is norm_weight * beta_eff (the push's scale)
  bool freeze_alphas = false;    // MERU: visual_alpha and textual_alpha frozen during unlearning
  double l1_weight = 1e-5;       // l1: weight of the L1 penalty on the parameters
};

struct EvalConfig {
  bool enabled = true;           // evaluate at the end of `hac train` and `hac unlearn`
  std::string split = "test";    // train | val | test: zero-shot, retrieval, hierarchy and k-NN queries come from this split
  int64_t max_rows = 0;          // rows of that split (seeded sample); 0 = all
  // Zero-shot prompts: "{}" is replaced by the class (concept) name; features averaged per class.
  std::vector<std::string> templates = {"a photo of a {}.", "a black and white photo of a {}.",
                                        "a small picture of a {}.", "{}"};
  // Names the prompts use instead of the concept names: "concept=display name" items, over the
  // dataset's own /concept_display_names (data::prompt_names).
  std::vector<std::string> display_names;
  int64_t batch_size = 256;      // rows per encoder call (fixed chunks: the same numbers at any rank count)
  int64_t audit_rows = 2000;     // membership audit: at most this many member, non-member and forget pairs
  std::string retrain;           // the `retrain` reference's model.pt: its audit too, and the gap to it
  int64_t knn_k = 10;            // k-NN on frozen image features
  int64_t knn_bank_rows = 5000;  // train rows forming the k-NN bank
  int64_t cka_rows = 1000;       // rows of the fixed sample for linear CKA against the original
  int64_t embedding_rows = 500;  // rows whose embeddings are written for figures
  int64_t seed = 0;              // the samples above
};

struct DistConfig {
  int64_t threads = 0;           // torch threads per rank; 0 = cores / ranks on the host
  std::string device = "cpu";    // cpu | cuda (GPU local rank mod visible; needs a CUDA build)
};

struct OutputConfig {
  // Run directory: config.yaml, result.json, run.log, checkpoints/, model.pt. "" (the default)
  // means results/runs/<run id> (run_dir()), so hand-launched runs never share one.
  std::string dir;
  bool resume = true;            // resume from the newest checkpoint in dir/checkpoints
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  UnlearnConfig unlearn;
  EvalConfig eval;
  DistConfig dist;
  OutputConfig output;
};

// Parses YAML text; `source` names the file in messages. Every key must be a known field of its
// section (ConfigError "<source>: unknown key 'train.lr_max' (known: ...)"), every value must
// convert to the field's type (ConfigError naming the key, the value and the type). Missing keys
// keep their defaults. Then applies `overrides` ("section.key=value", the value parsed as YAML,
// so lists are "[a, b]"), with the same checks, naming the override. Then validate().
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// Reads `path` (IoError when unreadable) and parses it as above.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Every key of every section, in declaration order; reading the result back gives `c`.
std::string to_yaml(const Config& c);

// Value checks that do not need files: enumerations, positive sizes, probabilities, weights >= 0.
// ConfigError naming the key and the value.
void validate(const Config& c);

// Whether this build can run on CUDA devices (its LibTorch has CUDA; set at build time).
bool build_has_cuda();
// ConfigError when `c` asks for a device this build cannot use (dist.device: cuda in a CPU
// build), saying how to get a CUDA build. Called wherever a config is about to run (hac
// train/unlearn/eval, hac config, every point of a sweep), not when reading finished runs.
void check_device_supported(const Config& c);

// Markdown reference of every key: section, key, type, default, meaning (docs/config.md).
std::string reference_markdown();

// The run directory of `c`: output.dir, or "results/runs/<semantic_hash(c)>" when it is empty.
std::string run_dir(const Config& c);

// Stable hex digest (16 chars) of the semantic config: every key except output.*, eval.*
// (`hac eval` re-evaluates a finished run), train.log_every, data.prefetch and dist.threads. Equal configs give equal ids on any machine.
std::string semantic_hash(const Config& c);

}  // namespace runner::config
