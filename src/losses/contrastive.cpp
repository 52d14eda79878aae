// Contrastive and entailment losses (MERU's models.py semantics).
#include "losses/contrastive.h"

#include <ATen/ATen.h>

#include "comm/autograd_ops.h"
#include "geometry/lorentz.h"

namespace runner::losses {

at::Tensor contrastive_per_pair(const comm::CommPtr& comm, geometry::Geometry g, const at::Tensor& image_feats,
                                const at::Tensor& text_feats, const at::Tensor& logit_scale,
                                const at::Tensor& curv) {
  at::Tensor all_image = comm::all_gather_with_grad(comm, image_feats);
  at::Tensor all_text = comm::all_gather_with_grad(comm, text_feats);
  const int64_t b = image_feats.size(0);
  at::Tensor targets =
      at::arange(b, image_feats.options().dtype(at::kLong)) + b * comm->rank();
  at::Tensor scale = logit_scale.exp();
  at::Tensor image_logits = scale * geometry::pairwise_score(g, image_feats, all_text, curv);
  at::Tensor text_logits = scale * geometry::pairwise_score(g, text_feats, all_image, curv);
  auto ce = [&](const at::Tensor& logits) {
    return at::cross_entropy_loss(logits, targets, /*weight=*/{}, at::Reduction::None);
  };
  return 0.5 * (ce(image_logits) + ce(text_logits));
}

at::Tensor entailment_per_pair(const at::Tensor& image_feats, const at::Tensor& text_feats,
                               const at::Tensor& curv) {
  at::Tensor angle = geometry::oxy_angle(text_feats, image_feats, curv);
  at::Tensor aperture = geometry::half_aperture(text_feats, curv);
  return at::clamp_min(angle - aperture, 0.0);
}

}  // namespace runner::losses
