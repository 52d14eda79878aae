// l1: ft plus an L1 penalty on the trainable parameters (a baseline, "l1-sparse").
#include "unlearn/terms.h"

#include <ATen/ATen.h>

namespace runner::unlearn {

namespace {

class L1 final : public Method {
 public:
  explicit L1(double weight) : weight_(weight) {}
  std::string name() const override { return "l1"; }
  Rows rows() const override { return Rows::kRetain; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    at::Tensor l1 = at::zeros({}, f.image.options());
    // Every rank holds the same parameters: the penalty is the same everywhere, as the mean over
    // ranks must be.
    for (const at::Tensor& p : f.params) l1 = l1 + p.abs().sum();
    const at::Tensor native = native_loss(ctx, f, at::Tensor(), out);
    add_part(out, "l1", l1);
    out.loss = native + weight_ * l1;
    return out;
  }

 private:
  double weight_;
};

}  // namespace

std::unique_ptr<Method> make_l1(const config::UnlearnConfig& cfg) { return std::make_unique<L1>(cfg.l1_weight); }

}  // namespace runner::unlearn
