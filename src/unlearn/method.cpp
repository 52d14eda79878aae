// Method factory, the pretraining objective and beta_eff.
#include "unlearn/method.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "unlearn/registry.h"
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

std::unique_ptr<Method> make_method(const config::UnlearnConfig& cfg, geometry::Geometry g) {
  const MethodInfo* info = find_method(cfg.method);
  if (!info) {
    throw ConfigError(fmt::format("unlearn.method: unknown '{}' ({})", cfg.method, fmt::join(method_names(), ", ")));
  }
  RUNNER_CHECK(!info->lorentz_only || g == geometry::Geometry::kLorentz, ConfigError,
               fmt::format("unlearn.method: '{}' {}", info->name, info->lorentz_why));
  return info->make(cfg);
}

std::unique_ptr<Method> make_pretrain_method() { return std::make_unique<Pretrain>(); }

double effective_beta(const config::UnlearnConfig& cfg, int64_t forget_size, int64_t retain_size) {
  if (!cfg.beta_scaled) return cfg.beta;
  const int64_t total = forget_size + retain_size;
  return total > 0 ? cfg.beta * static_cast<double>(forget_size) / static_cast<double>(total) : 0.0;
}

}  // namespace runner::unlearn
