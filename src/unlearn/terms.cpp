// Loss terms of the unlearning methods, normalised by global counts.
#include "unlearn/terms.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "geometry/lorentz.h"
#include "geometry/pair.h"
#include "losses/contrastive.h"

namespace runner::unlearn {

namespace {

at::Tensor as_weights(const at::Tensor& mask) { return mask.to(at::kFloat); }

}  // namespace

void add_part(Terms& out, const std::string& name, const at::Tensor& value) {
  out.parts.emplace_back(name, value.detach().to(at::kDouble).reshape({}));
}

at::Tensor global_weighted_mean(const comm::CommPtr& comm, const at::Tensor& values, const at::Tensor& weights) {
  const at::Tensor w = weights.to(values.scalar_type());
  at::Tensor total = w.sum().detach().to(at::kDouble).reshape({1}).cpu();
  comm->all_reduce(total);
  const double denom = total.item<double>();
  // The same decision on every rank: the denominator is global.
  if (!(denom > 0.0)) return at::zeros({}, values.options());
  return (values * w).sum() * (static_cast<double>(comm->world_size()) / denom);
}

at::Tensor per_pair_contrastive(const Context& ctx, const Features& f) {
  return losses::contrastive_per_pair(ctx.comm, ctx.geometry, f.image, f.text, f.logit_scale,
                                      ctx.meru() ? f.curv : at::Tensor());
}

at::Tensor paired_similarity(const Context& ctx, const Features& f) {
  return geometry::pair_score(ctx.geometry, f.image, f.text_own, ctx.meru() ? f.curv : at::Tensor());
}

at::Tensor native_loss(const Context& ctx, const Features& f, const at::Tensor& mask, Terms& out) {
  const at::Tensor w = mask.defined() ? as_weights(mask) : at::ones({f.image.size(0)}, f.image.options());
  at::Tensor con = global_weighted_mean(ctx.comm, per_pair_contrastive(ctx, f), w);
  add_part(out, "contrastive", con);
  if (!ctx.meru()) return con;
  at::Tensor ent = global_weighted_mean(ctx.comm, losses::entailment_per_pair(f.image, f.text, f.curv), w);
  add_part(out, "entailment", ent);
  return con + ctx.entail_weight * ent;
}

at::Tensor calibrated_contrastive(const Context& ctx, const Features& f, double alpha, Terms& out) {
  const at::Tensor fw = as_weights(f.forget);
  const at::Tensor w = (1.0 - fw) + alpha * fw;
  at::Tensor con = global_weighted_mean(ctx.comm, per_pair_contrastive(ctx, f), w);
  add_part(out, "con", con);
  return con;
}

at::Tensor positive_calibration(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg,
                                Terms& out) {
  const std::string& mode = cfg.pos_mode;
  auto ref_pair = [&]() {
    RUNNER_CHECK(f.ref_pair_dist.defined(), Error, "positive_calibration: hinge_ref needs the original's pair distances");
    return f.ref_pair_dist;
  };
  at::Tensor v;
  if (mode == "angle") {
    v = -geometry::angle_at_origin(f.image, f.text_own);
  } else if (!ctx.meru()) {
    if (mode == "neg_dist" || mode == "rescaled") {
      v = paired_similarity(ctx, f);
    } else {
      const at::Tensor d = geometry::angle_at_origin(f.image, f.text_own);
      v = at::clamp_min((mode == "hinge" ? at::full_like(d, cfg.pos_margin) : cfg.pos_margin_ratio * ref_pair()) - d, 0.0);
    }
  } else if (mode == "rescaled") {
    RUNNER_CHECK(f.ref_image_dist0.defined() && f.ref_text_dist0.defined(), Error,
                 "positive_calibration: rescaled needs the original's distances to the origin");
    v = -geometry::paired_dist(geometry::at_dist0(f.image, f.ref_image_dist0, f.curv),
                               geometry::at_dist0(f.text_own, f.ref_text_dist0, f.curv), f.curv);
  } else {
    const at::Tensor d = geometry::paired_dist(f.image, f.text_own, f.curv);
    if (mode == "hinge") {
      v = at::clamp_min(cfg.pos_margin - d, 0.0);
    } else if (mode == "hinge_ref") {
      v = at::clamp_min(cfg.pos_margin_ratio * ref_pair() - d, 0.0);
    } else {
      v = -d;
    }
  }
  at::Tensor pos = global_weighted_mean(ctx.comm, v, as_weights(f.forget));
  add_part(out, "pos", pos);
  return pos;
}

at::Tensor entailment_calibration(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg,
                                  Terms& out) {
  RUNNER_CHECK(ctx.meru(), ConfigError, "unlearn.entcal: entailment calibration needs a MERU model");
  const at::Tensor fw = as_weights(f.forget);
  const bool original = cfg.entcal_aperture == "original";
  RUNNER_CHECK(!original || f.ref_text_aperture.defined(), Error,
               "entailment_calibration: entcal_aperture original needs the original's apertures");
  const at::Tensor aperture = original ? f.ref_text_aperture : geometry::half_aperture(f.text_own, f.curv);
  const at::Tensor outside = at::clamp_min(aperture + cfg.entcal_margin -
                                               geometry::oxy_angle(f.text_own, f.image, f.curv),
                                           0.0);
  at::Tensor total = global_weighted_mean(ctx.comm, outside, fw);
  add_part(out, "entcal_out", total);
  if (cfg.entcal_retain) {
    at::Tensor keep = global_weighted_mean(ctx.comm, losses::entailment_per_pair(f.image, f.text_own, f.curv), 1.0 - fw);
    add_part(out, "entcal_retain", keep);
    total = total + keep;
  }
  if (cfg.entcal_partner) {
    // f.text holds the partner captions on forget rows.
    at::Tensor into = global_weighted_mean(ctx.comm, losses::entailment_per_pair(f.image, f.text, f.curv), fw);
    add_part(out, "entcal_partner", into);
    total = total + into;
  }
  return total;
}

at::Tensor norm_regularization(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg, Terms& out) {
  RUNNER_CHECK(ctx.meru(), ConfigError, "unlearn.norm: norm regularization needs a MERU model");
  const at::Tensor di = geometry::dist0(f.image, f.curv), dt = geometry::dist0(f.text_own, f.curv);
  const at::Tensor fw = as_weights(f.forget);
  const std::string& mode = cfg.norm_mode;
  if (mode == "origin") {
    at::Tensor norm = global_weighted_mean(ctx.comm, 0.5 * (di + dt), fw);
    add_part(out, "norm", norm);
    return norm;
  }
  RUNNER_CHECK(f.ref_image_dist0.defined() && f.ref_text_dist0.defined(), Error,
               "norm_regularization: reference distances missing (Needs::reference)");
  // The penalty of a change D; at D = 0, at::where takes the first branch, so l1 and grow have
  // slope 1 there (the growth side), not the 0 of abs and relu.
  auto penalty = [&](const at::Tensor& d) {
    if (mode == "l1") return at::where(d >= 0.0, d, -d);
    if (mode == "grow") return at::where(d >= 0.0, d, at::zeros_like(d));
    return d.pow(2);  // keep, anchor_retain
  };
  const at::Tensor v = 0.5 * (penalty(di - f.ref_image_dist0) + penalty(dt - f.ref_text_dist0));
  if (mode == "anchor_retain") {
    at::Tensor norm = global_weighted_mean(ctx.comm, v, 1.0 - fw);
    add_part(out, "norm", norm);
    return norm;
  }
  at::Tensor norm = global_weighted_mean(ctx.comm, v, fw);
  add_part(out, "norm", norm);
  if (!cfg.norm_retain) return norm;
  at::Tensor kept = global_weighted_mean(ctx.comm, v, 1.0 - fw);
  add_part(out, "norm_retain", kept);
  return norm + kept;
}

void set_reference(geometry::Geometry g, const at::Tensor& ref_image, const at::Tensor& ref_text,
                   const at::Tensor& ref_curv, Features& f) {
  at::NoGradGuard no_grad;
  if (g == geometry::Geometry::kEuclidean) {
    f.ref_pair_dist = geometry::angle_at_origin(ref_image, ref_text).to(at::kFloat);
    return;
  }
  f.ref_image_dist0 = geometry::dist0(ref_image, ref_curv).to(at::kFloat);
  f.ref_text_dist0 = geometry::dist0(ref_text, ref_curv).to(at::kFloat);
  f.ref_pair_dist = geometry::paired_dist(ref_image, ref_text, ref_curv).to(at::kFloat);
  f.ref_text_aperture = geometry::half_aperture(ref_text, ref_curv).to(at::kFloat);
}

bool pos_needs_reference(const config::UnlearnConfig& cfg) {
  return cfg.pos_mode == "hinge_ref" || cfg.pos_mode == "rescaled";
}

}  // namespace runner::unlearn
