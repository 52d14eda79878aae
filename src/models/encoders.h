// The image encoder (ViT, timm/MERU layout) and the causal text transformer (MERU layout),
// every size configurable, parameter names equal to MERU's so state dicts map by name.
#pragma once

#include <torch/torch.h>

namespace runner::models {

struct VitOptions {
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t channels = 3;
  int64_t width = 384;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_ratio = 4;
  // MERU builds its timm ViT with norm_layer=nn.LayerNorm, i.e. PyTorch's default eps 1e-5 (not
  // timm's own 1e-6); the released MERU/CLIP checkpoints were trained with it.
  double ln_eps = 1e-5;
  int64_t grid() const { return image_size / patch_size; }
};

struct TextOptions {
  int64_t vocab_size = 49408;
  int64_t context_length = 77;
  int64_t width = 512;
  int64_t depth = 12;
  int64_t heads = 8;
  double ln_eps = 1e-5;  // torch.nn.LayerNorm's default, as in MERU's text encoder
};

// Throws ConfigError naming the field when sizes do not fit together (width % heads, image
// size % patch, width % 4 for the 2-D sin-cos position embedding, ...).
void validate(const VitOptions& o);
void validate(const TextOptions& o);

// [1, 1 + grid^2, width] f32: zeros for the CLS position, then per patch t (a = t / grid,
// b = t % grid) [sin(a w), cos(a w), sin(b w), cos(b w)], w_d = 10000^(-d / (width/4)).
at::Tensor sincos_pos_embed_2d(int64_t grid, int64_t width);

// Multi-head scaled dot-product attention. q, k, v: [B, H, L, Dh]; causal masks j > i.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal);

class VitAttentionImpl : public torch::nn::Module {
 public:
  VitAttentionImpl(int64_t width, int64_t heads);
  at::Tensor forward(const at::Tensor& x);  // [B, L, W] -> [B, L, W]
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(VitAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t width, int64_t hidden, const std::string& in_name, const std::string& out_name);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc_in{nullptr}, fc_out{nullptr};
};
TORCH_MODULE(Mlp);

class VitBlockImpl : public torch::nn::Module {
 public:
  explicit VitBlockImpl(const VitOptions& o);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  VitAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(VitBlock);

// Pixels [B, C, H, W] (already normalized) -> CLS feature [B, width].
class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VitOptions& o);
  at::Tensor forward(const at::Tensor& pixels);
  const VitOptions& options() const { return o_; }
  std::shared_ptr<torch::nn::Module> patch_embed;  // holds "proj"
  torch::nn::Conv2d proj{nullptr};                  // stride = kernel = patch
  at::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  VitOptions o_;
};
TORCH_MODULE(VisionTransformer);

class TextBlockImpl : public torch::nn::Module {
 public:
  explicit TextBlockImpl(const TextOptions& o);
  at::Tensor forward(const at::Tensor& x);  // causal self-attention block
  // "attn" has nn.MultiheadAttention's layout: stacked [q; k; v] input projection
  // (in_proj_weight [3W, W], in_proj_bias [3W]), then out_proj.
  std::shared_ptr<torch::nn::Module> attn;
  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Mlp mlp{nullptr};
  int64_t heads;
};
TORCH_MODULE(TextBlock);

// Tokens [B, L] int64 (L <= context, right-padded with 0) -> hidden [B, L, width]; pooled
// features are the hidden state at each row's largest token id (the end token).
class TextTransformerImpl : public torch::nn::Module {
 public:
  explicit TextTransformerImpl(const TextOptions& o);
  at::Tensor forward(const at::Tensor& tokens);  // hidden states
  static at::Tensor pool(const at::Tensor& hidden, const at::Tensor& tokens);  // [B, width]
  const TextOptions& options() const { return o_; }
  torch::nn::Embedding token_embed{nullptr};
  at::Tensor posit_embed, attn_mask;
  torch::nn::ModuleList resblocks{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};

 private:
  TextOptions o_;
};
TORCH_MODULE(TextTransformer);

}  // namespace runner::models
