// Paired comparisons between methods and the verdicts on the HAC paper's claims (results.h,
// docs/results.md "Comparisons and claims"). Every comparison pairs runs on the same unit
// (original pretraining seed, forget set, unlearning seed); intervals and p-values from stats.h.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/files.h"
#include "sweep/labels.h"
#include "sweep/results.h"
#include "sweep/stats.h"

namespace runner::sweep {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// "Retain stays reasonable": HAC's retain top-1 within this many points of the original's.
constexpr double kRetainMargin = 10.0;

// The runs of one table row: one method on one original configuration.
struct Row {
  std::string model, variant, original;
  std::vector<const RunRecord*> runs;
  std::string name() const { return fmt::format("{} ({})", variant, original); }
};

double metric_of(const RunRecord& r, const std::string& m) {
  const auto it = r.metrics.find(m);
  return it == r.metrics.end() ? kNaN : it->second;
}

// unit -> value of `value` for the row's runs at forget-set size k (-1: every k).
using Value = std::function<double(const RunRecord&)>;
std::map<std::string, double> by_unit(const Row& row, const Value& value, int64_t k) {
  std::map<std::string, double> out;
  for (const RunRecord* r : row.runs) {
    if (k >= 0 && r->concepts != k) continue;
    out[r->unit()] = value(*r);
  }
  return out;
}

struct Comparison {
  std::string what, metric_name;
  int64_t k = -1;
  stats::PairedTest test;
  bool part = false;  // HAC against one of its ablations: the removed part's effect
  int decimals = 1;
};

// The values of two rows on the units both ran, in unit order.
std::pair<std::vector<double>, std::vector<double>> matched(const Row& a, const Row& b, const Value& value, int64_t k) {
  const auto ua = by_unit(a, value, k), ub = by_unit(b, value, k);
  std::pair<std::vector<double>, std::vector<double>> out;
  for (const auto& [unit, v] : ua) {
    const auto it = ub.find(unit);
    if (it == ub.end()) continue;
    out.first.push_back(v);
    out.second.push_back(it->second);
  }
  return out;
}

Comparison compare(const Row& a, const Row& b, const std::string& metric_name, const Value& value, int64_t k) {
  const auto [x, y] = matched(a, b, value, k);
  Comparison c;
  c.what = fmt::format("{} − {}", a.name(), b.name());
  c.metric_name = metric_name;
  c.k = k;
  c.test = stats::paired_test(x, y);
  return c;
}

std::string fixed(double v, int decimals) { return std::isnan(v) ? "—" : fmt::format("{:.{}f}", v, decimals); }
std::string f1(double v) { return fixed(v, 1); }
std::string p3(double v) { return std::isnan(v) ? "—" : v < 0.001 ? "<0.001" : fmt::format("{:.3f}", v); }
std::string interval(const stats::Interval& i, int decimals = 1) {
  if (i.n < 2 || std::isnan(i.lo)) return fmt::format("{} (n {})", fixed(i.mean, decimals), i.n);
  return fmt::format("{} [{}, {}]", fixed(i.mean, decimals), fixed(i.lo, decimals), fixed(i.hi, decimals));
}

// The rows of completed, non-trial unlearning runs; the main original of each model: the one
// most methods ran on.
struct Rows {
  std::vector<Row> rows;
  std::map<std::string, std::string> main_original;  // model -> original configuration
  std::set<int64_t> ks;
  const Row* find(const std::string& model, const std::string& variant, const std::string& original) const {
    for (const auto& r : rows) {
      if (r.model == model && r.variant == variant && r.original == original) return &r;
    }
    return nullptr;
  }
  const Row* main(const std::string& model, const std::string& variant) const {
    const auto it = main_original.find(model);
    return it == main_original.end() ? nullptr : find(model, variant, it->second);
  }
};

Rows rows_of(const std::vector<RunRecord>& runs) {
  Rows out;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index;
  for (const auto& r : runs) {
    if (r.kind != "unlearn" || r.stage == "trial" || r.run_status != train::RunStatus::kCompleted ||
        !r.setting.empty()) {
      continue;
    }
    const auto key = std::make_tuple(r.model, r.variant, r.original_config);
    auto [it, added] = index.emplace(key, out.rows.size());
    if (added) out.rows.push_back(Row{r.model, r.variant, r.original_config, {}});
    out.rows[it->second].runs.push_back(&r);
    out.ks.insert(r.concepts);
  }
  std::map<std::string, std::map<std::string, int>> variants;  // model -> original -> variants
  for (const auto& row : out.rows) ++variants[row.model][row.original];
  for (const auto& [model, per] : variants) {
    int best = -1;
    for (const auto& [original, n] : per) {
      if (n > best) {
        best = n;
        out.main_original[model] = original;
      }
    }
  }
  return out;
}

const Value kForget = [](const RunRecord& r) { return metric_of(r, "zero_shot.forget_top1"); };
const Value kRetain = [](const RunRecord& r) { return metric_of(r, "zero_shot.retain_top1"); };

// The compared metrics: accuracy for every pair; between two MERU rows also the hierarchy values
// HAC's parts act on. Paired runs share their original, so a difference of the values after
// unlearning is also the difference of their changes.
struct Metric {
  const char* name;
  const char* key;
  bool meru_only;
  int decimals;
};
const Metric kPairedMetrics[] = {
    {"forget top-1", "zero_shot.forget_top1", false, 1},
    {"retain top-1", "zero_shot.retain_top1", false, 1},
    {"forget angle margin (rad)", "hierarchy.forget.cone_margin", true, 3},
    {"retain angle margin (rad)", "hierarchy.retain.cone_margin", true, 3},
    {"forget in own cone", "hierarchy.forget.own_cone", true, 1},
    {"retain in own cone", "hierarchy.retain.own_cone", true, 1},
    {"forget image dist0", "hierarchy.forget.image_dist0", true, 3},
    {"retain image dist0", "hierarchy.retain.image_dist0", true, 3},
};

// ---- table_paired ------------------------------------------------------------------------------

std::vector<Comparison> paired_table(const Rows& rows) {
  struct Pair {
    const Row* a;
    const Row* b;
    bool part;
  };
  std::vector<Pair> pairs;
  const Row* hac = rows.main("meru", "hac");
  const Row* ac = rows.main("clip", "ac");
  if (hac != nullptr && ac != nullptr) pairs.push_back({hac, ac, false});
  if (hac != nullptr) {
    for (const char* ablation : {"hac-entcal", "hac-norm", "hac-both"}) {
      if (const Row* a = rows.main("meru", ablation)) pairs.push_back({hac, a, true});
    }
  }
  for (const auto& row : rows.rows) {
    if (row.variant == "retrain") continue;
    if (const Row* rt = rows.find(row.model, "retrain", row.original)) pairs.push_back({&row, rt, false});
  }
  std::vector<Comparison> out;
  for (const auto& [a, b, part] : pairs) {
    for (const Metric& m : kPairedMetrics) {
      if (m.meru_only && (a->model != "meru" || b->model != "meru")) continue;
      const std::string key = m.key;
      const Value value = [key](const RunRecord& r) { return metric_of(r, key); };
      std::vector<int64_t> ks{-1};  // every size pooled; per size: accuracy only
      if (!m.meru_only) ks.insert(ks.end(), rows.ks.begin(), rows.ks.end());
      for (int64_t k : ks) {
        out.push_back(compare(*a, *b, m.name, value, k));
        out.back().part = part;
        out.back().decimals = m.decimals;
      }
    }
  }
  return out;
}

// ---- claims ------------------------------------------------------------------------------------

struct Claim {
  std::string claim, comparison, rule;
  stats::Interval diff;    // the difference's mean and 95 % interval (paired claims)
  std::string difference;  // "mean [lo, hi]"
  int64_t n = 0;
  double p = kNaN;         // two-sided p of the claim's own null (its threshold), before Holm
  stats::Verdict side = stats::Verdict::kInconclusive;  // from the interval alone
  bool tested = false;
  std::string note;
};

Claim untested(const std::string& claim, const std::string& why) {
  Claim c;
  c.claim = claim;
  c.note = why;
  return c;
}

// A paired claim "a - b is below (or above) threshold": the interval of the differences, and the
// paired-t p of the differences against the threshold.
Claim judge(const std::string& claim, const std::string& comparison, const std::string& rule,
            const std::vector<double>& a, const std::vector<double>& b, double threshold, bool below) {
  Claim c;
  c.claim = claim;
  c.comparison = comparison;
  c.rule = rule;
  const stats::PairedTest t = stats::paired_test(a, b);
  std::vector<double> shifted = b;
  for (double& v : shifted) v += threshold;
  c.tested = t.n >= 2;
  c.diff = t.diff;
  c.difference = interval(t.diff);
  c.n = t.n;
  c.p = stats::paired_test(a, shifted).p_t;
  c.side = c.tested ? stats::verdict(t.diff.lo, t.diff.hi, threshold, below) : stats::Verdict::kInconclusive;
  if (!c.tested) c.note = "fewer than 2 matched units";
  return c;
}

const char* kBelowZero = "supported when the 95 % interval lies below 0; contradicted when above 0";

std::vector<Claim> claims(const Rows& rows) {
  std::vector<Claim> out;
  const Row* hac = rows.main("meru", "hac");
  const Row* ac = rows.main("clip", "ac");
  const Row* none = rows.main("meru", "none");
  // 1. HAC forgets more than AC.
  if (hac != nullptr && ac != nullptr) {
    const auto [x, y] = matched(*hac, *ac, kForget, -1);
    out.push_back(judge("HAC forgets more than AC",
                        "forget top-1, HAC (MERU) − AC (CLIP), every forget-set size, matched units", kBelowZero, x, y,
                        0.0, true));
  } else {
    out.push_back(untested("HAC forgets more than AC", "the sweep has no hac (MERU) or ac (CLIP) row"));
  }
  // 2. Retain stays reasonable.
  if (hac != nullptr && none != nullptr) {
    const auto [x, y] = matched(*hac, *none, kRetain, -1);
    out.push_back(judge("HAC keeps retain accuracy reasonable",
                        "retain top-1, HAC − the original (none), same MERU originals, every size",
                        fmt::format("supported when the interval lies above −{0:g} points (within {0:g} of the "
                                    "original); contradicted when below −{0:g}", kRetainMargin),
                        x, y, -kRetainMargin, false));
  } else {
    out.push_back(untested("HAC keeps retain accuracy reasonable", "the sweep has no hac or none row on MERU"));
  }
  // 3. The advantage grows with the number of concepts: (HAC − AC) at the largest k minus at the
  // smallest k, unpaired (different forget sets).
  if (hac != nullptr && ac != nullptr && rows.ks.size() >= 2) {
    const int64_t k0 = *rows.ks.begin(), k1 = *rows.ks.rbegin();
    auto diffs = [&](int64_t k) {
      const auto [x, y] = matched(*hac, *ac, kForget, k);
      std::vector<double> d;
      for (size_t i = 0; i < x.size(); ++i) d.push_back(x[i] - y[i]);
      return d;
    };
    const stats::WelchTest w = stats::welch_test(diffs(k1), diffs(k0));
    Claim c;
    c.claim = "HAC's forgetting advantage over AC grows with the number of concepts";
    c.comparison = fmt::format("(HAC − AC forget top-1) at k = {} minus at k = {}, Welch interval (forget sets differ "
                               "between sizes)", k1, k0);
    c.rule = "supported when the interval lies below 0 (the gap widens in HAC's favour); contradicted when above 0";
    c.tested = w.na >= 2 && w.nb >= 2;
    c.difference = std::isnan(w.lo) ? f1(w.diff) : fmt::format("{} [{}, {}]", f1(w.diff), f1(w.lo), f1(w.hi));
    c.n = std::min(w.na, w.nb);
    c.p = w.p;
    c.side = c.tested ? stats::verdict(w.lo, w.hi, 0.0, true) : stats::Verdict::kInconclusive;
    if (!c.tested) c.note = "fewer than 2 matched units at a size";
    out.push_back(c);
  } else {
    out.push_back(untested("HAC's forgetting advantage over AC grows with the number of concepts",
                           "needs hac and ac rows at two or more forget-set sizes"));
  }
  // 4. Hierarchy: HAC moves forget images out of their captions' cones more than retain images.
  if (hac != nullptr) {
    const Value specific = [](const RunRecord& r) {
      const double f = metric_of(r, "hierarchy.forget.own_cone") - metric_of(r, "before.hierarchy.forget.own_cone");
      const double k = metric_of(r, "hierarchy.retain.own_cone") - metric_of(r, "before.hierarchy.retain.own_cone");
      return f - k;
    };
    std::vector<double> x;
    for (const auto& [u, v] : by_unit(*hac, specific, -1)) x.push_back(v);
    out.push_back(judge("HAC reorganises the hierarchy for the forgotten concepts",
                        "per HAC run: change of the forget images' own-cone share minus the retain images' change "
                        "(percentage points), against 0",
                        "supported when the interval lies below 0 (forget images leave their cones more than retain "
                        "images); contradicted when above 0. The Euclidean side (CLIP) has no cones to compare",
                        x, std::vector<double>(x.size(), 0.0), 0.0, true));
  } else {
    out.push_back(untested("HAC reorganises the hierarchy for the forgotten concepts", "the sweep has no hac row"));
  }
  // 5. Each ablation: does the removed part help? Forget and retain both count.
  for (const char* ablation : {"hac-entcal", "hac-norm", "hac-both"}) {
    const std::string name = std::string(ablation) == "hac-entcal" ? "HAC's entailment calibration helps"
                             : std::string(ablation) == "hac-norm" ? "HAC's norm regularisation helps"
                                                                   : "HAC's two hyperbolic parts together help";
    const Row* a = rows.main("meru", ablation);
    if (hac == nullptr || a == nullptr) {
      out.push_back(untested(name, std::string("the sweep has no ") + ablation + " row"));
      continue;
    }
    const auto [fx, fy] = matched(*hac, *a, kForget, -1);
    const auto [rx, ry] = matched(*hac, *a, kRetain, -1);
    const stats::PairedTest tf = stats::paired_test(fx, fy), tr = stats::paired_test(rx, ry);
    Claim c;
    c.claim = name;
    c.comparison = fmt::format("HAC − {}: forget top-1 {} (retain top-1 {}), every size", ablation, interval(tf.diff),
                               interval(tr.diff));
    c.rule = "supported when forget improves (interval below 0) or retain improves (above 0) and neither worsens; "
             "contradicted when one worsens and neither improves; p: the smaller of the two paired-t p, doubled";
    c.tested = tf.n >= 2;
    c.difference = interval(tf.diff);
    c.n = tf.n;
    c.p = std::min(1.0, 2.0 * std::min(std::isnan(tf.p_t) ? 1.0 : tf.p_t, std::isnan(tr.p_t) ? 1.0 : tr.p_t));
    const bool better = tf.diff.hi < 0.0 || tr.diff.lo > 0.0;
    const bool worse = tf.diff.lo > 0.0 || tr.diff.hi < 0.0;
    c.side = !c.tested           ? stats::Verdict::kInconclusive
             : better && !worse  ? stats::Verdict::kSupported
             : worse && !better  ? stats::Verdict::kContradicted
                                 : stats::Verdict::kInconclusive;
    if (!c.tested) c.note = "fewer than 2 matched units";
    out.push_back(c);
  }
  // 6. Curvature: HAC's retain cost (HAC − none on the same original) at the largest fixed
  // curvature minus at the smallest; each curvature has its own originals.
  {
    std::map<double, std::string> fixed;  // curvature -> original configuration
    for (const auto& row : rows.rows) {
      if (row.model != "meru" || row.variant != "hac") continue;
      const auto pos = row.original.find("curvature ");
      if (pos == std::string::npos || row.original.find("learned") != std::string::npos) continue;
      try {
        fixed[std::stod(row.original.substr(pos + 10))] = row.original;
      } catch (const std::exception&) {
      }
    }
    const Row* h0 = fixed.size() >= 2 ? rows.find("meru", "hac", fixed.begin()->second) : nullptr;
    const Row* h1 = fixed.size() >= 2 ? rows.find("meru", "hac", fixed.rbegin()->second) : nullptr;
    const Row* n0 = fixed.size() >= 2 ? rows.find("meru", "none", fixed.begin()->second) : nullptr;
    const Row* n1 = fixed.size() >= 2 ? rows.find("meru", "none", fixed.rbegin()->second) : nullptr;
    const std::string name = "Curvature changes HAC's retain cost (the paper's future work)";
    if (h0 && h1 && n0 && n1) {
      // The cost per unit at each curvature, matched across curvatures on (seed of the original,
      // forget set, unlearning seed).
      auto cost = [&](const Row& h, const Row& n) {
        std::map<std::string, double> out_cost;
        const auto a = by_unit(h, kRetain, -1), b = by_unit(n, kRetain, -1);
        for (const auto& [u, v] : a) {
          if (b.count(u)) out_cost[u] = v - b.at(u);
        }
        return out_cost;
      };
      const auto c0 = cost(*h0, *n0), c1 = cost(*h1, *n1);
      std::vector<double> x, y;
      for (const auto& [u, v] : c1) {
        if (c0.count(u)) {
          x.push_back(v);
          y.push_back(c0.at(u));
        }
      }
      Claim c = judge(name,
                      fmt::format("(HAC − none) retain top-1 at c = {:g} minus at c = {:g}, matched units",
                                  fixed.rbegin()->first, fixed.begin()->first),
                      "supported when the interval excludes 0 (either sign: the paper states no direction); never "
                      "contradicted",
                      x, y, 0.0, true);
      c.side = c.tested && (c.diff.hi < 0.0 || c.diff.lo > 0.0) ? stats::Verdict::kSupported
                                                                : stats::Verdict::kInconclusive;
      out.push_back(c);
    } else {
      out.push_back(untested(name, "needs hac and none rows on MERU originals of two or more fixed curvatures"));
    }
  }
  return out;
}

}  // namespace

void write_comparisons(const std::vector<RunRecord>& runs, const std::string& out, std::vector<std::string>& files) {
  const Rows rows = rows_of(runs);
  // table_paired
  const std::vector<Comparison> table = paired_table(rows);
  std::string md =
      "| comparison | metric | k | n | mean difference [95 % t interval] | paired t p | sign-flip p |\n"
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
  std::string csv = "comparison,metric,k,n,mean,lo,hi,p_t,p_perm,exact\n";
  for (const auto& c : table) {
    const std::string k = c.k < 0 ? "all" : std::to_string(c.k);
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", c.what, c.metric_name, k, c.test.n,
                      interval(c.test.diff, c.decimals), p3(c.test.p_t), p3(c.test.p_perm));
    csv += fmt::format("\"{}\",{},{},{},{},{},{},{},{},{}\n", c.what, c.metric_name, k, c.test.n, c.test.diff.mean,
                       c.test.diff.lo, c.test.diff.hi, c.test.p_t, c.test.p_perm, c.test.exact ? 1 : 0);
  }
  md += "\nDifferences a − b: accuracy and cone shares in percentage points, angle margins in radians, dist0 in "
        "geodesic units (MERU pairs only for the hierarchy rows), paired on units (original pretraining seed, forget set, "
        "unlearning seed) that both rows ran; k = all pools every forget-set size. Interval: 95 % Student t over "
        "the paired differences; p-values two-sided, paired t and sign-flip permutation (exact for n ≤ 20, else "
        "20 000 seeded draws), not adjusted for multiple comparisons (claims.md adjusts its own with Holm).\n";
  core::write_file_atomically((fs::path(out) / "table_paired.md").string(), md);
  core::write_file_atomically((fs::path(out) / "table_paired.csv").string(), csv);
  files.push_back("table_paired.md");
  files.push_back("table_paired.csv");

  // table_parts: what each of HAC's hyperbolic parts does, from the same comparisons (HAC minus the
  // ablation without that part, every forget-set size), one row per ablation.
  std::string parts = "| comparison | n |";
  std::string sep = "| --- | ---: |";
  for (const Metric& m : kPairedMetrics) {
    parts += fmt::format(" {} |", m.name);
    sep += " ---: |";
  }
  parts += "\n" + sep + "\n";
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, const Comparison*>> by_what;
  for (const auto& c : table) {
    if (!c.part || c.k >= 0) continue;
    if (!by_what.count(c.what)) order.push_back(c.what);
    by_what[c.what][c.metric_name] = &c;
  }
  for (const auto& what : order) {
    const auto& cells = by_what[what];
    int64_t n = 0;
    std::string line;
    for (const Metric& m : kPairedMetrics) {
      const auto it = cells.find(m.name);
      if (it == cells.end()) {
        line += " — |";
        continue;
      }
      n = std::max(n, it->second->test.n);
      const bool clear = it->second->test.diff.hi < 0.0 || it->second->test.diff.lo > 0.0;
      const std::string text = interval(it->second->test.diff, m.decimals);
      line += " " + (clear ? "**" + text + "**" : text) + " |";
    }
    parts += fmt::format("| {} | {} |{}\n", what, n, line);
  }
  if (order.empty()) parts += "| (no hac row with an ablation row) | | | | | | | | | |\n";
  parts += "\nEach cell: HAC minus the ablation without that part (hac-entcal: without entailment calibration; hac-norm: "
           "without norm regularisation; hac-both: without both), mean paired difference [95 % t interval] over the units "
           "both ran, every forget-set size pooled; **bold** when the interval excludes 0. Accuracy and cone shares in "
           "percentage points, angle margins (oxy_angle − half-aperture, > 0 outside the caption's cone) in radians, "
           "dist0 in geodesic units; negative forget top-1 = the part makes the model forget more. Not adjusted for "
           "multiple comparisons (table_paired.md has the p-values).\n";
  core::write_file_atomically((fs::path(out) / "table_parts.md").string(), parts);
  files.push_back("table_parts.md");

  // claims: the interval gives the side; the family of claims is guarded by Holm's adjustment of
  // their p-values, so a verdict other than inconclusive also needs an adjusted p below 0.05.
  std::vector<Claim> cs = claims(rows);
  std::vector<double> ps;
  for (const auto& c : cs) ps.push_back(c.tested ? c.p : kNaN);
  const std::vector<double> adjusted = stats::holm(ps);
  std::string cm =
      "| claim | comparison | difference [95 % interval] | n | p (Holm) | verdict |\n"
      "| --- | --- | ---: | ---: | ---: | --- |\n";
  std::string rules;
  for (size_t i = 0; i < cs.size(); ++i) {
    const Claim& c = cs[i];
    if (!c.tested) {
      cm += fmt::format("| {} | {} | — | {} | — | not tested ({}) |\n", c.claim, c.comparison.empty() ? "—" : c.comparison,
                        c.n, c.note);
      continue;
    }
    const stats::Verdict v = !std::isnan(adjusted[i]) && adjusted[i] < 0.05 ? c.side : stats::Verdict::kInconclusive;
    const std::string verdict =
        v == stats::Verdict::kInconclusive ? "inconclusive at this size" : stats::verdict_name(v);
    cm += fmt::format("| {} | {} | {} | {} | {} ({}) | **{}** |\n", c.claim, c.comparison, c.difference, c.n, p3(c.p),
                      p3(adjusted[i]), verdict);
    rules += fmt::format("* {}: {}.\n", c.claim, c.rule);
  }
  cm += "\nDifferences in percentage points. Units: (original pretraining seed, forget set, unlearning seed); "
        "HAC and its ablations run on the MERU original most methods share, AC on the CLIP one. p: two-sided "
        "paired-t p of the claim's own null (the difference equals its threshold; Welch for the growth claim), "
        "then in brackets Holm-adjusted over the claims tested. A verdict other than *inconclusive* needs both: the "
        "95 % interval of the difference on one side of the threshold, by the claim's rule below, and a Holm-adjusted "
        "p below 0.05. The rules, fixed before the run:\n\n" + rules;
  core::write_file_atomically((fs::path(out) / "claims.md").string(), cm);
  files.push_back("claims.md");
}

}  // namespace runner::sweep
