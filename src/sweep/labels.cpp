// Method and curvature labels (labels.h).
#include "sweep/labels.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "unlearn/registry.h"

namespace runner::sweep {

namespace fs = std::filesystem;

std::string method_label(const config::UnlearnConfig& u) {
  if (u.method != "hac") return u.method;
  if (!u.entcal && !u.norm) return "hac-both";
  if (!u.entcal) return "hac-entcal";
  if (!u.norm) return "hac-norm";
  return "hac";
}

int variant_rank(const std::string& label) {
  static const std::vector<std::string> order = [] {
    std::vector<std::string> o;
    for (const std::string& name : unlearn::method_names()) {
      o.push_back(name);
      if (name == "hac") {
        for (const char* v : {"hac-entcal", "hac-norm", "hac-both"}) o.emplace_back(v);
      }
    }
    return o;
  }();
  const auto it = std::find(order.begin(), order.end(), label);
  return static_cast<int>(it - order.begin());
}

std::string curvature_value(const config::ModelConfig& m) {
  return fmt::format("{}{}", m.curv_init, m.curv_learn ? " learned" : "");
}

std::string curvature_label(const config::ModelConfig& m) {
  return m.kind != "meru" ? "euclidean" : curvature_value(m);
}

std::string original_curvature_label(const std::string& model_path) {
  const fs::path cfg = fs::path(model_path).parent_path() / "config.yaml";
  if (model_path.empty() || !fs::exists(cfg)) return "";
  try {
    return curvature_label(config::load_config(cfg.string()).model);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace runner::sweep
