// What a training or unlearning run is made of once its config is resolved: dataset, tokenizer,
// model(s), method, forget/retain rows, partners and optimizer settings. Internal to src/train.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "comm/comm.h"
#include "models/checkpoint.h"
#include "models/contrastive_model.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "train/optim.h"
#include "unlearn/method.h"

namespace runner::train {

struct Session {
  config::Config cfg;
  // The world; with dist.device cuda, CUDA tensors' collectives go through NCCL (make_dispatch_comm).
  comm::CommPtr comm;
  // Where the model, the batches, the losses and the optimizer state live: the CPU, or the GPU of
  // this rank's local rank (modulo the visible devices). Encoders run under bfloat16 autocast on
  // a GPU (models::EncoderAutocast), the hyperbolic part in float32.
  at::Device device = at::kCPU;
  bool unlearning = false;
  std::string kind;  // "train" or "unlearn"

  std::shared_ptr<data::DatasetFile> file;
  std::shared_ptr<const models::Tokenizer> tokenizer;
  std::string tokenizer_text;  // WordTokenizer::to_text(), "" for CLIP's BPE
  int64_t context_length = 77;

  models::ContrastiveModel model{nullptr};
  models::ContrastiveModel reference{nullptr};  // the frozen original, when the method needs it
  std::unique_ptr<unlearn::Method> method;
  unlearn::Context ctx;

  // Rows of the train split the batches come from (empty = all), the forget set (ascending) and
  std::vector<int64_t> subset, forget_rows;
  // each forget row's partner row (rows not in the forget set map to -1) and the partners' captions.
  std::vector<int64_t> partner_of;
  std::unordered_map<int64_t, std::string> partner_captions;
  std::string partners_used;            // "other_concept", "same_concept" or "retain_caption" ("" = none)
  double partner_same_caption = 0.0;    // share of forget rows whose stand-in caption equals their own
  std::vector<std::string> forget_concepts;  // resolved names, descendants included
  int64_t forget_size = 0, retain_size = 0;
  // unlearn.forget_captions: train rows whose caption matches, and those of them outside the forget concepts.
  std::vector<int64_t> caption_rows;  // ascending
  int64_t caption_only_rows = 0;

  // Optimization.
  int64_t steps = 0, warmup = 0;
  double lr = 0.0;
  AdamWOptions adamw;
  uint64_t seed = 0;
};

// Builds everything and checks it before any training: dataset contract, image shape against the
// model, forget concept names, sizes of the row sets against the global batch. Every rank
// computes the same session (weights are seeded, then broadcast from rank 0).
// Throws ConfigError / IoError naming the key or file.
Session make_session(const config::Config& cfg, const comm::CommPtr& comm, bool unlearning);

}  // namespace runner::train
