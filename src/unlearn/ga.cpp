// ga: gradient ascent on the model's own objective over forget rows only (a baseline).
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Ga final : public Method {
 public:
  std::string name() const override { return "ga"; }
  Rows rows() const override { return Rows::kForget; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    out.loss = -native_loss(ctx, f, at::Tensor(), out);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_ga(const config::UnlearnConfig&) { return std::make_unique<Ga>(); }

}  // namespace runner::unlearn
