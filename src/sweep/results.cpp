// Collection of results (results.h): runs, long CSV, pivoted tables.
#include "sweep/results.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "config/config.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "sweep/labels.h"
#include "sweep/stats.h"

namespace runner::sweep {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void flatten(const json& j, const std::string& prefix, std::map<std::string, double>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else if (j.is_number()) {
    out[prefix] = j.get<double>();
  } else if (j.is_null()) {
    out[prefix] = kNaN;
  }
}

RunRecord record_of(const json& r, const fs::path& file, const fs::path& root) {
  RunRecord rec;
  rec.abs_dir = file.parent_path().string();
  rec.dir = fs::relative(file.parent_path(), root).string();
  rec.status = r.value("status", "");
  rec.run_status = train::parse_run_status(rec.status);
  rec.kind = r.value("kind", "");
  rec.method = r.value("method", "");
  rec.run_id = r.value("run_id", "");
  if (r.contains("error") && r["error"].is_string()) rec.error = r["error"].get<std::string>();
  if (r.contains("metrics")) flatten(r["metrics"], "", rec.metrics);
  if (r.contains("cost")) {
    for (const char* k : {"wall_s", "samples_per_s"}) {
      if (r["cost"].contains(k) && r["cost"][k].is_number()) rec.metrics[std::string("cost.") + k] = r["cost"][k].get<double>();
    }
  }
  if (r.contains("provenance") && r["provenance"].contains("world_size")) {
    rec.world_size = r["provenance"]["world_size"].get<int64_t>();
  }
  config::Config c;
  if (r.contains("config") && r["config"].is_string()) c = config::parse_config(r["config"].get<std::string>(), file.string());
  rec.variant = rec.kind == "unlearn" ? method_label(c.unlearn) : rec.method;
  rec.seed = c.train.seed;
  {
    // The config without what the table shows elsewhere: seeds, forget set, paths, outputs.
    config::Config k = c;
    k.train.seed = 0;
    k.unlearn.forget.clear();
    k.unlearn.original.clear();
    k.data.file.clear();
    k.model.init.clear();
    k.output = config::OutputConfig{};
    k.eval = config::EvalConfig{};
    k.dist = config::DistConfig{};
    std::istringstream yaml(config::to_yaml(k));
    std::string line, section;
    while (std::getline(yaml, line)) {
      if (line.empty()) continue;
      if (line[0] != ' ') {
        section = line.substr(0, line.find(':'));
        continue;
      }
      const auto colon = line.find(':');
      rec.keys[section + "." + line.substr(2, colon - 2)] = line.substr(colon + 2);
    }
  }
  rec.concepts = rec.kind == "unlearn" ? static_cast<int64_t>(c.unlearn.forget.size()) : 0;
  for (const auto& f : c.unlearn.forget) rec.forget += (rec.forget.empty() ? "" : "+") + f;
  const auto curv = rec.metrics.find("curvature");
  if (curv != rec.metrics.end()) {
    rec.model = std::isnan(curv->second) ? "clip" : "meru";
  } else {
    const bool euclidean = rec.kind == "unlearn" && original_curvature_label(c.unlearn.original) == "euclidean";
    rec.model = euclidean ? "clip" : c.model.kind;
  }
  if (r.contains("labels") && r["labels"].is_object()) {
    for (const auto& [k, v] : r["labels"].items()) rec.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  rec.stage = rec.labels.count("stage") ? rec.labels["stage"] : "";
  rec.original = rec.labels.count("original") ? rec.labels["original"]
                 : rec.kind == "unlearn"      ? fs::path(c.unlearn.original).parent_path().filename().string()
                                              : "";
  if (rec.labels.count("original_seed")) {
    try {
      rec.original_seed = std::stoll(rec.labels["original_seed"]);
    } catch (const std::exception&) {
      rec.original_seed = 0;
    }
  }
  if (rec.labels.count("curvature")) {
    rec.curvature = rec.labels["curvature"];
  } else if (rec.model == "clip") {
    rec.curvature = "euclidean";
  } else {
    rec.curvature = rec.kind == "unlearn" ? original_curvature_label(c.unlearn.original) : "";
    if (rec.curvature.empty()) {
      rec.curvature = rec.kind == "train"           ? curvature_value(c.model)
                      : curv != rec.metrics.end() ? fmt::format("{:.3g}", curv->second)
                                                  : "?";
    }
  }
  rec.original_config = rec.labels.count("original_config") ? rec.labels["original_config"]
                                                             : rec.model + ", curvature " + rec.curvature;
  return rec;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string num(double v) { return std::isnan(v) ? "" : fmt::format("{}", v); }

// A cell: the mean with the half-width of its 95 % t interval; one value: no ±.
std::string cell_text(const stats::Interval& s, bool latex, int decimals) {
  if (s.n == 0) return latex ? "--" : "—";
  if (s.n == 1 || std::isnan(s.half())) return fmt::format("{:.{}f}", s.mean, decimals);
  return fmt::format(latex ? "{:.{}f} $\\pm$ {:.{}f}" : "{:.{}f} ± {:.{}f}", s.mean, decimals, s.half(), decimals);
}

std::string tex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '_' || ch == '%' || ch == '&' || ch == '#' || ch == '$') out += '\\';
    out += ch;
  }
  return out;
}

// ---- The main table's columns: each once, in table order ------------------------------------
// write_tables builds the markdown, LaTeX and CSV headers, the cells and the markdown legend from
// this list, so a new column is one entry.

enum class Better { kNeither, kLower, kHigher };  // the header's direction arrow
enum class Over {
  kEachK,      // one column per number of forgotten concepts k (all of them before the other columns)
  kAllK,       // one column over every k
  kShiftAllK,  // over every k, the metric minus the original's ("before." + metric)
};
struct TableColumn {
  const char* metric;  // key of result.json's metrics, flattened with '.'
  const char* head;    // markdown header (kEachK: then "@k")
  const char* tex;     // LaTeX header (kEachK: then "@k")
  Better better;
  Over over;
  int decimals;        // digits after the point in the cells
  const char* legend;  // its part of the markdown legend ("": none)
};
const TableColumn kMainColumns[] = {
    {"zero_shot.forget_top1", "forget", "F", Better::kLower, Over::kEachK, 1,
     "forget/retain: zero-shot macro top-1 (%) on the forget / retain classes at each number k of forgotten "
     "concepts"},
    {"zero_shot.retain_top1", "retain", "R", Better::kHigher, Over::kEachK, 1, ""},
    {"audit.heldout_balanced_accuracy", "audit BA", "BA", Better::kNeither, Over::kAllK, 1,
     "audit BA: the membership audit's balanced accuracy on pairs it was not fitted on (cross-fitted; 50 = "
     "chance); *uninformative* when its interval contains 50, and then the two audit columns after it (marked †) "
     "cannot tell members from non-members"},
    {"audit.forget_nonmember", "audit non-member", "audit", Better::kHigher, Over::kAllK, 1,
     "audit non-member: % of forget pairs the audit calls non-member"},
    {"audit.gap_to_retrain", "gap to retrain", "gap", Better::kNeither, Over::kAllK, 1,
     "gap: that share minus the retrain reference's on the same unit"},
    {"hierarchy.forget.own_cone", "forget in own cone", "cone", Better::kNeither, Over::kAllK, 1,
     "cone: % of forget images inside their own caption's entailment cone"},
    {"hierarchy.forget.image_dist0", "Δ dist0 forget img", "$\\Delta d_0$", Better::kNeither, Over::kShiftAllK, 1,
     "Δ dist0: change of the forget images' mean distance to the origin (MERU: geodesic; CLIP: feature norm)"},
};

// The hierarchy table (table_hierarchy): what HAC's hyperbolic parts act on, apart from radius.
const TableColumn kHierarchyColumns[] = {
    {"zero_shot.forget_top1", "forget", "F", Better::kLower, Over::kAllK, 1,
     "forget/retain: zero-shot macro top-1 (%), every forget-set size pooled"},
    {"zero_shot.retain_top1", "retain", "R", Better::kHigher, Over::kAllK, 1, ""},
    {"hierarchy.forget.cone_margin", "forget margin", "$m_F$", Better::kNeither, Over::kAllK, 3,
     "margin: mean over forget (F) or retain (R) images of oxy_angle(own caption, image) − half_aperture(own "
     "caption), radians (> 0: outside the caption's entailment cone; MERU only)"},
    {"hierarchy.forget.cone_margin", "Δ forget margin", "$\\Delta m_F$", Better::kNeither, Over::kShiftAllK, 3,
     "Δ: after minus before (the original on the same rows)"},
    {"hierarchy.retain.cone_margin", "retain margin", "$m_R$", Better::kNeither, Over::kAllK, 3, ""},
    {"hierarchy.retain.cone_margin", "Δ retain margin", "$\\Delta m_R$", Better::kNeither, Over::kShiftAllK, 3, ""},
    {"hierarchy.forget.own_cone", "forget in own cone", "cone$_F$", Better::kNeither, Over::kAllK, 1,
     "in own cone: % of the images inside their own caption's cone"},
    {"hierarchy.retain.own_cone", "retain in own cone", "cone$_R$", Better::kNeither, Over::kAllK, 1, ""},
    {"hierarchy.forget.image_dist0", "Δ d0 forget img", "$\\Delta d_0^{F,img}$", Better::kNeither, Over::kShiftAllK, 3,
     "Δ d0: change of the mean distance to the origin of images (img) and own captions (txt), MERU geodesic, "
     "CLIP feature norm before normalization"},
    {"hierarchy.retain.image_dist0", "Δ d0 retain img", "$\\Delta d_0^{R,img}$", Better::kNeither, Over::kShiftAllK, 3,
     ""},
    {"hierarchy.forget.text_dist0", "Δ d0 forget txt", "$\\Delta d_0^{F,txt}$", Better::kNeither, Over::kShiftAllK, 3,
     ""},
    {"hierarchy.retain.text_dist0", "Δ d0 retain txt", "$\\Delta d_0^{R,txt}$", Better::kNeither, Over::kShiftAllK, 3,
     ""},
};

// A written table: its file stem, columns and whether it is the main table (audit marks, the
// retrain check, the runs without metrics).
struct TableKind {
  const char* stem;
  const TableColumn* begin;
  const TableColumn* end;
  bool main;
};

// One column of a written table: its entry and, for kEachK, its number of forgotten concepts.
struct ExpandedColumn {
  const TableColumn* column;
  int64_t k;
  std::string head(bool latex) const {
    std::string h = latex ? column->tex : column->head;
    if (column->over == Over::kEachK) h += fmt::format("@{}", k);
    if (column->better == Better::kLower) h += latex ? "$\\downarrow$" : " ↓";
    if (column->better == Better::kHigher) h += latex ? "$\\uparrow$" : " ↑";
    return h;
  }
  std::string csv_name() const {
    if (column->over == Over::kEachK) return fmt::format("{}@{}", column->metric, k);
    return column->over == Over::kShiftAllK ? std::string("delta.") + column->metric : column->metric;
  }
  // The value of one run (NaN when it has no such metric or another k).
  double value(const RunRecord& r) const {
    if (column->over == Over::kEachK && r.concepts != k) return kNaN;
    auto get = [&](const std::string& m) {
      const auto it = r.metrics.find(m);
      return it == r.metrics.end() ? kNaN : it->second;
    };
    const std::string metric = column->metric;
    return column->over == Over::kShiftAllK ? get(metric) - get("before." + metric) : get(metric);
  }
};

// The curvature a row's runs used (MERU: the mean of metrics.curvature; CLIP: "—").
std::string curvature_used(const std::vector<const RunRecord*>& list) {
  std::vector<double> c;
  for (const RunRecord* r : list) {
    const auto it = r->metrics.find("curvature");
    if (it != r->metrics.end() && !std::isnan(it->second)) c.push_back(it->second);
  }
  if (c.empty()) return "—";
  const stats::Interval i = stats::mean_interval(c);
  return fmt::format("{:.3g}", i.mean);
}

// Whether a row's audit can tell members from non-members: its held-out balanced accuracy's
// interval lies above 50 (over the row's runs, a t interval; for a single run its own interval).
// kUnknown when no run has the measure (older runs, or too few pairs).
enum class AuditSignal { kUnknown, kInformative, kUninformative };
AuditSignal audit_signal(const std::vector<const RunRecord*>& list) {
  std::vector<double> ba;
  double lo1 = kNaN;
  for (const RunRecord* r : list) {
    const auto it = r->metrics.find("audit.heldout_balanced_accuracy");
    if (it == r->metrics.end() || std::isnan(it->second)) continue;
    ba.push_back(it->second);
    const auto lo = r->metrics.find("audit.heldout_ba_lo");
    lo1 = lo == r->metrics.end() ? kNaN : lo->second;
  }
  if (ba.empty()) return AuditSignal::kUnknown;
  const double lo = ba.size() == 1 ? lo1 : stats::mean_interval(ba).lo;
  return lo > 50.0 ? AuditSignal::kInformative : AuditSignal::kUninformative;
}

// A table row: model, variant rank, variant, original, setting.
using RowKey = std::tuple<std::string, int, std::string, std::string, std::string>;
void add_main_notes(const std::map<RowKey, std::vector<const RunRecord*>>& rows,
                    const std::vector<const RunRecord*>& incomplete, std::string& md, std::string& tex);

// A table: rows (model, variant, original, setting), columns from the kind's list; trials of a
// selection stage never enter it.
void write_table(const std::vector<RunRecord>& runs, const fs::path& out, CollectSummary& summary, const TableKind& kind) {
  std::map<RowKey, std::vector<const RunRecord*>> rows;
  std::set<int64_t> ks;
  std::vector<const RunRecord*> incomplete;
  for (const auto& r : runs) {
    if (r.kind != "unlearn" || r.stage == "trial") continue;
    if (r.run_status != train::RunStatus::kCompleted || !r.metrics.count("zero_shot.forget_top1")) {
      incomplete.push_back(&r);
      continue;
    }
    rows[{r.model, variant_rank(r.variant), r.variant, r.original_config, r.setting}].push_back(&r);
    ks.insert(r.concepts);
  }
  std::vector<ExpandedColumn> cols;
  for (int64_t k : ks) {
    for (const TableColumn* c = kind.begin; c != kind.end; ++c) {
      if (c->over == Over::kEachK) cols.push_back({c, k});
    }
  }
  for (const TableColumn* c = kind.begin; c != kind.end; ++c) {
    if (c->over != Over::kEachK) cols.push_back({c, -1});
  }
  std::string md = "| model | method | original | curvature used | n |", sep = "| --- | --- | --- | ---: | ---: |";
  std::string tex = "\\begin{tabular}{lllrr" + std::string(cols.size(), 'r') +
                    "}\n\\toprule\nmodel & method & original & $c$ & $n$";
  std::string csv = "model,method,original,curvature_used,n";
  for (const auto& c : cols) {
    md += " " + c.head(false) + " |";
    sep += " ---: |";
    tex += " & " + c.head(true);
    csv += fmt::format(",{0}_mean,{0}_lo,{0}_hi,{0}_n", csv_cell(c.csv_name()));
  }
  md += "\n" + sep + "\n";
  tex += " \\\\\n\\midrule\n";
  csv += "\n";
  for (const auto& [key, list] : rows) {
    const auto& [model, rank, variant, original, setting] = key;
    const std::string label = setting.empty() ? variant : variant + " (" + setting + ")";
    // n: runs per forget-set size (a range when the sizes differ).
    std::map<int64_t, int64_t> per_k;
    for (const RunRecord* r : list) ++per_k[r->concepts];
    int64_t lo_n = -1, hi_n = 0;
    for (const auto& [k, n] : per_k) {
      lo_n = lo_n < 0 ? n : std::min(lo_n, n);
      hi_n = std::max(hi_n, n);
    }
    const std::string n_text = lo_n == hi_n ? std::to_string(hi_n) : fmt::format("{}–{}", lo_n, hi_n);
    const std::string curv = curvature_used(list);
    const bool uninformative = kind.main && audit_signal(list) == AuditSignal::kUninformative;
    md += fmt::format("| {} | {} | {} | {} | {} |", model, label, original, curv, n_text);
    tex += fmt::format("{} & {} & {} & {} & {}", tex_escape(model), tex_escape(label), tex_escape(original),
                       curv == "—" ? "--" : curv, n_text);
    csv += fmt::format("{},{},{},{},{}", model, csv_cell(label), csv_cell(original), curv == "—" ? "" : curv, hi_n);
    for (const auto& c : cols) {
      std::vector<double> v;
      for (const RunRecord* r : list) v.push_back(c.value(*r));
      const stats::Interval s = stats::mean_interval(v);
      const std::string metric = c.column->metric;
      std::string mark, tmark;
      if (metric == "audit.heldout_balanced_accuracy" && s.n > 0 && uninformative) {
        mark = " *uninformative*";
        tmark = " (uninf.)";
      } else if ((metric == "audit.forget_nonmember" || metric == "audit.gap_to_retrain") && s.n > 0 && uninformative) {
        mark = " †";
        tmark = "$^\\dagger$";
      }
      md += " " + cell_text(s, false, c.column->decimals) + mark + " |";
      tex += " & " + cell_text(s, true, c.column->decimals) + tmark;
      csv += fmt::format(",{},{},{},{}", num(s.mean), num(s.lo), num(s.hi), s.n);
    }
    md += "\n";
    tex += " \\\\\n";
    csv += "\n";
  }
  tex += "\\bottomrule\n\\end{tabular}\n";
  md += "\nCells: mean ± half-width of the 95 % Student-t interval over the row's runs (one run: no ±). "
        "n: runs per forget-set size k (originals × forget sets × unlearning seeds); the @k columns use those n "
        "runs, the columns after them pool every k. original: the pretrained model's configuration, its "
        "pretraining seeds pooled; curvature used: the curvature of the unlearned models (MERU)";
  for (const TableColumn* c = kind.begin; c != kind.end; ++c) {
    if (*c->legend != '\0') md += std::string("; ") + c->legend;
  }
  md += ". Differences between methods: table_paired.md (paired on matched units).\n";
  const std::string stem = kind.stem;
  if (kind.main) add_main_notes(rows, incomplete, md, tex);
  for (const auto& [name, text] : {std::pair<std::string, std::string>{stem + ".md", md}, {stem + ".tex", tex},
                                   {stem + ".csv", csv}}) {
    core::write_file_atomically((out / name).string(), text);
    summary.files.push_back(name);
  }
}

// The main table's notes: the retrain collapse check and the runs without metrics.
void add_main_notes(const std::map<RowKey, std::vector<const RunRecord*>>& rows,
                    const std::vector<const RunRecord*>& incomplete, std::string& md, std::string& tex) {
  // The gold standard must have learned: a retrain run whose retain top-1 is below twice chance
  // (100 / retain classes) is named here, and counts against the sweep's budget for it.
  std::vector<std::string> collapsed;
  int64_t retrains = 0;
  for (const auto& [key, list] : rows) {
    if (std::get<2>(key) != "retrain") continue;
    for (const RunRecord* r : list) {
      ++retrains;
      const auto classes = r->metrics.find("classes");
      const auto retain = r->metrics.find("zero_shot.retain_top1");
      if (classes == r->metrics.end() || retain == r->metrics.end()) continue;
      const double chance = 100.0 / std::max(1.0, classes->second - static_cast<double>(r->concepts));
      if (retain->second < 2.0 * chance) collapsed.push_back(fmt::format("`{}` ({:.1f} %)", r->dir, retain->second));
    }
  }
  if (retrains > 0) {
    md += fmt::format("\nRetrain check: {} of {} retrain run(s) collapsed (retain top-1 below twice chance){}{}.\n",
                      collapsed.size(), retrains, collapsed.empty() ? "" : ": ",
                      fmt::format("{}", fmt::join(collapsed, ", ")));
  }
  if (!incomplete.empty()) {
    md += "\nRuns without metrics (not in the table):\n\n";
    tex += "% Runs without metrics:\n";
    for (const RunRecord* r : incomplete) {
      md += fmt::format("* `{}`: {}{}\n", r->dir, r->status.empty() ? "no status" : r->status,
                        r->error.empty() ? "" : " — " + r->error);
      tex += fmt::format("% {}: {}\n", r->dir, r->status);
    }
  }
}

}  // namespace

std::string RunRecord::unit() const { return fmt::format("o{}|{}|s{}", original_seed, forget, seed); }

void add_retrain_gaps(std::vector<RunRecord>& runs) {
  std::map<std::string, double> retrain;  // original|forget|seed -> forget non-member share
  auto key = [](const RunRecord& r) { return fmt::format("{}|{}|{}", r.original, r.forget, r.seed); };
  for (const auto& r : runs) {
    const auto it = r.metrics.find("audit.forget_nonmember");
    if (r.kind == "unlearn" && r.stage != "trial" && r.variant == "retrain" && it != r.metrics.end()) {
      retrain[key(r)] = it->second;
    }
  }
  for (auto& r : runs) {
    const auto it = r.metrics.find("audit.forget_nonmember");
    const auto ref = retrain.find(key(r));
    if (r.kind != "unlearn" || it == r.metrics.end() || ref == retrain.end()) continue;
    const auto gap = r.metrics.find("audit.gap_to_retrain");
    if (gap == r.metrics.end() || std::isnan(gap->second)) r.metrics["audit.gap_to_retrain"] = it->second - ref->second;
  }
}

void assign_settings(std::vector<RunRecord>& runs) {
  // Runs of one (kind, stage, model, variant, original) whose other config keys differ get, as
  // their setting, the keys that differ within that group ("key=value, ...").
  std::map<std::string, std::vector<RunRecord*>> groups;
  for (auto& r : runs) {
    groups[r.kind + "|" + r.stage + "|" + r.model + "|" + r.variant + "|" + r.original_config].push_back(&r);
  }
  for (auto& [name, list] : groups) {
    std::set<std::string> differing;
    for (const RunRecord* r : list) {
      for (const auto& [k, v] : r->keys) {
        for (const RunRecord* other : list) {
          const auto it = other->keys.find(k);
          if (it == other->keys.end() || it->second != v) differing.insert(k);
        }
      }
    }
    for (RunRecord* r : list) {
      r->setting.clear();
      for (const auto& k : differing) {
        const auto it = r->keys.find(k);
        r->setting += fmt::format("{}{}={}", r->setting.empty() ? "" : ", ", k, it == r->keys.end() ? "?" : it->second);
      }
    }
  }
}

std::vector<RunRecord> read_runs(const std::string& dir, const std::string& skip, int64_t* unreadable) {
  std::vector<fs::path> files;
  const fs::path skip_path = skip.empty() ? fs::path() : fs::weakly_canonical(skip);
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && !skip_path.empty() && fs::weakly_canonical(it->path()) == skip_path) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().filename() == "result.json") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::vector<RunRecord> runs;
  for (const auto& f : files) {
    try {
      runs.push_back(record_of(json::parse(core::read_text_file(f.string())), f, dir));
    } catch (const std::exception& e) {
      core::log_warn("collect: {} is unreadable ({}); not counted as a result", f.string(),
                     std::string(e.what()).substr(0, 120));
      if (unreadable != nullptr) ++*unreadable;
    }
  }
  return runs;
}

CollectSummary collect(const CollectOptions& o) {
  RUNNER_CHECK(fs::is_directory(o.dir), IoError, fmt::format("collect: {} is not a directory", o.dir));
  const fs::path out = o.out.empty() ? fs::path(o.dir) / "collected" : fs::path(o.out);
  fs::create_directories(out);
  CollectSummary summary;
  std::vector<RunRecord> runs = read_runs(o.dir, out.string(), &summary.unreadable);
  assign_settings(runs);
  add_retrain_gaps(runs);
  std::string lng =
      "run_id,dir,status,kind,stage,method,variant,model,original,original_seed,concepts,forget,curvature,seed,world_size,"
      "metric,value\n";
  for (const auto& r : runs) {
    ++summary.runs;
    summary.completed += r.run_status == train::RunStatus::kCompleted;
    summary.failed += r.run_status == train::RunStatus::kFailed;
    summary.incomplete += r.run_status != train::RunStatus::kCompleted && r.run_status != train::RunStatus::kFailed;
    const std::string head = fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", r.run_id, csv_cell(r.dir),
                                         r.status, r.kind, r.stage, r.method, r.variant, r.model, csv_cell(r.original),
                                         r.original_seed, r.concepts, csv_cell(r.forget), csv_cell(r.curvature),
                                         r.seed, r.world_size);
    if (r.metrics.empty()) lng += head + ",,\n";  // visible, not dropped
    for (const auto& [k, v] : r.metrics) lng += fmt::format("{},{},{}\n", head, csv_cell(k), num(v));
  }
  core::write_file_atomically((out / "results_long.csv").string(), lng);
  summary.files.push_back("results_long.csv");
  write_table(runs, out, summary, {"table_main", std::begin(kMainColumns), std::end(kMainColumns), true});
  write_table(runs, out, summary,
              {"table_hierarchy", std::begin(kHierarchyColumns), std::end(kHierarchyColumns), false});
  write_comparisons(runs, out.string(), summary.files);
  bool figures = o.figures;
  if (figures && o.figures_if_gnuplot && !gnuplot_runs(o.gnuplot)) {
    core::log_info("collect: the figures were skipped: gnuplot ('{}') does not run here; the tables are written. "
                   "`hac collect {}` on a machine with gnuplot draws them", o.gnuplot, o.dir);
    figures = false;
  }
  if (figures) {
    for (const auto& f : write_figures(runs, out.string(), o.gnuplot)) summary.files.push_back(f);
  }
  core::log_info("collect: {} run(s) ({} completed, {} failed, {} incomplete, {} unreadable) -> {}", summary.runs,
                 summary.completed, summary.failed, summary.incomplete, summary.unreadable, out.string());
  return summary;
}

}  // namespace runner::sweep
