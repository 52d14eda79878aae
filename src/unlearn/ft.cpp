// ft: fine-tune on the retain set with the model's own objective (a baseline).
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Ft final : public Method {
 public:
  std::string name() const override { return "ft"; }
  Rows rows() const override { return Rows::kRetain; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    out.loss = native_loss(ctx, f, at::Tensor(), out);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_ft(const config::UnlearnConfig&) { return std::make_unique<Ft>(); }

}  // namespace runner::unlearn
