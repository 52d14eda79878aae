// Grid expansion (grid.h).
#include "sweep/grid.h"

#include <fmt/format.h>

#include <filesystem>

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

Grid expand(const config::SweepSpec& spec) {
  Grid g;
  g.name = spec.name;
  g.dir = (fs::path(spec.root) / spec.name).string();
  std::vector<config::Assignment> points{{}};
  for (const auto& axis : spec.axes) {
    std::vector<config::Assignment> next;
    for (const auto& p : points) {
      for (const auto& a : axis) {
        config::Assignment merged = p;
        merged.insert(merged.end(), a.begin(), a.end());
        next.push_back(merged);
      }
    }
    points = next;
  }
  std::map<std::string, size_t> original_index, point_index;
  for (const auto& assignment : points) {
    std::vector<std::string> point_set = spec.set, original_set = spec.original_set;
    int64_t ranks = spec.ranks;
    for (const auto& a : assignment) {
      const std::string key = key_of(a);
      if (key == "ranks") {
        try {
          ranks = std::stoll(value_of(a));
        } catch (const std::exception&) {
          ranks = 0;
        }
        if (ranks < 1) throw ConfigError(fmt::format("{}: ranks must be a positive integer, got '{}'", spec.source, value_of(a)));
      } else if (starts_with(key, "original.")) {
        original_set.push_back(a.substr(std::string("original.").size()));
      } else {
        if (starts_with(key, "model.")) original_set.push_back(a);
        point_set.push_back(a);
      }
    }
    Job p;
    p.assignment = assignment;
    p.ranks = ranks;
    p.cfg = load(spec.base, point_set, spec.source);
    for (const auto& a : assignment) p.labels[key_of(a)] = value_of(a);
    // A point that names its original (e.g. a released checkpoint) keeps it; the others get the
    // original the spec's originals block trains for their pretraining keys.
    if (spec.originals && p.cfg.unlearn.original.empty()) {
      Job o;
      o.original = true;
      o.cfg = load(spec.original_base, original_set, spec.source);
      o.id = fmt::format("{}-{}", slug(o.cfg.model.kind + "-c" + fmt::format("{}", o.cfg.model.curv_init) +
                                           (o.cfg.model.curv_learn ? "L" : ""), 40),
                         config::semantic_hash(o.cfg));
      o.dir = (fs::path(spec.root) / "originals" / o.id).string();
      o.cfg.output.dir = o.dir;
      o.ranks = ranks;
      o.cost = static_cast<double>(o.cfg.train.steps * o.cfg.data.batch_size);
      o.labels["curvature"] = curvature_label(o.cfg.model);
      auto [it, added] = original_index.emplace(o.id, g.originals.size());
      if (added) g.originals.push_back(o);
      p.needs = static_cast<int64_t>(it->second);
      p.cfg.unlearn.original = (fs::path(o.dir) / "model.pt").string();
      p.labels["curvature"] = curvature_label(o.cfg.model);
    }
    RUNNER_CHECK(!p.cfg.unlearn.original.empty(), ConfigError,
                 fmt::format("{}: unlearn.original is empty; set it in the base config or add an originals: block",
                             spec.source));
    std::string forget;
    for (const auto& f : p.cfg.unlearn.forget) forget += (forget.empty() ? "" : "+") + f;
    p.labels["concepts"] = std::to_string(p.cfg.unlearn.forget.size());
    p.id = fmt::format("{}-{}-s{}-{}", slug(method_label(p.cfg.unlearn), 16), slug(forget.empty() ? "none" : forget, 40),
                       p.cfg.train.seed, config::semantic_hash(p.cfg));
    p.dir = (fs::path(g.dir) / "runs" / p.id).string();
    p.cfg.output.dir = p.dir;
    const bool recipe = p.cfg.unlearn.method == "retrain";
    p.cost = static_cast<double>((recipe ? p.cfg.train.steps : p.cfg.unlearn.steps) * p.cfg.data.batch_size) + 1.0;
    auto [it, added] = point_index.emplace(p.id, g.points.size());
    if (added) g.points.push_back(p);
  }
  return g;
}

}  // namespace runner::sweep
