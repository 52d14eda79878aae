// The evaluation of a model (docs/evaluation.md): zero-shot classification, retrieval,
// the alignment membership audit, hierarchy and representation metrics, distributed over the
// ranks of the job with the same numbers at any rank count.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "comm/comm.h"
#include "models/contrastive_model.h"
#include "models/tokenizer.h"

namespace runner::eval {

struct Request {
  config::Config cfg;               // data.file, unlearn.forget (+ forget_descendants), eval.*
  comm::CommPtr comm;
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

}  // namespace runner::eval
