// Building a CLIP/MERU model from a checkpoint file: a released MERU/CLIP `.pth`, a bare state
// dict, or hac's own checkpoint, with the architecture read off the weights.
#pragma once

#include <map>
#include <string>

#include "models/contrastive_model.h"

namespace runner::models {

struct Pretrained {
  ContrastiveModel model{nullptr};
  ModelOptions options;
  LoadReport report;
};

// Reads `path` (load_checkpoint), infers the architecture (infer_model_options, with `heads`
// overrides when > 0), builds the model and loads every tensor by name. Without allow_partial a
// missing, unexpected or mis-shaped tensor is an IoError naming the file and the tensors.
Pretrained load_pretrained(const std::string& path, bool allow_partial = false,
                           int64_t vision_heads = 0, int64_t text_heads = 0);

// The ViT LayerNorm eps of hac checkpoints written before it was recorded (timm's value).
constexpr double kLegacyVisionLnEps = 1e-6;

// Model options recorded in hac checkpoints beside the weights: what the weights cannot tell
// (attention heads, c0 of the curvature clamp, the ViT's LayerNorm eps; pixel statistics are
// buffers already).
std::map<std::string, std::string> model_extras(const ModelOptions& o);

// Reads a model checkpoint (hac or released MERU/CLIP): architecture from the weights and the
// extras above (a hac file without vision_ln_eps runs with kLegacyVisionLnEps, with a warning), weights loaded by name (IoError naming the file otherwise). extras_out receives
// the checkpoint's extras (tokenizer, semantic_hash, ...), options_out the architecture.
ContrastiveModel load_model(const std::string& path, std::map<std::string, std::string>* extras_out = nullptr,
                            ModelOptions* options_out = nullptr);

}  // namespace runner::models
