// The method registry: one line per method.
#include "unlearn/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace runner::unlearn {

// Each method file defines its factory.
std::unique_ptr<Method> make_none(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_retrain(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_ft(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_ga(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_ng(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_l1(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_ac(const config::UnlearnConfig& cfg);
std::unique_ptr<Method> make_hac(const config::UnlearnConfig& cfg);

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> kMethods = {
      {"none", make_none, "the original model, unchanged (the reference row of every table)", false, ""},
      {"retrain", make_retrain, "the gold standard: train from random weights on the retain set with the pretraining recipe (train.*)", false, ""},
      {"ft", make_ft, "fine-tune on the retain set with the model's own objective", false, ""},
      {"ga", make_ga, "gradient ascent on the model's own objective over the forget set", false, ""},
      {"ng", make_ng, "NegGrad+: descend on retain pairs, ascend on forget pairs, in one batch", false, ""},
      {"l1", make_l1, "ft plus an L1 penalty on the trainable parameters (l1-sparse; unlearn.l1_weight)", false, ""},
      {"ac", make_ac, "Alignment Calibration (arXiv 2406.03603): negative calibration with other forget captions (alpha) plus positive calibration (beta)", false, ""},
      {"hac", make_hac, "HAC (arXiv 2503.15166): AC under -d_c logits plus entailment calibration and norm regularization, each switchable", true,
       "calibrates hyperbolic distances and cones and needs model.kind meru; use 'ac' for CLIP"},
  };
  return kMethods;
}

const MethodInfo* find_method(const std::string& name) {
  for (const MethodInfo& m : methods()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

std::vector<std::string> method_names() {
  std::vector<std::string> out;
  for (const MethodInfo& m : methods()) out.emplace_back(m.name);
  return out;
}

MethodTraits traits(const MethodInfo& m) {
  config::UnlearnConfig cfg;
  cfg.method = m.name;
  const auto method = m.make(cfg);
  return {method->rows(), method->needs().partners, method->needs().reference, method->trains(),
          method->from_scratch()};
}

void check_method(const config::Config& c) {
  if (find_method(c.unlearn.method)) return;
  throw ConfigError(fmt::format("invalid value '{}' for unlearn.method: must be one of {}", c.unlearn.method,
                                fmt::join(method_names(), ", ")));
}

std::string methods_markdown() {
  auto rows = [](Rows r) { return r == Rows::kAll ? "forget + retain" : r == Rows::kRetain ? "retain" : "forget"; };
  std::string md = "| method | trains on | needs | what it does |\n| --- | --- | --- | --- |\n";
  for (const MethodInfo& m : methods()) {
    const MethodTraits t = traits(m);
    std::vector<std::string> needs;
    if (!t.trains) needs.emplace_back("no training: returns unlearn.original");
    if (t.from_scratch) needs.emplace_back("random weights (architecture from unlearn.original)");
    if (t.trains && !t.from_scratch) needs.emplace_back("unlearn.original");
    if (t.partners) needs.emplace_back("partner captions");
    if (t.reference) needs.emplace_back("the original's distances to the origin");
    if (m.lorentz_only) needs.emplace_back("MERU");
    md += fmt::format("| `{}` | {} | {} | {} |\n", m.name, t.trains ? rows(t.rows) : "—", fmt::join(needs, ", "), m.help);
  }
  return md;
}

}  // namespace runner::unlearn
