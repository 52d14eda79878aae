// The training step shared by the loop and the step benchmark.
#include "train/step.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "core/error.h"

namespace runner::train {

namespace {

NamedTensors trainable(models::ContrastiveModelImpl& model) {
  NamedTensors out;
  for (const auto& item : model.named_parameters()) {
    if (item.value().requires_grad()) out.emplace_back(item.key(), item.value());
  }
  return out;
}

std::vector<at::Tensor> tensors_of(const NamedTensors& named) {
  std::vector<at::Tensor> out;
  for (const auto& [name, p] : named) out.push_back(p);
  return out;
}

}  // namespace

AdamWOptions adamw_options(const config::TrainConfig& t, double weight_decay) {
  return AdamWOptions{t.beta1, t.beta2, t.eps, weight_decay};
}

TrainStep::TrainStep(models::ContrastiveModelImpl& model, const unlearn::Method& method, unlearn::Context ctx,
                     const AdamWOptions& adamw)
    : method_(method), ctx_(std::move(ctx)), opt_(trainable(model), adamw),
      reducer_(ctx_.comm, tensors_of(trainable(model))) {}

StepOutcome TrainStep::run(const std::function<unlearn::Features()>& features, double lr, bool stop,
                           int64_t step_label) {
  StepOutcome out;
  opt_.zero_grad();
  const unlearn::Terms terms = method_.loss(ctx_, features());
  // One all-reduce per step carries the terms for the log and the stop flag.
  out.names.emplace_back("loss");
  // On the host whatever the device: one small MPI all-reduce, read back without a device sync later.
  const auto host = at::TensorOptions().device(at::kCPU).dtype(at::kDouble);
  std::vector<at::Tensor> vals{terms.loss.detach().to(host).reshape({1})};
  for (const auto& [name, v] : terms.parts) out.names.push_back(name), vals.push_back(v.detach().to(host).reshape({1}));
  vals.push_back(at::full({1}, static_cast<double>(stop), at::kDouble));
  at::Tensor reduced = at::cat(vals).contiguous();
  ctx_.comm->all_reduce(reduced);
  out.stopped = reduced[-1].item<double>() > 0;
  reduced = reduced.slice(0, 0, -1) / static_cast<double>(ctx_.comm->world_size());
  out.values.assign(reduced.data_ptr<double>(), reduced.data_ptr<double>() + reduced.numel());
  if (out.stopped) return out;
  bool finite = true;
  std::string listing;
  for (size_t i = 0; i < out.names.size(); ++i) {
    finite = finite && std::isfinite(out.values[i]);
    listing += fmt::format("{}{}={}", i ? ", " : "", out.names[i], out.values[i]);
  }
  if (!finite) throw Error(fmt::format("non-finite loss at step {} of {}: {}", step_label, method_.name(), listing));
  terms.loss.backward();
  const auto t0 = std::chrono::steady_clock::now();
  reducer_.reduce();
  out.reduce_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  opt_.step(lr);
  return out;
}

}  // namespace runner::train
