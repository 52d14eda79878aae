// Method factory, the pretraining objective and beta_eff.
#include "unlearn/method.h"

#include <fmt/format.h>

#include "core/error.h"
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Pretrain final : public Method {
 public:
  std::string name() const override { return "pretrain"; }
  Rows rows() const override { return Rows::kAll; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    out.loss = native_loss(ctx, f, at::Tensor(), out);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_method(const config::UnlearnConfig& cfg, bool meru) {
  const std::string& m = cfg.method;
  if (m == "hac") {
    RUNNER_CHECK(meru, ConfigError,
                 "unlearn.method: 'hac' calibrates hyperbolic distances and cones and needs model.kind meru; "
                 "use 'ac' for CLIP");
    return make_hac(cfg);
  }
  if (m == "ac") return make_ac(cfg);
  if (m == "ft") return make_ft();
  if (m == "ga") return make_ga();
  if (m == "ng") return make_ng();
  if (m == "l1") return make_l1(cfg.l1_weight);
  if (m == "retrain") return make_retrain();
  if (m == "none") return make_none();
  throw ConfigError(fmt::format("unlearn.method: unknown '{}' (hac, ac, ft, ga, ng, l1, retrain, none)", m));
}

std::unique_ptr<Method> make_pretrain_method() { return std::make_unique<Pretrain>(); }

double effective_beta(const config::UnlearnConfig& cfg, int64_t forget_size, int64_t retain_size) {
  if (!cfg.beta_scaled) return cfg.beta;
  const int64_t total = forget_size + retain_size;
  return total > 0 ? cfg.beta * static_cast<double>(forget_size) / static_cast<double>(total) : 0.0;
}

}  // namespace runner::unlearn
