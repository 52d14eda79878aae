// Contrastive losses over features gathered from every rank (CLIP: cosine, MERU: negative
// Lorentzian distance) and MERU's entailment loss (SPEC §4).
#pragma once

#include <ATen/core/Tensor.h>

#include "dist/comm.h"

namespace runner::losses {

enum class Geometry { kEuclidean, kLorentz };

// [B1, D], [B2, D] -> [B1, B2]: the geometry's similarity. Euclidean: dot product of the given
// (already L2-normalized) features; Lorentz: -pairwise_dist with curvature `curv` (0-dim).
at::Tensor similarity(Geometry g, const at::Tensor& a, const at::Tensor& b, const at::Tensor& curv);

// Per pair i of this rank's batch: the symmetric loss
//   l_i = 1/2 [CE(s * sim(img_i, all_txt), t_i) + CE(s * sim(txt_i, all_img), t_i)],
// s = exp(logit_scale), t_i = i + B * rank, with img/txt gathered from every rank of `comm`
// (differentiable). image_feats, text_feats: [B, D] local rows (every rank the same B);
// curv: 0-dim curvature c for Lorentz (ignored for Euclidean). Returns [B] float.
at::Tensor contrastive_per_pair(const dist::CommPtr& comm, Geometry g, const at::Tensor& image_feats,
                                const at::Tensor& text_feats, const at::Tensor& logit_scale,
                                const at::Tensor& curv);

// Mean of contrastive_per_pair: the CLIP/MERU training loss on this rank (its mean over ranks
// equals the single-process loss on the union of the batches).
at::Tensor contrastive(const dist::CommPtr& comm, Geometry g, const at::Tensor& image_feats,
                       const at::Tensor& text_feats, const at::Tensor& logit_scale,
                       const at::Tensor& curv);

// [B] MERU entailment per pair: max(0, oxy_angle(txt_i, img_i) - half_aperture(txt_i)), i.e.
// how far each image lies outside its caption's cone (local pairs only).
at::Tensor entailment_per_pair(const at::Tensor& image_feats, const at::Tensor& text_feats,
                               const at::Tensor& curv);

// MERU's total: contrastive + entail_weight * mean entailment (SPEC §4, weight 0.2).
struct MeruLoss {
  at::Tensor total, contrastive, entailment;
};
MeruLoss meru_loss(const dist::CommPtr& comm, const at::Tensor& image_feats,
                   const at::Tensor& text_feats, const at::Tensor& logit_scale,
                   const at::Tensor& curv, double entail_weight = 0.2);

}  // namespace runner::losses
