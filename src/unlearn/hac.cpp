// HAC: AC's calibrations under -d_c logits, plus entailment calibration and norm
// regularization, each switchable (unlearn.entcal, unlearn.norm) with its weight.
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Hac final : public Method {
 public:
  explicit Hac(config::UnlearnConfig cfg) : cfg_(std::move(cfg)) {}
  std::string name() const override { return "hac"; }
  Rows rows() const override { return Rows::kAll; }
  Needs needs() const override {
    const bool norm = cfg_.norm && cfg_.norm_mode != "origin";
    const bool entcal = cfg_.entcal && cfg_.entcal_aperture == "original";
    return {/*partners=*/true, /*reference=*/norm || entcal || pos_needs_reference(cfg_)};
  }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    // Separate statements: the terms run collectives, which every rank must issue in one order.
    const at::Tensor con = calibrated_contrastive(ctx, f, cfg_.alpha, out);
    const at::Tensor pos = positive_calibration(ctx, f, cfg_, out);
    at::Tensor loss = con + ctx.beta_eff * pos;
    if (cfg_.entcal) loss = loss + cfg_.entcal_weight * entailment_calibration(ctx, f, cfg_, out);
    if (cfg_.norm) {
      const double weight = cfg_.norm_weight * (cfg_.norm_scaled ? ctx.beta_eff : 1.0);
      loss = loss + weight * norm_regularization(ctx, f, cfg_, out);
    }
    out.loss = loss;
    return out;
  }

 private:
  config::UnlearnConfig cfg_;
};

}  // namespace

std::unique_ptr<Method> make_hac(const config::UnlearnConfig& cfg) { return std::make_unique<Hac>(cfg); }

}  // namespace runner::unlearn
