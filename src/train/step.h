// One training step, the same for `hac train`, `hac unlearn` and `hac bench step`: the method's
// loss on the step's features, one all-reduce of the loss terms (with a stop flag), the
// non-finite guard, backward, the bucketed gradient all-reduce and AdamW with MERU's groups.
// Internal to src/train and its benchmark.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "comm/grad_reducer.h"
#include "config/config.h"
#include "models/contrastive_model.h"
#include "train/optim.h"
#include "unlearn/method.h"

namespace runner::train {

// AdamW settings of the pretraining recipe (train.beta1, beta2, eps) with the given decay.
AdamWOptions adamw_options(const config::TrainConfig& t, double weight_decay);

struct StepOutcome {
  std::vector<std::string> names;  // "loss", then the method's parts
  std::vector<double> values;      // their means over ranks
  bool stopped = false;            // some rank asked to stop: no backward, no update was made
  double reduce_s = 0.0;           // seconds in the gradient all-reduce
};

class TrainStep {
 public:
  // Optimizes the model's parameters that require grad (in named_parameters order).
  TrainStep(models::ContrastiveModelImpl& model, const unlearn::Method& method, unlearn::Context ctx,
            const AdamWOptions& adamw);

  AdamW& optimizer() { return opt_; }
  const unlearn::Context& context() const { return ctx_; }

  // zero_grad, loss = method.loss(ctx, features()), then one collective carrying the terms and
  // `stop` (every rank learns whether any rank wants to stop). When one does, returns with
  // stopped = true before backward. Otherwise throws Error on a non-finite term (naming the
  // step `step_label` and the terms), then backward, gradient all-reduce and AdamW at `lr`.
  StepOutcome run(const std::function<unlearn::Features()>& features, double lr, bool stop, int64_t step_label);

 private:
  const unlearn::Method& method_;
  unlearn::Context ctx_;
  AdamW opt_;
  comm::GradReducer reducer_;
};

}  // namespace runner::train
