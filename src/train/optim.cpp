// AdamW with MERU's parameter groups and the learning-rate schedule.
#include "train/optim.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "core/error.h"

namespace runner::train {

bool decays(const std::string& name, const at::Tensor& param) {
  static const char* const kNoDecay[] = {"logit_scale", "curv", "visual_alpha", "textual_alpha"};
  for (const char* n : kNoDecay) {
    if (name == n) return false;
  }
  const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  return !bias && param.dim() >= 2;
}

AdamW::AdamW(NamedTensors params, AdamWOptions o) : o_(o) {
  for (auto& [name, p] : params) {
    Slot s;
    s.name = name;
    s.param = p;
    s.decay = decays(name, p);
    slots_.push_back(std::move(s));
  }
}

void AdamW::zero_grad() {
  for (Slot& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    const at::Tensor& g = s.param.grad();
    if (!g.defined()) continue;
    if (!s.exp_avg.defined()) {
      s.exp_avg = at::zeros_like(s.param, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(s.param, at::MemoryFormat::Preserve);
    }
    ++s.step;
    if (s.decay && o_.weight_decay != 0.0) s.param.mul_(1.0 - lr * o_.weight_decay);
    s.exp_avg.mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    s.exp_avg_sq.mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(s.step));
    const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(s.step));
    const at::Tensor denom = (s.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(o_.eps);
    s.param.addcdiv_(s.exp_avg, denom, -lr / bc1);
  }
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    if (!s.exp_avg.defined()) continue;
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
    out.emplace_back(s.name + ".step", at::full({1}, s.step, at::kLong));
  }
  return out;
}

void AdamW::load_state(const NamedTensors& state, const std::string& source) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  at::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    auto step = by_name.find(s.name + ".step");
    if (step == by_name.end()) {
      s.exp_avg = at::Tensor(), s.exp_avg_sq = at::Tensor(), s.step = 0;  // never stepped
      continue;
    }
    for (const char* part : {".exp_avg", ".exp_avg_sq"}) {
      auto it = by_name.find(s.name + part);
      if (it == by_name.end() || !it->second.sizes().equals(s.param.sizes())) {
        throw IoError(fmt::format("{}: optimizer state '{}{}' is missing or has the wrong shape", source, s.name, part));
      }
    }
    s.exp_avg = by_name.at(s.name + ".exp_avg").to(s.param.options()).clone();
    s.exp_avg_sq = by_name.at(s.name + ".exp_avg_sq").to(s.param.options()).clone();
    s.step = step->second.to(at::kLong).reshape({-1})[0].item<int64_t>();
  }
}

double lr_at(int64_t s, int64_t total, int64_t warmup, double peak) {
  if (s < warmup) return peak * static_cast<double>(s + 1) / static_cast<double>(warmup);
  const int64_t span = total - warmup;
  if (span <= 0) return peak;
  const double progress = static_cast<double>(s - warmup) / static_cast<double>(span);
  return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace runner::train
