// Building a CLIP/MERU model from a checkpoint file: a released MERU/CLIP `.pth`, a bare state
// dict, or hac's own checkpoint, with the architecture read off the weights.
#pragma once

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

}  // namespace runner::models
