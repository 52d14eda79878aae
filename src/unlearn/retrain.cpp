// retrain: the gold standard (a baseline): train from random weights on the retain set
// with the pretraining recipe (train.*).
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class Retrain final : public Method {
 public:
  std::string name() const override { return "retrain"; }
  Rows rows() const override { return Rows::kRetain; }
  bool from_scratch() const override { return true; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    out.loss = native_loss(ctx, f, at::Tensor(), out);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_retrain(const config::UnlearnConfig&) { return std::make_unique<Retrain>(); }

}  // namespace runner::unlearn
