// The loss terms the methods are assembled from (AC, arXiv 2406.03603; HAC, arXiv 2503.15166), each normalised by global counts so
// that any world size gives the single-process value (see Terms in method.h). Internal to
// src/unlearn; the tests use it to check each term by hand.
#pragma once

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>

#include "unlearn/method.h"

namespace runner::unlearn {

// sum_i w_i v_i over this rank, times world / (sum of w over every rank): the rank's share of the
// global weighted mean. values, weights: [B] f32. A zero global weight gives 0 (no NaN, and no
// gradient): batches with no forget rows contribute no forget terms.
at::Tensor global_weighted_mean(const comm::CommPtr& comm, const at::Tensor& values, const at::Tensor& weights);

// [B] per-pair symmetric contrastive loss l_i of CLIP/MERU with f.image against f.text (gathered
// over ranks; CLIP: dot of normalized features, MERU: -d_c).
at::Tensor per_pair_contrastive(const Context& ctx, const Features& f);

// [B] the geometry's similarity of each row's image and own caption: CLIP cosine, MERU -d_c.
at::Tensor paired_similarity(const Context& ctx, const Features& f);

// The native objective: mean contrastive (+ entail_weight * mean entailment for MERU) over the
// rows with mask (or every row when mask is undefined). Adds "contrastive" and "entailment".
at::Tensor native_loss(const Context& ctx, const Features& f, const at::Tensor& mask, Terms& out);

// AC's negative calibration: (sum_R l_i + alpha sum_F l_i^pi) / (|R| + alpha |F|). Adds "con".
at::Tensor calibrated_contrastive(const Context& ctx, const Features& f, double alpha, Terms& out);

// Positive calibration mean_F of the form unlearn.pos_mode names, with d the pair's distance (MERU
// d_c, CLIP the angle between the normalized features): neg_dist (CLIP cosine, MERU -d_c), hinge
// max(0, pos_margin - d), hinge_ref max(0, pos_margin_ratio * d_original - d), angle (minus the
// angle at the origin), rescaled (MERU: -d_c of the pair moved to the original's radii; CLIP: the
// cosine, which no radius enters). Adds "pos".
at::Tensor positive_calibration(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg, Terms& out);

// HAC's entailment calibration: mean_F max(0, half_aperture(t_i) + margin - oxy_angle(t_i, x_i))
// (the half-aperture of the caption now, or of the original's caption with entcal_aperture: original)
// ("entcal_out"), plus MERU's entailment on retain rows ("entcal_retain") and, as an option,
// forget images into their partner caption's cone ("entcal_partner"). Returns their sum.
at::Tensor entailment_calibration(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg,
                                  Terms& out);

// HAC's norm regularization on distances to the origin (dist0), image and own caption averaged,
// unweighted (the method applies norm_weight, times beta_eff when norm_scaled): origin: mean_F
// dist0; on the change D = dist0 - dist0_original: keep mean_F D^2, l1 mean_F |D|, grow mean_F
// max(0, D) (both with the growth side's slope 1 at D = 0, so the first step already resists a
// radius change), anchor_retain mean_R D^2. Adds "norm"; with norm_retain (keep, l1, grow) the same
// mean over retain rows is added as "norm_retain".
at::Tensor norm_regularization(const Context& ctx, const Features& f, const config::UnlearnConfig& cfg, Terms& out);

// Records a detached copy of `value` under `name`.
void add_part(Terms& out, const std::string& name, const at::Tensor& value);

}  // namespace runner::unlearn
