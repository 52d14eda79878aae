// CLIP (Euclidean) and MERU (Lorentz) image-text models over the shared encoders, with MERU's
// parameter and buffer names, and loading of a state dict by name.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "geometry/pair.h"
#include "models/encoders.h"

namespace runner::models {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct ModelOptions {
  geometry::Geometry kind = geometry::Geometry::kLorentz;  // CLIP: kEuclidean; MERU: kLorentz
  VitOptions vision;
  TextOptions text;
  int64_t embed_dim = 512;
  // MERU: curvature c0 (curv stores log c, clamped to [log(c0/10), log(10 c0)]), learnable?
  double curv_init = 1.0;
  bool curv_learn = true;
  // Pixels in [0, 1] are normalized inside the model with these (ImageNet's, as MERU).
  std::vector<double> pixel_mean = {0.485, 0.456, 0.406};
  std::vector<double> pixel_std = {0.229, 0.224, 0.225};
};

// MERU's released sizes: "vit_s" (W384, 12 layers, 12 heads), "vit_b" (768, 12, 12), "vit_l"
// (1024, 24, 16), patch 16 at 224, with the L12_W512 text encoder and embed_dim 512.
ModelOptions model_preset(const std::string& name, geometry::Geometry kind);
void validate(const ModelOptions& o);  // ConfigError naming the field

// Mixed precision for the encoders: while alive, autocast to bfloat16 is on for `device`'s type
// (CUDA, or CPU), unless `enabled` is false. lift() (CLIP's normalization, MERU's exp(alpha)
// scaling and exp_map0) always runs in float32 with autocast off, so the hyperbolic part never
// sees bfloat16. Restores the previous autocast state (and clears autocast's cast cache) on exit.
class EncoderAutocast {
 public:
  EncoderAutocast(const c10::Device& device, bool enabled);
  ~EncoderAutocast();
  EncoderAutocast(const EncoderAutocast&) = delete;
  EncoderAutocast& operator=(const EncoderAutocast&) = delete;

 private:
  bool enabled_, cuda_, was_on_;
  at::ScalarType was_dtype_;
};

class ContrastiveModelImpl : public torch::nn::Module {
 public:
  explicit ContrastiveModelImpl(const ModelOptions& o);

  // pixels [B, C, H, W] float in [0, 1]. project=false: the encoder's CLS feature [B, W_img].
  // project=true: CLIP -> L2-normalized [B, E]; MERU -> exp_map0(exp(alpha) * proj(f)) [B, E],
  // computed in float32. Applies the in-place clamps first (as MERU's forward does).
  at::Tensor encode_image(const at::Tensor& pixels, bool project = true);
  // tokens [B, L] int64 -> pooled [B, W_txt] (project=false) or embeddings as above.
  at::Tensor encode_text(const at::Tensor& tokens, bool project = true);
  // Projected features [B, E] (visual_proj / textual_proj outputs) -> embeddings, as the project
  // step of encode_*: CLIP L2-normalizes; MERU scales by exp(alpha) of the modality and applies
  // exp_map0 in float32. Zero-shot classifiers average projected prompt features first.
  at::Tensor lift(const at::Tensor& projected, bool image) const;
  // Clamps, in place and without grad: logit_scale <= log(100); MERU: curv to its range,
  // alphas <= 0.
  void clamp_parameters();
  // The curvature c = exp(curv) as a 0-dim tensor (differentiable when learnable); CLIP: 1.
  at::Tensor curvature() const;
  // The geometry's similarity [B1, B2] between embeddings (CLIP: dot, MERU: -distance).
  at::Tensor similarity(const at::Tensor& a, const at::Tensor& b) const;

  const ModelOptions& options() const { return o_; }
  geometry::Geometry geometry() const { return o_.kind; }
  bool is_meru() const { return o_.kind == geometry::Geometry::kLorentz; }

  VisionTransformer visual{nullptr};
  TextTransformer textual{nullptr};
  torch::nn::Linear visual_proj{nullptr}, textual_proj{nullptr};
  at::Tensor logit_scale, curv, visual_alpha, textual_alpha, pixel_mean, pixel_std;

 private:
  ModelOptions o_;
  double curv_min_ = 0.0, curv_max_ = 0.0;
};
TORCH_MODULE(ContrastiveModel);

// The model a state dict under MERU's names implies: CLIP or MERU (MERU has `curv`), encoder
// widths, depths, patch and image size, channels, vocabulary, context, embed dim and pixel
// statistics. Attention heads are not recorded in weights: width / 64, except width 384 -> 12
// (MERU's ViT-S is the MoCo-v3 variant with 12 heads). curv_init stays 1.0 (the released models'
// c0, which sets the clamp range); the learned value comes with the weights. Throws IoError
// naming `source` and the tensor when a required one is absent or malformed.
ModelOptions infer_model_options(const NamedTensors& state, const std::string& source);

// Every parameter and buffer of `module`, by dotted name, in registration order.
NamedTensors named_state(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the state dict
  std::vector<std::string> unexpected;  // in the state dict, not in the model
  std::vector<std::string> mismatched;  // "name: file [a, b] vs model [c, d]"
  int64_t loaded = 0;
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;
};

// Copies tensors into `module` by name (converting dtype). Unless allow_partial, any missing,
// unexpected or mis-shaped tensor throws IoError listing them all (naming `source`) and changes
// nothing; with allow_partial the matching tensors load and the report says what did not.
LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& state,
                           const std::string& source, bool allow_partial = false);

}  // namespace runner::models
