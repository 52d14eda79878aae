// ng, NegGrad+ (a baseline): (sum_R l_i - sum_F l_i) / B over batches of both sets.
#include "unlearn/terms.h"

#include <ATen/ATen.h>

namespace runner::unlearn {

namespace {

class Ng final : public Method {
 public:
  std::string name() const override { return "ng"; }
  Rows rows() const override { return Rows::kAll; }
  Terms loss(const Context& ctx, const Features& f) const override {
    Terms out;
    const at::Tensor sign = 1.0 - 2.0 * f.forget.to(at::kFloat);  // +1 retain, -1 forget
    const at::Tensor ones = at::ones_like(sign);
    out.loss = global_weighted_mean(ctx.comm, sign * per_pair_contrastive(ctx, f), ones);
    add_part(out, "signed_contrastive", out.loss);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_ng(const config::UnlearnConfig&) { return std::make_unique<Ng>(); }

}  // namespace runner::unlearn
