// CLIP and MERU models (arXiv 2103.00020, 2304.09172) and name-based state-dict loading.
#include "models/contrastive_model.h"

#include <ATen/autocast_mode.h>

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "geometry/lorentz.h"

namespace runner::models {

ModelOptions model_preset(const std::string& name, geometry::Geometry kind) {
  ModelOptions o;
  o.kind = kind;
  if (name == "vit_s") {
    o.vision.width = 384, o.vision.depth = 12, o.vision.heads = 12;
  } else if (name == "vit_b") {
    o.vision.width = 768, o.vision.depth = 12, o.vision.heads = 12;
  } else if (name == "vit_l") {
    o.vision.width = 1024, o.vision.depth = 24, o.vision.heads = 16;
  } else if (name == "tiny") {
    // Fashion-MNIST-sized (the embedded study): 28x28 grey images in 4x4 patches of 7, width 64,
    // depth 3, and a text encoder of the same size over a small (word) vocabulary.
    o.vision = VitOptions{/*image_size=*/28, /*patch_size=*/7, /*channels=*/1, /*width=*/64,
                          /*depth=*/3, /*heads=*/4, /*mlp_ratio=*/4, /*ln_eps=*/1e-5};
    o.text = TextOptions{/*vocab_size=*/512, /*context_length=*/32, /*width=*/64, /*depth=*/3,
                         /*heads=*/4, /*ln_eps=*/1e-5};
    o.embed_dim = 64;
    o.pixel_mean = {0.286};
    o.pixel_std = {0.353};
  } else {
    throw ConfigError(fmt::format("model.preset: unknown '{}' (vit_s, vit_b, vit_l, tiny)", name));
  }
  return o;
}

void validate(const ModelOptions& o) {
  validate(o.vision);
  validate(o.text);
  if (o.embed_dim <= 0) throw ConfigError(fmt::format("model.embed_dim {} must be positive", o.embed_dim));
  if (!(o.curv_init > 0) || !std::isfinite(o.curv_init)) {
    throw ConfigError(fmt::format("model.curv_init {} must be a positive curvature", o.curv_init));
  }
  if (static_cast<int64_t>(o.pixel_mean.size()) != o.vision.channels ||
      static_cast<int64_t>(o.pixel_std.size()) != o.vision.channels) {
    throw ConfigError(fmt::format("model.pixel_mean/pixel_std need {} values (one per channel), got {} and {}",
                                  o.vision.channels, o.pixel_mean.size(), o.pixel_std.size()));
  }
  for (double s : o.pixel_std) {
    if (!(s > 0)) throw ConfigError("model.pixel_std values must be positive");
  }
}

ContrastiveModelImpl::ContrastiveModelImpl(const ModelOptions& o) : o_(o) {
  validate(o);
  visual = register_module("visual", VisionTransformer(o.vision));
  textual = register_module("textual", TextTransformer(o.text));
  visual_proj = register_module("visual_proj",
                                torch::nn::Linear(torch::nn::LinearOptions(o.vision.width, o.embed_dim).bias(false)));
  textual_proj = register_module("textual_proj",
                                 torch::nn::Linear(torch::nn::LinearOptions(o.text.width, o.embed_dim).bias(false)));
  logit_scale = register_parameter("logit_scale", torch::tensor(std::log(1.0 / 0.07)));
  if (is_meru()) {
    curv = register_parameter("curv", torch::tensor(std::log(o.curv_init)), o.curv_learn);
    curv_min_ = std::log(o.curv_init / 10.0);
    curv_max_ = std::log(o.curv_init * 10.0);
    const double alpha = std::log(std::pow(static_cast<double>(o.embed_dim), -0.5));
    visual_alpha = register_parameter("visual_alpha", torch::tensor(alpha));
    textual_alpha = register_parameter("textual_alpha", torch::tensor(alpha));
  }
  const int64_t c = o.vision.channels;
  pixel_mean = register_buffer("pixel_mean", torch::tensor(o.pixel_mean, torch::kFloat).view({c, 1, 1}));
  pixel_std = register_buffer("pixel_std", torch::tensor(o.pixel_std, torch::kFloat).view({c, 1, 1}));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(visual_proj->weight, 0.0, std::pow(static_cast<double>(o.vision.width), -0.5));
  torch::nn::init::normal_(textual_proj->weight, 0.0, std::pow(static_cast<double>(o.text.width), -0.5));
}

void ContrastiveModelImpl::clamp_parameters() {
  torch::NoGradGuard no_grad;
  logit_scale.clamp_max_(std::log(100.0));
  if (is_meru()) {
    curv.clamp_(curv_min_, curv_max_);
    visual_alpha.clamp_max_(0.0);
    textual_alpha.clamp_max_(0.0);
  }
}

at::Tensor ContrastiveModelImpl::curvature() const {
  if (is_meru()) return curv.exp();
  return torch::ones({}, logit_scale.options().requires_grad(false));
}

at::Tensor ContrastiveModelImpl::similarity(const at::Tensor& a, const at::Tensor& b) const {
  return geometry::pairwise_score(o_.kind, a, b, is_meru() ? curvature() : at::Tensor());
}

// Projected features -> embeddings: CLIP normalizes; MERU lifts onto the hyperboloid, in
// float32 even when the encoders ran in lower precision.
namespace {

// Autocast off (CPU and CUDA) for the guard's life, the previous state restored after.
class NoAutocast {
 public:
  NoAutocast() : cpu_(at::autocast::is_cpu_enabled()), gpu_(at::autocast::is_enabled()) {
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_enabled(false);
  }
  ~NoAutocast() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
  }
  NoAutocast(const NoAutocast&) = delete;
  NoAutocast& operator=(const NoAutocast&) = delete;

 private:
  bool cpu_, gpu_;
};

}  // namespace

EncoderAutocast::EncoderAutocast(const c10::Device& device, bool enabled)
    : enabled_(enabled), cuda_(device.is_cuda()),
      was_on_(cuda_ ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()),
      was_dtype_(cuda_ ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype()) {
  if (!enabled_) return;
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
}

EncoderAutocast::~EncoderAutocast() {
  if (!enabled_) return;
  if (cuda_) {
    at::autocast::set_enabled(was_on_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_on_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
  at::autocast::clear_cache();
}

at::Tensor ContrastiveModelImpl::lift(const at::Tensor& projected, bool image) const {
  NoAutocast fp32;  // the geometry in float32, whatever the encoders ran in
  const at::Tensor x = projected.to(torch::kFloat);
  if (!is_meru()) return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  const at::Tensor& alpha = image ? visual_alpha : textual_alpha;
  at::Tensor scaled = x * alpha.exp();
  return geometry::exp_map0(scaled, curvature());
}

at::Tensor ContrastiveModelImpl::encode_image(const at::Tensor& pixels, bool project) {
  clamp_parameters();
  at::Tensor x = (pixels - pixel_mean) / pixel_std;
  at::Tensor f = visual(x);
  if (!project) return f;
  return lift(visual_proj(f), /*image=*/true);
}

at::Tensor ContrastiveModelImpl::encode_text(const at::Tensor& tokens, bool project) {
  clamp_parameters();
  at::Tensor f = TextTransformerImpl::pool(textual(tokens), tokens);
  if (!project) return f;
  return lift(textual_proj(f), /*image=*/false);
}

ModelOptions infer_model_options(const NamedTensors& state, const std::string& source) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  auto get = [&](const std::string& name, int64_t dims) -> const at::Tensor& {
    auto it = by_name.find(name);
    if (it == by_name.end() || !it->second.defined() || it->second.dim() != dims) {
      throw IoError(fmt::format("{}: no {}-d tensor '{}', so this is not a CLIP/MERU state dict "
                                "under MERU's names", source, dims, name));
    }
    return it->second;
  };
  auto count = [&](const std::string& prefix, const std::string& suffix) {
    int64_t n = 0;
    while (by_name.count(fmt::format("{}{}{}", prefix, n, suffix))) ++n;
    return n;
  };
  auto heads_for = [](int64_t width) { return width == 384 ? int64_t{12} : std::max<int64_t>(1, width / 64); };
  ModelOptions o;
  o.kind = by_name.count("curv") ? geometry::Geometry::kLorentz : geometry::Geometry::kEuclidean;
  const at::Tensor& patch = get("visual.patch_embed.proj.weight", 4);  // [W, C, p, p]
  o.vision.width = patch.size(0);
  o.vision.channels = patch.size(1);
  o.vision.patch_size = patch.size(2);
  const int64_t tokens = get("visual.pos_embed", 3).size(1);
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tokens - 1))));
  if (grid * grid + 1 != tokens) {
    throw IoError(fmt::format("{}: visual.pos_embed has {} positions, not 1 + a square grid", source, tokens));
  }
  o.vision.image_size = grid * o.vision.patch_size;
  o.vision.depth = count("visual.blocks.", ".norm1.weight");
  o.vision.heads = heads_for(o.vision.width);
  const at::Tensor& tok = get("textual.token_embed.weight", 2);
  o.text.vocab_size = tok.size(0);
  o.text.width = tok.size(1);
  o.text.context_length = get("textual.posit_embed", 2).size(0);
  o.text.depth = count("textual.resblocks.", ".ln_1.weight");
  o.text.heads = std::max<int64_t>(1, o.text.width / 64);
  o.embed_dim = get("visual_proj.weight", 2).size(0);
  auto stats = [&](const char* name) {
    at::Tensor t = get(name, 3).to(at::kDouble).flatten().contiguous();
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  };
  o.pixel_mean = stats("pixel_mean");
  o.pixel_std = stats("pixel_std");
  if (o.vision.depth == 0 || o.text.depth == 0) {
    throw IoError(fmt::format("{}: no visual.blocks.* or textual.resblocks.* layers", source));
  }
  return o;
}

NamedTensors named_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value());
  return out;
}

std::string LoadReport::summary() const {
  std::string s = fmt::format("{} tensors loaded", loaded);
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += fmt::format("; {} {}: {}", v.size(), what, fmt::join(v.begin(), v.begin() + std::min<size_t>(v.size(), 12), ", "));
    if (v.size() > 12) s += ", ...";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", mismatched);
  return s;
}

LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& state,
                           const std::string& source, bool allow_partial) {
  std::map<std::string, at::Tensor> own;
  for (auto& [name, t] : named_state(module)) own.emplace(name, t);
  LoadReport report;
  std::map<std::string, const at::Tensor*> given;
  for (const auto& [name, t] : state) {
    given.emplace(name, &t);
    auto it = own.find(name);
    if (it == own.end()) {
      report.unexpected.push_back(name);
    } else if (!t.defined() || t.sizes() != it->second.sizes()) {
      report.mismatched.push_back(fmt::format("{}: file {} vs model {}", name,
                                              t.defined() ? c10::str(t.sizes()) : "undefined",
                                              c10::str(it->second.sizes())));
    }
  }
  for (const auto& [name, t] : own) {
    if (!given.count(name)) report.missing.push_back(name);
  }
  if (!report.complete() && !allow_partial) {
    throw IoError(fmt::format("{}: the state dict does not fit the model ({}); check the model "
                              "kind and sizes, or load partially on purpose", source, report.summary()));
  }
  // A NaN or Inf weight would only show as NaN metrics (written as null) much later: refused
  // before anything is copied, so a refused load leaves the model as it was.
  for (const auto& [name, t] : state) {
    if (own.count(name) && t.defined() && t.is_floating_point() && !at::isfinite(t).all().item<bool>()) {
      throw IoError(fmt::format("{}: tensor {} holds {} non-finite value(s) (NaN or Inf): the weights are damaged",
                                source, name, (~at::isfinite(t)).sum().item<int64_t>()));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    auto it = own.find(name);
    if (it == own.end() || !t.defined() || t.sizes() != it->second.sizes()) continue;
    it->second.copy_(t.to(it->second.dtype()));
    ++report.loaded;
  }
  return report;
}

}  // namespace runner::models
