// The selection rule and trial outcomes (select.h).
#include "sweep/select.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/files.h"

namespace runner::sweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double number_at(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* k : path) {
    if (!at->is_object() || !at->contains(k)) return kNaN;
    at = &(*at)[k];
  }
  return at->is_number() ? at->get<double>() : kNaN;
}

}  // namespace

TrialOutcome read_trial(const std::string& dir, int64_t trial, const std::string& settings) {
  TrialOutcome t;
  t.trial = trial;
  t.settings = settings;
  t.dir = dir;
  t.forget = t.retain = t.retain_before = kNaN;
  const std::string path = (fs::path(dir) / "result.json").string();
  t.status = train::ResultFile::read_status(path);
  if (t.status != train::RunStatus::kCompleted) return t;
  try {
    const json r = json::parse(core::read_text_file(path));
    const json& m = r.contains("metrics") ? r["metrics"] : json::object();
    t.forget = number_at(m, {"zero_shot", "forget_top1"});
    t.retain = number_at(m, {"zero_shot", "retain_top1"});
    t.retain_before = number_at(m, {"before", "zero_shot", "retain_top1"});
  } catch (const std::exception&) {
    t.status = train::RunStatus::kFailed;  // unreadable: not a usable trial
  }
  return t;
}

int64_t choose_trial(std::vector<TrialOutcome>& trials, double retain_drop, std::string* note) {
  int64_t best = -1, fallback = -1;
  for (size_t i = 0; i < trials.size(); ++i) {
    TrialOutcome& t = trials[i];
    const bool done = t.status == train::RunStatus::kCompleted && !std::isnan(t.forget) && !std::isnan(t.retain);
    t.admissible = done && !std::isnan(t.retain_before) && t.retain >= t.retain_before - retain_drop;
    if (!done) continue;
    const auto k = static_cast<int64_t>(i);
    if (fallback < 0 || t.retain > trials[static_cast<size_t>(fallback)].retain ||
        (t.retain == trials[static_cast<size_t>(fallback)].retain && t.forget < trials[static_cast<size_t>(fallback)].forget)) {
      fallback = k;
    }
    if (!t.admissible) continue;
    if (best < 0) {
      best = k;
      continue;
    }
    const TrialOutcome& b = trials[static_cast<size_t>(best)];
    if (t.forget < b.forget - 1e-9 || (std::fabs(t.forget - b.forget) <= 1e-9 && t.retain > b.retain)) best = k;
  }
  if (note != nullptr) {
    *note = best >= 0       ? "lowest validation forget top-1 among trials within the retain drop"
            : fallback >= 0 ? "no trial kept retain within the drop: highest validation retain top-1"
                            : "no trial COMPLETED";
  }
  return best >= 0 ? best : fallback;
}

}  // namespace runner::sweep
