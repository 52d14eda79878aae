// AC, Alignment Calibration: negative calibration with random other-forget captions
// plus positive calibration. On MERU (-d_c logits) it is HAC with both hyperbolic parts off.
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Ac final : public Method {
 public:
  explicit Ac(config::UnlearnConfig cfg) : cfg_(std::move(cfg)) {}
  std::string name() const override { return "ac"; }
  Rows rows() const override { return Rows::kAll; }
  Needs needs() const override { return {/*partners=*/true, /*reference=*/pos_needs_reference(cfg_)}; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    // Separate statements: the terms run collectives, which every rank must issue in one order.
    const at::Tensor con = calibrated_contrastive(ctx, f, cfg_.alpha, out);
    const at::Tensor pos = positive_calibration(ctx, f, cfg_, out);
    out.loss = con + ctx.beta_eff * pos;
    return out;
  }

 private:
  config::UnlearnConfig cfg_;
};

}  // namespace

std::unique_ptr<Method> make_ac(const config::UnlearnConfig& cfg) { return std::make_unique<Ac>(cfg); }

}  // namespace runner::unlearn
