// Contrastive losses over features gathered from every rank (CLIP: cosine, MERU: negative
// Lorentzian distance; the scores come from geometry/pair.h) and MERU's entailment loss, as in
// MERU's models.py (Desai et al., "Hyperbolic Image-Text Representations", ICML 2023).
#pragma once

#include <ATen/core/Tensor.h>

#include "comm/comm.h"
#include "geometry/pair.h"

namespace runner::losses {

// Per pair i of this rank's batch: the symmetric loss
//   l_i = 1/2 [CE(s * score(img_i, all_txt), t_i) + CE(s * score(txt_i, all_img), t_i)],
// s = exp(logit_scale), t_i = i + B * rank, score = geometry::pairwise_score, with img/txt
// gathered from every rank of `comm` (differentiable). image_feats, text_feats: [B, D] local rows
// (every rank the same B); curv: 0-dim curvature c for Lorentz (ignored for Euclidean). Returns
// [B] float. Its mean over the batch, averaged over ranks, is the single-process CLIP/MERU loss.
at::Tensor contrastive_per_pair(const comm::CommPtr& comm, geometry::Geometry g, const at::Tensor& image_feats,
                                const at::Tensor& text_feats, const at::Tensor& logit_scale,
                                const at::Tensor& curv);

// [B] MERU entailment per pair: max(0, oxy_angle(txt_i, img_i) - half_aperture(txt_i)), i.e.
// how far each image lies outside its caption's cone (local pairs only). MERU's total loss is
// mean contrastive + entail_weight (0.2) * mean entailment.
at::Tensor entailment_per_pair(const at::Tensor& image_feats, const at::Tensor& text_feats,
                               const at::Tensor& curv);

}  // namespace runner::losses
