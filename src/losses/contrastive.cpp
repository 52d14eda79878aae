// Contrastive and entailment losses (MERU models.py semantics, re-derived from SPEC §4).
#include "losses/contrastive.h"

#include <ATen/ATen.h>

#include "dist/autograd_ops.h"
#include "geometry/lorentz.h"

namespace runner::losses {

at::Tensor similarity(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv) {
  if (g == Geometry::kEuclidean) return at::matmul(a, b.t());
  return -geometry::pairwise_dist(a, b, curv);
}

at::Tensor contrastive_per_pair(const dist::CommPtr& comm, Geometry g, const at::Tensor& image_feats,
                                const at::Tensor& text_feats, const at::Tensor& logit_scale,
                                const at::Tensor& curv) {
  at::Tensor all_image = dist::all_gather_with_grad(comm, image_feats);
  at::Tensor all_text = dist::all_gather_with_grad(comm, text_feats);
  const int64_t b = image_feats.size(0);
  at::Tensor targets =
      at::arange(b, image_feats.options().dtype(at::kLong)) + b * comm->rank();
  at::Tensor scale = logit_scale.exp();
  at::Tensor image_logits = scale * similarity(g, image_feats, all_text, curv);
  at::Tensor text_logits = scale * similarity(g, text_feats, all_image, curv);
  auto ce = [&](const at::Tensor& logits) {
    return at::cross_entropy_loss(logits, targets, /*weight=*/{}, at::Reduction::None);
  };
  return 0.5 * (ce(image_logits) + ce(text_logits));
}

at::Tensor contrastive(const dist::CommPtr& comm, Geometry g, const at::Tensor& image_feats,
                       const at::Tensor& text_feats, const at::Tensor& logit_scale,
                       const at::Tensor& curv) {
  return contrastive_per_pair(comm, g, image_feats, text_feats, logit_scale, curv).mean();
}

at::Tensor entailment_per_pair(const at::Tensor& image_feats, const at::Tensor& text_feats,
                               const at::Tensor& curv) {
  at::Tensor angle = geometry::oxy_angle(text_feats, image_feats, curv);
  at::Tensor aperture = geometry::half_aperture(text_feats, curv);
  return at::clamp_min(angle - aperture, 0.0);
}

MeruLoss meru_loss(const dist::CommPtr& comm, const at::Tensor& image_feats,
                   const at::Tensor& text_feats, const at::Tensor& logit_scale,
                   const at::Tensor& curv, double entail_weight) {
  MeruLoss out;
  out.contrastive = contrastive(comm, Geometry::kLorentz, image_feats, text_feats, logit_scale, curv);
  out.entailment = entailment_per_pair(image_feats, text_feats, curv).mean();
  out.total = out.contrastive + entail_weight * out.entailment;
  return out;
}

}  // namespace runner::losses
