// Encoders and CLIP/MERU models: the text encoder against the reference MERU code
// (meru_text_encoder.pt), parameter names, shapes, clamps, causality, position embedding, and
// name-based loading with its reports.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <ATen/autocast_mode.h>

#include <set>

#include "core/error.h"
#include "geometry/lorentz.h"
#include "models/contrastive_model.h"
#include "support/golden.h"

namespace runner::models {
namespace {

using runner::testing::close;
using runner::testing::Golden;

// Holds a text encoder under "textual", as in MERU, so the golden's names map directly.
struct TextHolder : torch::nn::Module {
  explicit TextHolder(const TextOptions& o) { textual = register_module("textual", TextTransformer(o)); }
  TextTransformer textual{nullptr};
};

TEST(TextEncoderGolden, ReproducesHiddenAndPooled) {
  Golden g("meru_text_encoder.pt");
  auto as_int = [&](const char* key) {
    c10::IValue v = g.value(key);
    return v.isInt() ? v.toInt() : v.toTensor().item<int64_t>();
  };
  TextOptions o;
  o.depth = as_int("arch_layers");
  o.width = as_int("arch_width");
  o.heads = as_int("arch_heads");
  o.vocab_size = g["textual.token_embed.weight"].size(0);
  o.context_length = g["textual.posit_embed"].size(0);
  EXPECT_EQ(o.vocab_size, 300);
  EXPECT_EQ(o.context_length, 16);
  TextHolder m(o);
  NamedTensors state;
  for (const auto& kv : g.dict()) {
    const std::string k = kv.key().toStringRef();
    if (k.rfind("textual.", 0) == 0) state.emplace_back(k, kv.value().toTensor());
  }
  LoadReport r = load_state_dict(m, state, "meru_text_encoder.pt");
  EXPECT_TRUE(r.complete()) << r.summary();
  m.eval();
  torch::NoGradGuard no_grad;
  at::Tensor tokens = g["tokens"];
  at::Tensor hidden = m.textual->forward(tokens);
  // Two pre-LN blocks in float32: LayerNorm and softmax round-off ~1e-6; 1e-5 relative with
  // 1e-5 absolute for near-zero activations.
  EXPECT_TRUE(close(hidden, g["hidden"], 1e-5, 1e-5));
  EXPECT_TRUE(close(TextTransformerImpl::pool(hidden, tokens), g["pooled"], 1e-5, 1e-5));
}

TEST(TextEncoder, IsCausal) {
  TextOptions o{/*vocab=*/50, /*context=*/8, /*width=*/16, /*depth=*/2, /*heads=*/2, /*eps=*/1e-5};
  TextTransformer t(o);
  torch::NoGradGuard no_grad;
  at::Tensor a = torch::randint(1, 48, {2, 8}, torch::kLong);
  at::Tensor b = a.clone();
  b.narrow(1, 5, 3).fill_(7);  // change only positions 5..7
  at::Tensor ha = t->forward(a), hb = t->forward(b);
  EXPECT_TRUE(ha.narrow(1, 0, 5).allclose(hb.narrow(1, 0, 5), 0, 0)) << "earlier positions saw later tokens";
  EXPECT_FALSE(ha.narrow(1, 5, 3).allclose(hb.narrow(1, 5, 3)));
  EXPECT_THROW(t->forward(torch::zeros({1, 9}, torch::kLong)), ConfigError);
}

TEST(Vit, SinCosPositionEmbedding) {
  at::Tensor pe = sincos_pos_embed_2d(/*grid=*/3, /*width=*/8);
  ASSERT_EQ(pe.sizes(), (std::vector<int64_t>{1, 10, 8}));
  EXPECT_TRUE(pe[0][0].eq(0).all().item<bool>()) << "CLS position must be zeros";
  // Patch t = 5: a = 1, b = 2; omega = [1, 10000^-0.5] for width/4 = 2.
  const double w1 = std::pow(10000.0, -0.5);
  std::vector<double> expect = {std::sin(1.0), std::sin(w1), std::cos(1.0), std::cos(w1),
                                std::sin(2.0), std::sin(2 * w1), std::cos(2.0), std::cos(2 * w1)};
  for (int d = 0; d < 8; ++d) EXPECT_NEAR(pe[0][6][d].item<double>(), expect[d], 1e-6) << d;
}

TEST(Vit, ShapesForGreyAndColourImages) {
  for (int64_t c : {1, 3}) {
    VitOptions o{/*image=*/16, /*patch=*/4, c, /*width=*/32, /*depth=*/1, /*heads=*/4, /*mlp=*/4, /*eps=*/1e-6};
    VisionTransformer v(o);
    EXPECT_EQ(v->forward(torch::rand({3, c, 16, 16})).sizes(), (std::vector<int64_t>{3, 32}));
    EXPECT_THROW(v->forward(torch::rand({3, 4 - c, 16, 16})), ConfigError);
    EXPECT_FALSE(v->pos_embed.requires_grad()) << "the sin-cos embedding is fixed";
  }
  VitOptions bad;
  bad.image_size = 30;
  EXPECT_THROW(VisionTransformer{bad}, ConfigError);
}

TEST(ContrastiveModel, MeruHasMerusNames) {
  ModelOptions o = model_preset("tiny", geometry::Geometry::kLorentz);
  ContrastiveModel m(o);
  std::set<std::string> names;
  for (auto& [n, t] : named_state(*m)) names.insert(n);
  for (const char* n :
       {"logit_scale", "curv", "visual_alpha", "textual_alpha", "pixel_mean", "pixel_std", "visual.cls_token",
        "visual.pos_embed", "visual.patch_embed.proj.weight", "visual.patch_embed.proj.bias",
        "visual.blocks.0.norm1.weight", "visual.blocks.0.attn.qkv.weight", "visual.blocks.0.attn.qkv.bias",
        "visual.blocks.0.attn.proj.weight", "visual.blocks.0.norm2.bias", "visual.blocks.1.mlp.fc1.weight",
        "visual.blocks.1.mlp.fc2.bias", "visual.norm.weight", "textual.posit_embed", "textual.attn_mask",
        "textual.token_embed.weight", "textual.resblocks.0.attn.in_proj_weight",
        "textual.resblocks.0.attn.in_proj_bias", "textual.resblocks.0.attn.out_proj.weight",
        "textual.resblocks.0.attn.out_proj.bias", "textual.resblocks.1.ln_1.weight",
        "textual.resblocks.1.mlp.c_fc.weight", "textual.resblocks.1.mlp.c_proj.bias", "textual.resblocks.1.ln_2.bias",
        "textual.ln_final.weight", "visual_proj.weight", "textual_proj.weight"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("visual_proj.bias"));
  ContrastiveModel clip(model_preset("tiny", geometry::Geometry::kEuclidean));
  for (auto& [n, t] : named_state(*clip)) EXPECT_TRUE(n != "curv" && n != "visual_alpha" && n != "textual_alpha") << n;
}

TEST(ContrastiveModel, ReleasedSizesBuild) {
  // MERU's ViT-S image encoder: 12 blocks of width 384 (about 21.7M parameters).
  ContrastiveModel m(model_preset("vit_s", geometry::Geometry::kLorentz));
  int64_t vis = 0;
  for (auto& p : m->visual->parameters()) vis += p.numel();
  EXPECT_NEAR(static_cast<double>(vis), 21.7e6, 0.2e6);
  EXPECT_EQ(m->visual->blocks->size(), 12u);
  EXPECT_EQ(m->textual->resblocks->size(), 12u);
  EXPECT_EQ(m->visual->pos_embed.size(1), 197);
}

TEST(ContrastiveModel, EncodersAndGeometry) {
  torch::manual_seed(0);
  for (geometry::Geometry kind : {geometry::Geometry::kEuclidean, geometry::Geometry::kLorentz}) {
    ContrastiveModel m(model_preset("tiny", kind));
    at::Tensor img = m->encode_image(torch::rand({4, 1, 28, 28}));
    at::Tensor txt = m->encode_text(torch::randint(1, 500, {4, 10}, torch::kLong));
    EXPECT_EQ(img.sizes(), (std::vector<int64_t>{4, 64}));
    EXPECT_EQ(txt.sizes(), (std::vector<int64_t>{4, 64}));
    EXPECT_EQ(m->encode_image(torch::rand({2, 1, 28, 28}), /*project=*/false).size(1), 64);
    at::Tensor sim = m->similarity(img, txt);
    EXPECT_EQ(sim.sizes(), (std::vector<int64_t>{4, 4}));
    if (kind == geometry::Geometry::kEuclidean) {
      EXPECT_TRUE(close(img.norm(2, -1), torch::ones({4}), 1e-6, 1e-6));
    } else {
      // -distance, and embeddings are exp_map0 of the scaled projections.
      EXPECT_TRUE((sim <= 0).all().item<bool>());
      at::Tensor f = m->visual_proj(m->encode_image(torch::ones({1, 1, 28, 28}), false));
      EXPECT_TRUE(close(m->encode_image(torch::ones({1, 1, 28, 28})),
                        geometry::exp_map0(f * m->visual_alpha.exp(), m->curvature()), 1e-6, 1e-7));
    }
  }
}

// Mixed precision as a GPU run uses it, exercised with CPU autocast: inside EncoderAutocast the
// encoders compute in bfloat16, lift() (MERU's exp(alpha) scaling and exp_map0, CLIP's
// normalization) in float32 with autocast off; the embeddings stay close to a float32 run; the
// guard restores the previous state; disabled, it changes nothing.
TEST(EncoderAutocast, EncodersInBfloat16GeometryInFloat32) {
  torch::manual_seed(0);
  for (geometry::Geometry kind : {geometry::Geometry::kEuclidean, geometry::Geometry::kLorentz}) {
    ContrastiveModel m(model_preset("tiny", kind));
    m->eval();
    torch::NoGradGuard no_grad;
    const at::Tensor pixels = torch::rand({4, 1, 28, 28});
    const at::Tensor tokens = torch::randint(1, 500, {4, 10}, torch::kLong);
    const at::Tensor img32 = m->encode_image(pixels), txt32 = m->encode_text(tokens);
    ASSERT_FALSE(at::autocast::is_cpu_enabled());
    {
      EncoderAutocast off(at::kCPU, /*enabled=*/false);
      EXPECT_FALSE(at::autocast::is_cpu_enabled());
      EXPECT_TRUE(m->encode_image(pixels).equal(img32));
    }
    {
      EncoderAutocast on(at::kCPU, /*enabled=*/true);
      EXPECT_TRUE(at::autocast::is_cpu_enabled());
      EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), at::kBFloat16);
      const at::Tensor feat = m->encode_image(pixels, /*project=*/false);
      EXPECT_EQ(m->visual_proj(feat).scalar_type(), at::kBFloat16) << "the projection did not run in bfloat16";
      const at::Tensor img = m->encode_image(pixels), txt = m->encode_text(tokens);
      EXPECT_EQ(img.scalar_type(), at::kFloat);
      EXPECT_EQ(txt.scalar_type(), at::kFloat);
      EXPECT_TRUE(at::isfinite(img).all().item<bool>());
      EXPECT_TRUE(at::autocast::is_cpu_enabled()) << "lift() left autocast off";
      // bfloat16 has 8 bits of mantissa: close to the float32 run, not equal to it.
      EXPECT_FALSE(img.equal(img32));
      EXPECT_TRUE(close(img, img32, 5e-2, 5e-2));
      EXPECT_TRUE(close(txt, txt32, 5e-2, 5e-2));
      if (kind == geometry::Geometry::kLorentz) {
        // The same exp map on the same (bfloat16) projection, computed in float32.
        const at::Tensor p = m->visual_proj(feat).to(at::kFloat) * m->visual_alpha.exp();
        at::autocast::set_cpu_enabled(false);
        const at::Tensor want = geometry::exp_map0(p, m->curvature());
        at::autocast::set_cpu_enabled(true);
        EXPECT_TRUE(close(img, want, 1e-5, 1e-6));
      }
    }
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
    EXPECT_TRUE(m->encode_image(pixels).equal(img32));
  }
}

TEST(ContrastiveModel, ClampsApplyInPlaceAtEachEncode) {
  ModelOptions o = model_preset("tiny", geometry::Geometry::kLorentz);
  o.curv_init = 2.0;
  ContrastiveModel m(o);
  {
    torch::NoGradGuard ng;
    m->logit_scale.fill_(10.0);
    m->curv.fill_(std::log(1000.0));
    m->visual_alpha.fill_(0.5);
  }
  m->encode_text(torch::ones({1, 3}, torch::kLong));
  EXPECT_NEAR(m->logit_scale.item<double>(), std::log(100.0), 1e-6);
  EXPECT_NEAR(m->curv.item<double>(), std::log(20.0), 1e-6);  // 10 * c0
  EXPECT_NEAR(m->visual_alpha.item<double>(), 0.0, 0.0);
  { torch::NoGradGuard ng; m->curv.fill_(-50.0); }
  m->clamp_parameters();
  EXPECT_NEAR(m->curv.item<double>(), std::log(0.2), 1e-6);  // c0 / 10
  o.curv_learn = false;
  EXPECT_FALSE(ContrastiveModel(o)->curv.requires_grad());
}

TEST(LoadStateDict, RoundTripGivesIdenticalOutputs) {
  torch::manual_seed(1);
  ContrastiveModel a(model_preset("tiny", geometry::Geometry::kLorentz));
  torch::manual_seed(2);
  ContrastiveModel b(model_preset("tiny", geometry::Geometry::kLorentz));
  at::Tensor px = torch::rand({2, 1, 28, 28});
  EXPECT_FALSE(a->encode_image(px).equal(b->encode_image(px)));
  LoadReport r = load_state_dict(*b, named_state(*a), "model a");
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.loaded, static_cast<int64_t>(named_state(*a).size()));
  EXPECT_TRUE(a->encode_image(px).equal(b->encode_image(px)));
}

TEST(LoadStateDict, ReportsEveryProblemByNameAndRefusesAPartialLoad) {
  ContrastiveModel meru(model_preset("tiny", geometry::Geometry::kLorentz));
  NamedTensors state = named_state(*meru);
  NamedTensors bad;
  for (auto& [n, t] : state) {
    if (n == "curv") continue;                                        // missing
    if (n == "visual_proj.weight") bad.emplace_back(n, torch::zeros({3, 3}));  // mis-shaped
    else bad.emplace_back(n, t.clone());
  }
  bad.emplace_back("visual.head.weight", torch::zeros({2}));          // unexpected
  at::Tensor before = meru->textual_proj->weight.clone();
  try {
    load_state_dict(*meru, bad, "some.pth");
    FAIL() << "a partial load went through";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    for (const char* part : {"some.pth", "1 missing: curv", "1 unexpected: visual.head.weight",
                             "visual_proj.weight: file [3, 3] vs model [64, 64]"}) {
      EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
    }
  }
  EXPECT_TRUE(meru->textual_proj->weight.equal(before)) << "a refused load changed the model";
  LoadReport r = load_state_dict(*meru, bad, "some.pth", /*allow_partial=*/true);
  EXPECT_EQ(r.missing, std::vector<std::string>{"curv"});
  EXPECT_EQ(r.loaded, static_cast<int64_t>(state.size()) - 2);
  // A CLIP state dict into a MERU model: the hyperbolic parameters are missing.
  ContrastiveModel clip(model_preset("tiny", geometry::Geometry::kEuclidean));
  EXPECT_THROW(load_state_dict(*meru, named_state(*clip), "clip.pth"), IoError);
  // A NaN among the weights: refused with the tensor named, never loaded into a model.
  NamedTensors nan_state;
  for (auto& [n, t] : state) nan_state.emplace_back(n, t.clone());
  for (auto& [n, t] : nan_state) {
    if (n == "textual_proj.weight") t[3][5] = std::nan("");
  }
  try {
    load_state_dict(*meru, nan_state, "nan.pt");
    FAIL() << "a NaN weight was loaded";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("nan.pt: tensor textual_proj.weight holds 1 non-finite"), std::string::npos) << msg;
  }
}

TEST(InferModelOptions, RecoversTheArchitectureFromNames) {
  for (geometry::Geometry kind : {geometry::Geometry::kEuclidean, geometry::Geometry::kLorentz}) {
    ModelOptions o = model_preset("tiny", kind);
    o.vision.depth = 2;
    o.text.depth = 1;
    ContrastiveModel m(o);
    ModelOptions got = infer_model_options(named_state(*m), "m");
    EXPECT_EQ(got.kind, kind);
    EXPECT_EQ(got.vision.image_size, 28);
    EXPECT_EQ(got.vision.patch_size, 7);
    EXPECT_EQ(got.vision.channels, 1);
    EXPECT_EQ(got.vision.width, 64);
    EXPECT_EQ(got.vision.depth, 2);
    EXPECT_EQ(got.text.depth, 1);
    EXPECT_EQ(got.text.vocab_size, 512);
    EXPECT_EQ(got.text.context_length, 32);
    EXPECT_EQ(got.embed_dim, 64);
    EXPECT_NEAR(got.pixel_mean[0], 0.286, 1e-6);
    // The inferred options build a model the state dict loads into completely.
    ContrastiveModel rebuilt(got);
    EXPECT_TRUE(load_state_dict(*rebuilt, named_state(*m), "m").complete());
  }
  ModelOptions s = infer_model_options(named_state(*ContrastiveModel(model_preset("vit_s", geometry::Geometry::kLorentz))), "s");
  EXPECT_EQ(s.vision.heads, 12);
  EXPECT_EQ(s.vision.image_size, 224);
  EXPECT_EQ(s.text.heads, 8);
  EXPECT_THROW(infer_model_options({{"logit_scale", torch::zeros({})}}, "x.pt"), IoError);
}

TEST(ModelOptions, BadValuesAreConfigErrors) {
  EXPECT_THROW(model_preset("vit_xl", geometry::Geometry::kLorentz), ConfigError);
  EXPECT_THROW(geometry::parse_model_kind("hyperbolic"), ConfigError);
  ModelOptions o = model_preset("tiny", geometry::Geometry::kLorentz);
  o.curv_init = -1;
  EXPECT_THROW(validate(o), ConfigError);
  o = model_preset("tiny", geometry::Geometry::kLorentz);
  o.pixel_mean = {0.5, 0.5, 0.5};
  EXPECT_THROW(validate(o), ConfigError);
}

}  // namespace
}  // namespace runner::models
