// load_pretrained: checkpoint file -> architecture -> model with its weights.
#include "models/pretrained.h"

#include "models/checkpoint.h"

namespace runner::models {

Pretrained load_pretrained(const std::string& path, bool allow_partial, int64_t vision_heads,
                           int64_t text_heads) {
  Checkpoint ckpt = load_checkpoint(path);
  Pretrained out;
  out.options = infer_model_options(ckpt.model, path);
  if (vision_heads > 0) out.options.vision.heads = vision_heads;
  if (text_heads > 0) out.options.text.heads = text_heads;
  out.model = ContrastiveModel(out.options);
  out.report = load_state_dict(*out.model, ckpt.model, path, allow_partial);
  return out;
}

}  // namespace runner::models
