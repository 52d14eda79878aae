// ViT image encoder and causal text transformer (as in MERU's code, facebookresearch/meru), with MERU's parameter names.
#include "models/encoders.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace runner::models {

namespace F = torch::nn::functional;

void validate(const VitOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("model.vision: " + what);
  };
  need(o.image_size > 0 && o.patch_size > 0 && o.image_size % o.patch_size == 0,
       fmt::format("image_size {} must be a positive multiple of patch_size {}", o.image_size, o.patch_size));
  need(o.channels == 1 || o.channels == 3, fmt::format("channels must be 1 or 3, not {}", o.channels));
  need(o.width > 0 && o.depth > 0 && o.heads > 0 && o.width % o.heads == 0,
       fmt::format("width {} must be a positive multiple of heads {} (depth {})", o.width, o.heads, o.depth));
  need(o.width % 4 == 0, fmt::format("width {} must be a multiple of 4 (2-D sin-cos position embedding)", o.width));
  need(o.mlp_ratio > 0, "mlp_ratio must be positive");
}

void validate(const TextOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("model.text: " + what);
  };
  need(o.vocab_size > 2, fmt::format("vocab_size {} is too small", o.vocab_size));
  need(o.context_length >= 2, fmt::format("context_length {} must be at least 2", o.context_length));
  need(o.width > 0 && o.depth > 0 && o.heads > 0 && o.width % o.heads == 0,
       fmt::format("width {} must be a positive multiple of heads {} (depth {})", o.width, o.heads, o.depth));
}

at::Tensor sincos_pos_embed_2d(int64_t grid, int64_t width) {
  const int64_t quarter = width / 4;
  at::Tensor omega = at::arange(quarter, at::kFloat) / static_cast<double>(quarter);
  omega = 1.0 / at::pow(10000.0, omega);
  at::Tensor t = at::arange(grid * grid, at::kLong);
  at::Tensor a = at::floor_divide(t, grid).to(at::kFloat).unsqueeze(1) * omega.unsqueeze(0);
  at::Tensor b = at::remainder(t, grid).to(at::kFloat).unsqueeze(1) * omega.unsqueeze(0);
  at::Tensor patches = at::cat({at::sin(a), at::cos(a), at::sin(b), at::cos(b)}, /*dim=*/1);
  return at::cat({at::zeros({1, width}, at::kFloat), patches}, /*dim=*/0).unsqueeze(0);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernels (flash / memory-efficient on GPU, a fused CPU kernel) where they exist.
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
#else
  // LibTorch 1.13 has no public fused attention on the CPU. This is the math path of
  // nn.MultiheadAttention, with the scale and the causal mask folded into one baddbmm.
  const int64_t b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor q3 = q.reshape({b * h, l, d}), k3 = k.reshape({b * h, l, d}), v3 = v.reshape({b * h, l, d});
  const at::Tensor bias = causal ? at::full({l, l}, -std::numeric_limits<double>::infinity(), q.options()).triu(1)
                                 : at::zeros({1, 1}, q.options());
  const at::Tensor scores = at::baddbmm(bias, q3, k3.transpose(1, 2), /*beta=*/causal ? 1.0 : 0.0, /*alpha=*/scale);
  return at::bmm(at::softmax(scores, -1), v3).view({b, h, l, d});
#endif
}

namespace {

// [B, L, 3W] stacked projections -> q, k, v each [B, H, L, Dh].
std::tuple<at::Tensor, at::Tensor, at::Tensor> split_heads(const at::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), l = qkv.size(1), w = qkv.size(2) / 3;
  at::Tensor x = qkv.view({b, l, 3, heads, w / heads}).permute({2, 0, 3, 1, 4});
  return {x[0], x[1], x[2]};
}

at::Tensor merge_heads(const at::Tensor& x) {  // [B, H, L, Dh] -> [B, L, H*Dh]
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace

VitAttentionImpl::VitAttentionImpl(int64_t width, int64_t heads_) : heads(heads_) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(width, 3 * width).bias(true)));
  proj = register_module("proj", torch::nn::Linear(width, width));
}

at::Tensor VitAttentionImpl::forward(const at::Tensor& x) {
  auto [q, k, v] = split_heads(qkv(x), heads);
  return proj(merge_heads(attention(q, k, v, /*causal=*/false)));
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, const std::string& in_name, const std::string& out_name) {
  fc_in = register_module(in_name, torch::nn::Linear(width, hidden));
  fc_out = register_module(out_name, torch::nn::Linear(hidden, width));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) { return fc_out(F::gelu(fc_in(x))); }

VitBlockImpl::VitBlockImpl(const VitOptions& o) {
  auto ln = torch::nn::LayerNormOptions({o.width}).eps(o.ln_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", VitAttention(o.width, o.heads));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", Mlp(o.width, o.width * o.mlp_ratio, "fc1", "fc2"));
}

at::Tensor VitBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = x + attn(norm1(x));
  return h + mlp(norm2(h));
}

VisionTransformerImpl::VisionTransformerImpl(const VitOptions& o) : o_(o) {
  validate(o);
  patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>("PatchEmbed"));
  proj = patch_embed->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels, o.width, o.patch_size).stride(o.patch_size)));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, o.width}));
  // Fixed, not learned (MERU sets requires_grad = False); kept in the state dict under its name.
  pos_embed = register_parameter("pos_embed", sincos_pos_embed_2d(o.grid(), o.width), /*requires_grad=*/false);
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) blocks->push_back(VitBlock(o));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width}).eps(o.ln_eps)));
  // timm-style init: N(0, 0.02) truncated at 2 sigma for linears, 1e-6 for the CLS token.
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(cls_token, 0.0, 1e-6);
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      torch::nn::init::normal_(lin->weight, 0.0, 0.02).clamp_(-0.04, 0.04);
      if (lin->bias.defined()) torch::nn::init::zeros_(lin->bias);
    }
  }
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(1) != o_.channels || pixels.size(2) != o_.image_size ||
      pixels.size(3) != o_.image_size) {
    throw ConfigError(fmt::format("image encoder expects [B, {}, {}, {}] pixels, got {}", o_.channels,
                                  o_.image_size, o_.image_size, c10::str(pixels.sizes())));
  }
  at::Tensor x = proj(pixels).flatten(2).transpose(1, 2);  // [B, N, W]
  x = at::cat({cls_token.expand({x.size(0), 1, o_.width}), x}, /*dim=*/1) + pos_embed;
  for (const auto& blk : *blocks) x = blk->as<VitBlock>()->forward(x);
  return norm(x).select(/*dim=*/1, /*index=*/0);
}

TextBlockImpl::TextBlockImpl(const TextOptions& o) : heads(o.heads) {
  attn = register_module("attn", std::make_shared<torch::nn::Module>("MultiheadAttention"));
  in_proj_weight = attn->register_parameter("in_proj_weight", torch::empty({3 * o.width, o.width}));
  in_proj_bias = attn->register_parameter("in_proj_bias", torch::zeros({3 * o.width}));
  out_proj = attn->register_module("out_proj", torch::nn::Linear(o.width, o.width));
  auto ln = torch::nn::LayerNormOptions({o.width}).eps(o.ln_eps);
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", Mlp(o.width, 4 * o.width, "c_fc", "c_proj"));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(ln));
}

at::Tensor TextBlockImpl::forward(const at::Tensor& x) {
  at::Tensor qkv = at::linear(ln_1(x), in_proj_weight, in_proj_bias);
  auto [q, k, v] = split_heads(qkv, heads);
  at::Tensor h = x + out_proj(merge_heads(attention(q, k, v, /*causal=*/true)));
  return h + mlp(ln_2(h));
}

TextTransformerImpl::TextTransformerImpl(const TextOptions& o) : o_(o) {
  validate(o);
  token_embed = register_module("token_embed", torch::nn::Embedding(o.vocab_size, o.width));
  posit_embed = register_parameter("posit_embed", torch::empty({o.context_length, o.width}));
  // True above the diagonal: position i may not attend to j > i. A buffer only because MERU's
  // state dict carries it; attention(causal=true) applies exactly this pattern.
  attn_mask = register_buffer("attn_mask",
                              torch::ones({o.context_length, o.context_length}, torch::kBool).triu(1));
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.depth; ++j) resblocks->push_back(TextBlock(o));
  ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width}).eps(o.ln_eps)));
  // MERU/CLIP init: embeddings N(0, 0.02) and N(0, 0.01); attention N(0, W^-0.5), output
  // projections scaled down by sqrt(2 * depth) so the residual stream keeps its variance.
  torch::NoGradGuard no_grad;
  const double w = static_cast<double>(o.width);
  const double attn_std = std::pow(w, -0.5);
  const double proj_std = attn_std * std::pow(2.0 * o.depth, -0.5);
  const double fc_std = std::pow(2.0 * w, -0.5);
  torch::nn::init::normal_(token_embed->weight, 0.0, 0.02);
  torch::nn::init::normal_(posit_embed, 0.0, 0.01);
  for (const auto& m : *resblocks) {
    auto* blk = m->as<TextBlock>();
    torch::nn::init::normal_(blk->in_proj_weight, 0.0, attn_std);
    torch::nn::init::normal_(blk->out_proj->weight, 0.0, proj_std);
    torch::nn::init::zeros_(blk->out_proj->bias);
    torch::nn::init::normal_(blk->mlp->fc_in->weight, 0.0, fc_std);
    torch::nn::init::normal_(blk->mlp->fc_out->weight, 0.0, proj_std);
  }
}

at::Tensor TextTransformerImpl::forward(const at::Tensor& tokens) {
  if (tokens.dim() != 2 || tokens.size(1) > o_.context_length || tokens.size(1) < 1) {
    throw ConfigError(fmt::format("text encoder expects [B, L <= {}] tokens, got {}", o_.context_length,
                                  c10::str(tokens.sizes())));
  }
  const int64_t l = tokens.size(1);
  at::Tensor x = token_embed(tokens) + posit_embed.narrow(0, 0, l);
  for (const auto& blk : *resblocks) x = blk->as<TextBlock>()->forward(x);
  return ln_final(x);
}

at::Tensor TextTransformerImpl::pool(const at::Tensor& hidden, const at::Tensor& tokens) {
  at::Tensor idx = tokens.argmax(/*dim=*/-1);
  return hidden.index({at::arange(hidden.size(0), idx.options()), idx});
}

}  // namespace runner::models
