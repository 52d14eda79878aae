// load_pretrained: checkpoint file -> architecture -> model with its weights.
#include "models/pretrained.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
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

std::map<std::string, std::string> model_extras(const ModelOptions& o) {
  return {{"vision_heads", std::to_string(o.vision.heads)},
          {"text_heads", std::to_string(o.text.heads)},
          {"curv_init", fmt::format("{}", o.curv_init)},
          {"vision_ln_eps", fmt::format("{}", o.vision.ln_eps)}};
}

ContrastiveModel load_model(const std::string& path, std::map<std::string, std::string>* extras_out,
                                    ModelOptions* options_out) {
  Checkpoint ckpt = load_checkpoint(path);
  ModelOptions o = infer_model_options(ckpt.model, path);
  auto get = [&](const char* key) -> const std::string* {
    auto it = ckpt.extras.find(key);
    return it == ckpt.extras.end() ? nullptr : &it->second;
  };
  try {
    if (const auto* v = get("vision_heads")) o.vision.heads = std::stoll(*v);
    if (const auto* v = get("text_heads")) o.text.heads = std::stoll(*v);
    if (const auto* v = get("curv_init")) o.curv_init = std::stod(*v);
    if (const auto* v = get("vision_ln_eps")) {
      o.vision.ln_eps = std::stod(*v);
    } else if (!ckpt.config_yaml.empty()) {
      // A hac checkpoint from before the eps was recorded: its ViT was built and trained with
      // timm's 1e-6, so it is run with that (released MERU/CLIP files keep MERU's 1e-5).
      o.vision.ln_eps = kLegacyVisionLnEps;
      core::log_warn("{}: written by an older hac (no vision_ln_eps recorded): its ViT runs with LayerNorm eps "
                     "{} as trained; models built now use MERU's 1e-5",
                     path, kLegacyVisionLnEps);
    }
  } catch (const std::exception&) {
    throw IoError(fmt::format("{}: malformed model extras (vision_heads, text_heads, curv_init, vision_ln_eps)",
                              path));
  }
  ContrastiveModel model(o);
  load_state_dict(*model, ckpt.model, path);
  if (extras_out) *extras_out = ckpt.extras;
  if (options_out) *options_out = o;
  return model;
}

}  // namespace runner::models
