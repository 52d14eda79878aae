// AdamW with MERU's parameter groups and the warmup + cosine schedule (MERU's recipe), with its state
// as named tensors so a checkpoint can restore it bit for bit.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace runner::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8, weight_decay = 0.2;
};

// MERU's rule: no weight decay on logit_scale, curv, visual_alpha, textual_alpha, on biases and
// on every parameter of fewer than 2 dimensions (LayerNorm gains); decay on the rest.
bool decays(const std::string& name, const at::Tensor& param);

// torch.optim.AdamW's update (decoupled decay, bias-corrected moments, eps outside the square
// root), per parameter: p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Parameters without a gradient are
// skipped (their step count does not advance), as in PyTorch.
class AdamW {
 public:
  AdamW(NamedTensors params, AdamWOptions o);
  void zero_grad();
  void step(double lr);
  // "<name>.exp_avg", "<name>.exp_avg_sq", "<name>.step" (int64 [1]) for every parameter stepped so far.
  NamedTensors state() const;
  // Restores state(); throws IoError naming `source` and the tensor on a missing or mis-shaped entry.
  void load_state(const NamedTensors& state, const std::string& source);

 private:
  struct Slot {
    std::string name;
    at::Tensor param, exp_avg, exp_avg_sq;
    int64_t step = 0;
    bool decay = true;
  };
  std::vector<Slot> slots_;
  AdamWOptions o_;
};

// Learning rate at step s (0-based) of `total`: linear warmup (s + 1) / warmup * peak over the
// first `warmup` steps, then cosine decay from peak to 0 over the rest (MERU's schedule).
double lr_at(int64_t s, int64_t total, int64_t warmup, double peak);

}  // namespace runner::train
