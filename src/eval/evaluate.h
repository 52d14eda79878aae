// The evaluation of a model (SPEC §7, docs/evaluation.md): zero-shot classification, retrieval,
// the alignment membership audit, hierarchy and representation metrics, distributed over the
// ranks of the job with the same numbers at any rank count.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "dist/comm.h"
#include "models/contrastive_model.h"
#include "models/tokenizer.h"

namespace runner::eval {

struct Request {
  config::Config cfg;               // data.file, unlearn.forget (+ forget_descendants), eval.*
  dist::CommPtr comm;
  models::ContrastiveModel model{nullptr};  // the model evaluated (left in eval mode)
  std::shared_ptr<const models::Tokenizer> tokenizer;
  int64_t context_length = 77;
  std::shared_ptr<data::DatasetFile> file;
  std::string original;             // checkpoint of the model before unlearning: before -> after, CKA ("" = none)
  std::string out_dir;              // side files go to out_dir/eval/ (rank 0)
};

// Runs every metric. Each rank encodes its share of fixed row chunks; the embeddings are gathered
// so every rank holds the same values and computes the same metrics. Rank 0 writes
// eval/samples.csv, audit.csv, classes.csv, embeddings.csv and metrics.json (atomically).
// Returns the metrics as JSON text (the same on every rank). Progress goes to the log.
std::string evaluate(const Request& r);

// The tokenizer a hac checkpoint's extras carry, or CLIP's BPE from cfg.data.vocab_file for a
// released checkpoint (ConfigError naming data.vocab_file when neither exists).
std::shared_ptr<const models::Tokenizer> tokenizer_for(const std::map<std::string, std::string>& extras,
                                                       const config::Config& cfg, const std::string& source);

}  // namespace runner::eval
