// Grid expansion (grid.h).
#include "sweep/grid.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "sweep/labels.h"
#include "unlearn/registry.h"

namespace runner::sweep {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string key_of(const std::string& assignment) { return assignment.substr(0, assignment.find('=')); }
std::string value_of(const std::string& assignment) { return assignment.substr(assignment.find('=') + 1); }

// Letters, digits, '-', '_', '.' and '+' only, at most `max` characters.
std::string slug(const std::string& s, size_t max) {
  std::string out;
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    out += (std::isalnum(u) || ch == '-' || ch == '_' || ch == '.' || ch == '+') ? ch : '_';
  }
  if (out.size() > max) out = out.substr(0, max);
  return out;
}

config::Config load(const std::string& base, const std::vector<std::string>& overrides, const std::string& source) {
  config::Config c =
      base.empty() ? config::parse_config("", source + " (defaults)", overrides) : config::load_config(base, overrides);
  unlearn::check_method(c);
  return c;
}

}  // namespace

std::string job_config_path(const Job& j) { return (fs::path(j.dir) / "sweep_job.yaml").string(); }

void write_job_config(const Job& j) {
  fs::create_directories(j.dir);
  core::write_file_atomically(job_config_path(j), config::to_yaml(j.cfg));
}

namespace {

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& a : parts) out += (out.empty() ? "" : ", ") + a;
  return out;
}

// An original's configuration without its seed: "meru tiny, curvature 1 learned".
std::string original_config(const config::ModelConfig& m) {
  return fmt::format("{} {}, curvature {}", m.kind, m.preset, curvature_label(m));
}

// Builds jobs from assignments: the originals they need (added to the grid once) and the points.
class Builder {
 public:
  Builder(const config::SweepSpec& spec, Grid& g) : spec_(spec), g_(g) {}

  // The point of `assignment` (the axes' overrides) plus `extra` point overrides, in `folder`.
  // Its group: the overrides in `group` (those of the selection axis).
  Job point(const config::Assignment& assignment, std::pair<size_t, size_t> group, const std::vector<std::string>& extra,
            const std::string& folder, const std::string& prefix) {
    std::vector<std::string> point_set = spec_.set, original_set = spec_.original_set;
    int64_t ranks = spec_.ranks;
    for (const auto& a : assignment) {
      const std::string key = key_of(a);
      if (key == "ranks") {
        try {
          ranks = std::stoll(value_of(a));
        } catch (const std::exception&) {
          ranks = 0;
        }
        if (ranks < 1) throw ConfigError(fmt::format("{}: ranks must be a positive integer, got '{}'", spec_.source, value_of(a)));
      } else if (starts_with(key, "original.")) {
        original_set.push_back(a.substr(std::string("original.").size()));
      } else {
        if (starts_with(key, "model.")) original_set.push_back(a);
        point_set.push_back(a);
      }
    }
    point_set.insert(point_set.end(), extra.begin(), extra.end());
    Job p;
    p.assignment = assignment;
    p.ranks = ranks;
    p.cfg = load(spec_.base, point_set, spec_.source);
    for (const auto& a : assignment) p.labels[key_of(a)] = value_of(a);
    for (const auto& a : extra) p.labels[key_of(a)] = value_of(a);
    // A point that names its original (e.g. a released checkpoint) keeps it; the others get the
    // original the spec's originals block trains for their pretraining keys.
    if (spec_.originals && p.cfg.unlearn.original.empty()) {
      Job o;
      o.original = true;
      o.cfg = load(spec_.original_base, original_set, spec_.source);
      o.id = fmt::format("{}-{}", slug(o.cfg.model.kind + "-c" + fmt::format("{}", o.cfg.model.curv_init) +
                                           (o.cfg.model.curv_learn ? "L" : ""), 40),
                         config::semantic_hash(o.cfg));
      o.dir = (fs::path(spec_.root) / "originals" / o.id).string();
      o.cfg.output.dir = o.dir;
      o.ranks = ranks;
      o.cost = static_cast<double>(o.cfg.train.steps * o.cfg.data.batch_size);
      o.labels["curvature"] = curvature_label(o.cfg.model);
      o.labels["original"] = o.id;
      o.labels["original_config"] = original_config(o.cfg.model);
      o.labels["original_seed"] = std::to_string(o.cfg.train.seed);
      auto [it, added] = original_index_.emplace(o.id, g_.originals.size());
      if (added) g_.originals.push_back(o);
      p.needs = static_cast<int64_t>(it->second);
      p.cfg.unlearn.original = (fs::path(o.dir) / "model.pt").string();
      p.labels["curvature"] = curvature_label(o.cfg.model);
      p.labels["original"] = o.id;
      p.labels["original_config"] = original_config(o.cfg.model);
      p.labels["original_seed"] = std::to_string(o.cfg.train.seed);
    }
    RUNNER_CHECK(!p.cfg.unlearn.original.empty(), ConfigError,
                 fmt::format("{}: unlearn.original is empty; set it in the base config or add an originals: block",
                             spec_.source));
    if (!p.labels.count("original")) p.labels["original"] = fs::path(p.cfg.unlearn.original).parent_path().filename().string();
    std::string forget;
    for (const auto& f : p.cfg.unlearn.forget) forget += (forget.empty() ? "" : "+") + f;
    p.labels["concepts"] = std::to_string(p.cfg.unlearn.forget.size());
    p.id = fmt::format("{}{}-{}-s{}-{}", prefix, slug(method_label(p.cfg.unlearn), 16),
                       slug(forget.empty() ? "none" : forget, 40), p.cfg.train.seed, config::semantic_hash(p.cfg));
    p.dir = (fs::path(g_.dir) / folder / p.id).string();
    p.cfg.output.dir = p.dir;
    const bool recipe = p.cfg.unlearn.method == "retrain";
    p.cost = static_cast<double>((recipe ? p.cfg.train.steps : p.cfg.unlearn.steps) * p.cfg.data.batch_size) + 1.0;
    const size_t end = std::min(group.second, assignment.size());
    p.group = joined({assignment.begin() + static_cast<std::ptrdiff_t>(std::min(group.first, end)),
                      assignment.begin() + static_cast<std::ptrdiff_t>(end)});
    return p;
  }

  // Adds `p` unless a point with its run id is there already.
  void add(std::vector<Job>& list, std::map<std::string, size_t>& index, Job p) {
    auto [it, added] = index.emplace(p.id, list.size());
    if (added) list.push_back(std::move(p));
  }

 private:
  const config::SweepSpec& spec_;
  Grid& g_;
  std::map<std::string, size_t> original_index_;
};

// Keys a selection may not set: they would change the original or the job layout.
void check_select_keys(const config::SweepSpec& spec, const std::vector<std::string>& assignments, const char* where) {
  for (const auto& a : assignments) {
    const std::string key = key_of(a);
    if (starts_with(key, "model.") || starts_with(key, "original.") || key == "ranks" || starts_with(key, "output.") ||
        key == "eval.split") {
      throw ConfigError(fmt::format("{}: select {} sets '{}': a selection may not change the original, the ranks, "
                                    "the output or the evaluated split", spec.source, where, key));
    }
  }
}

}  // namespace

Grid expand(const config::SweepSpec& spec) {
  Grid g;
  g.name = spec.name;
  g.dir = (fs::path(spec.root) / spec.name).string();
  // Each point's overrides, and where those of the selection axis (select.axis, default the first:
  // its selection group) begin and end.
  using Span = std::pair<size_t, size_t>;
  const auto group_axis = static_cast<size_t>(spec.select.enabled ? spec.select.axis : 0);
  std::vector<std::pair<config::Assignment, Span>> points{{{}, {0, 0}}};
  for (size_t axis = 0; axis < spec.axes.size(); ++axis) {
    std::vector<std::pair<config::Assignment, Span>> next;
    for (const auto& [p, span] : points) {
      for (const auto& a : spec.axes[axis]) {
        config::Assignment merged = p;
        merged.insert(merged.end(), a.begin(), a.end());
        next.emplace_back(merged, axis == group_axis ? Span{p.size(), merged.size()} : span);
      }
    }
    points = next;
  }
  Builder b(spec, g);
  std::map<std::string, size_t> point_index;
  std::vector<Job> plain;
  std::vector<Span> plain_span;
  for (const auto& [assignment, span] : points) {
    const size_t before = plain.size();
    b.add(plain, point_index, b.point(assignment, span, {}, "runs", ""));
    if (plain.size() > before) plain_span.push_back(span);
  }
  if (!spec.select.enabled) {
    g.points = std::move(plain);
    return g;
  }

  // Selection: one group per assignment on the selection axis, in grid order; its trials start from
  // its first point.
  g.retain_drop = spec.select.retain_drop;
  check_select_keys(spec, spec.select.set, "set");
  std::map<std::string, size_t> group_of;
  std::vector<const Job*> first_point;
  std::vector<Span> first_span;
  for (size_t i = 0; i < plain.size(); ++i) {
    const Job& p = plain[i];
    if (group_of.emplace(p.group, g.selection.size()).second) {
      first_span.push_back(plain_span[i]);
      GroupSelection s;
      s.group = p.group;
      s.method = p.cfg.unlearn.method;
      const auto& fixed = spec.select.methods_without_selection;
      s.fixed = std::find(fixed.begin(), fixed.end(), s.method) != fixed.end();
      g.selection.push_back(s);
      first_point.push_back(&p);
    }
  }
  // Ablations: a group whose assignment is another group's plus switches of select.ablations
  // runs with that group's choice.
  if (!spec.select.ablations.empty()) {
    auto items = [&](size_t k) {
      const auto& a = first_point[k]->assignment;
      const size_t end = std::min(first_span[k].second, a.size());
      return std::set<std::string>(a.begin() + static_cast<std::ptrdiff_t>(std::min(first_span[k].first, end)),
                                   a.begin() + static_cast<std::ptrdiff_t>(end));
    };
    const auto& ablations = spec.select.ablations;
    for (size_t k = 0; k < g.selection.size(); ++k) {
      if (g.selection[k].fixed) continue;
      std::set<std::string> base;
      for (const auto& a : items(k)) {
        if (std::find(ablations.begin(), ablations.end(), key_of(a)) == ablations.end()) base.insert(a);
      }
      if (base.size() == items(k).size()) continue;
      for (size_t j = 0; j < g.selection.size(); ++j) {
        if (j != k && items(j) == base) g.selection[k].follows = static_cast<int64_t>(j);
      }
      RUNNER_CHECK(g.selection[k].follows >= 0 && !g.selection[static_cast<size_t>(g.selection[k].follows)].fixed,
                   ConfigError,
                   fmt::format("{}: select.ablations: group [{}] switches a part off, but no selected group has its "
                               "assignment without those keys (the method it ablates)", spec.source, g.selection[k].group));
    }
  }
  bool all_ended = true;
  for (size_t k = 0; k < g.selection.size(); ++k) {
    GroupSelection& s = g.selection[k];
    if (s.fixed || s.follows >= 0) continue;
    s.draws = config::select_trials(spec, s.method);
    const auto& draws = s.draws;
    for (size_t t = 0; t < draws.size(); ++t) {
      check_select_keys(spec, draws[t], "space");
      std::vector<std::string> extra = spec.select.set;
      extra.insert(extra.end(), draws[t].begin(), draws[t].end());
      extra.push_back("eval.split=val");
      Job j = b.point(first_point[k]->assignment, first_span[k], extra, "trials", fmt::format("t{}-", t));
      RUNNER_CHECK(j.cfg.data.val_fraction > 0.0, ConfigError,
                   fmt::format("{}: select needs a validation split: set data.val_fraction > 0 in the base config "
                               "and the originals' (trials are chosen on it, never on test)", spec.source));
      j.labels["stage"] = "trial";
      j.labels["trial"] = std::to_string(t);
      j.labels["group"] = s.group;
      j.labels["settings"] = joined(draws[t]);
      s.jobs.push_back(g.trials.size());
      s.trials.push_back(read_trial(j.dir, static_cast<int64_t>(t), joined(draws[t])));
      const train::RunStatus st = s.trials.back().status;
      all_ended = all_ended && (st == train::RunStatus::kCompleted || st == train::RunStatus::kFailed);
      g.trials.push_back(std::move(j));
    }
  }
  if (!all_ended) {
    g.selecting = true;
    g.points = g.trials;
    return g;
  }
  for (auto& s : g.selection) {
    if (s.fixed || s.follows >= 0) continue;
    s.chosen = choose_trial(s.trials, spec.select.retain_drop, &s.note);
    if (s.chosen < 0) {
      throw ConfigError(fmt::format("{}: select: no trial of group [{}] COMPLETED (see {}/trials); remove the "
                                    "failed trials' folders to run them again", spec.source, s.group, g.dir));
    }
  }
  point_index.clear();
  for (const auto& [assignment, span] : points) {
    Job p0 = b.point(assignment, span, {}, "runs", "");
    const GroupSelection& own = g.selection[group_of.at(p0.group)];
    const GroupSelection& s = own.follows >= 0 ? g.selection[static_cast<size_t>(own.follows)] : own;
    if (s.fixed) {
      b.add(g.points, point_index, std::move(p0));
      continue;
    }
    const Job& trial = g.trials[s.jobs[static_cast<size_t>(s.chosen)]];
    Job p = b.point(assignment, span, s.draws[static_cast<size_t>(s.chosen)], "runs", "");
    p.labels["group"] = own.group;
    p.labels["selected"] = trial.labels.at("settings");
    if (own.follows >= 0) p.labels["selected_from"] = s.group;
    p.labels["selected_trial"] = std::to_string(s.chosen);
    b.add(g.points, point_index, std::move(p));
  }
  return g;
}

void write_selection(const Grid& g) {
  if (g.selection.empty()) return;
  nlohmann::ordered_json j;
  j["rule"] = fmt::format("among COMPLETED trials whose validation retain top-1 >= the original's - {} points, the "
                          "lowest validation forget top-1; ties: higher retain, then earlier trial; none within the "
                          "drop: the highest retain", g.retain_drop);
  j["selecting"] = g.selecting;
  std::string md = fmt::format("# Selection on the validation split\n\nRule: {}.\n\n", j["rule"].get<std::string>());
  md += "| group | trial | settings | status | val forget | val retain | original val retain | admissible | chosen |\n";
  md += "| --- | ---: | --- | --- | ---: | ---: | ---: | --- | --- |\n";
  auto pct = [](double v) { return std::isnan(v) ? std::string("—") : fmt::format("{:.1f}", v); };
  auto number = [](double v) { return std::isnan(v) ? nlohmann::ordered_json() : nlohmann::ordered_json(v); };
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  for (const auto& s : g.selection) {
    nlohmann::ordered_json e;
    e["group"] = s.group;
    e["method"] = s.method;
    e["fixed"] = s.fixed;
    if (s.follows >= 0) e["follows"] = g.selection[static_cast<size_t>(s.follows)].group;
    e["chosen"] = s.chosen;
    e["note"] = s.note;
    nlohmann::ordered_json trials = nlohmann::ordered_json::array();
    for (size_t t = 0; t < s.trials.size(); ++t) {
      const TrialOutcome& o = s.trials[t];
      nlohmann::ordered_json tj;
      tj["trial"] = o.trial;
      tj["settings"] = o.settings;
      tj["dir"] = o.dir;
      tj["status"] = train::to_string(o.status);
      tj["val_forget_top1"] = number(o.forget);
      tj["val_retain_top1"] = number(o.retain);
      tj["original_val_retain_top1"] = number(o.retain_before);
      tj["admissible"] = o.admissible;
      trials.push_back(tj);
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", s.group, o.trial, o.settings,
                        train::to_string(o.status), pct(o.forget), pct(o.retain), pct(o.retain_before),
                        o.admissible ? "yes" : "no", static_cast<int64_t>(t) == s.chosen ? "**chosen**" : "");
    }
    if (s.fixed) md += fmt::format("| {} | — | run as it is | | | | | | |\n", s.group);
    if (s.follows >= 0) {
      const GroupSelection& lead = g.selection[static_cast<size_t>(s.follows)];
      md += fmt::format("| {} | — | the ablation of [{}]: its chosen setting{} | | | | | | |\n", s.group, lead.group,
                        lead.chosen >= 0 ? " (" + lead.trials[static_cast<size_t>(lead.chosen)].settings + ")" : "");
    }
    e["trials"] = trials;
    groups.push_back(e);
  }
  j["groups"] = groups;
  // The choices alone, one line per selected group (what the README pastes).
  std::string chosen = "| group | setting chosen on the validation split | val forget | val retain | note |\n"
                       "| --- | --- | ---: | ---: | --- |\n";
  for (const auto& s : g.selection) {
    if (s.fixed) continue;
    const GroupSelection& lead = s.follows >= 0 ? g.selection[static_cast<size_t>(s.follows)] : s;
    if (lead.chosen < 0) {
      chosen += fmt::format("| {} | (trials not ended) | | | |\n", s.group);
      continue;
    }
    const TrialOutcome& o = lead.trials[static_cast<size_t>(lead.chosen)];
    chosen += fmt::format("| {} | {} | {} | {} | {} |\n", s.group, o.settings, pct(o.forget), pct(o.retain),
                          s.follows >= 0 ? "ablation: the choice of [" + lead.group + "]" : s.note);
  }
  fs::create_directories(g.dir);
  core::write_file_atomically((fs::path(g.dir) / "selection_chosen.md").string(), chosen);
  core::write_file_atomically((fs::path(g.dir) / "selection.json").string(), j.dump(2) + "\n");
  core::write_file_atomically((fs::path(g.dir) / "selection.md").string(), md);
}

}  // namespace runner::sweep
