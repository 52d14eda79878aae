// Figures of `hac collect` (results.h): data files and gnuplot scripts written beside the PNG and
// PDF they make, so a user can restyle them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "eval/samples.h"
#include "sweep/labels.h"
#include "sweep/results.h"
#include "sweep/shell.h"
#include "sweep/stats.h"

namespace runner::sweep {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num(double v) { return std::isnan(v) ? "NaN" : fmt::format("{:.6g}", v); }

double metric(const RunRecord& r, const std::string& m) {
  const auto it = r.metrics.find(m);
  return it == r.metrics.end() ? kNaN : it->second;
}

// Writes name.gp (PNG then PDF of `body`) and name.dat files, runs gnuplot in dir.
std::vector<std::string> render(const fs::path& dir, const std::string& name, const std::string& body,
                                const std::string& gnuplot, const std::string& size_px, const std::string& size_in) {
  std::string gp = "# " + name + ": written by hac collect; edit and run `gnuplot " + name + ".gp` here\n";
  gp += "set datafile separator '\\t'\nset datafile missing 'NaN'\nset key outside right top\nset grid\n";
  gp += fmt::format("set terminal pngcairo size {} font ',10'\nset output '{}.render.png'\n{}\nunset multiplot\n", size_px,
                    name, body);
  gp += fmt::format("set terminal pdfcairo size {} font ',9'\nset output '{}.render.pdf'\n{}\nunset multiplot\nset output\n",
                    size_in, name, body);
  core::write_file_atomically((dir / (name + ".gp")).string(), gp);
  const std::string cmd = fmt::format("cd {} && {} {}.gp > {}.log 2>&1", quote(dir.string()), quote(gnuplot), name, name);
  if (shell_status(cmd) != 0) {
    throw IoError(fmt::format("collect: gnuplot failed on {}/{}.gp: {}", dir.string(), name,
                              core::read_text_file((dir / (name + ".log")).string()).substr(0, 400)));
  }
  // gnuplot draws to temp names; the figures are published atomically. cairo stamps each PDF
  // with the time: blank it (same length) so that collecting twice gives the same bytes.
  for (const char* ext : {"png", "pdf"}) {
    const fs::path tmp = dir / fmt::format("{}.render.{}", name, ext);
    std::string bytes = core::read_text_file(tmp.string());
    for (const std::string tag : {"/CreationDate (", "/ModDate ("}) {
      for (size_t at = bytes.find(tag); at != std::string::npos; at = bytes.find(tag, at + 1)) {
        for (size_t i = at + tag.size(); i < bytes.size() && bytes[i] != ')'; ++i) bytes[i] = ' ';
      }
    }
    core::write_file_atomically((dir / fmt::format("{}.{}", name, ext)).string(), bytes);
    fs::remove(tmp);
  }
  return {"figures/" + name + ".png", "figures/" + name + ".pdf"};
}

// Table of series over x values (rows), tab-separated with a header: per series its mean and the
// half-width of the mean's 95 % t interval (NaN with fewer than 2 values).
std::string series_table(const std::vector<std::string>& xs, const std::vector<std::string>& names,
                         const std::map<std::pair<std::string, std::string>, std::vector<double>>& values) {
  std::string t = "x";
  for (const auto& n : names) t += "\t" + n + "\t" + n + " 95% half-width";
  t += "\n";
  for (const auto& x : xs) {
    t += x;
    for (const auto& n : names) {
      const auto it = values.find({x, n});
      const stats::Interval i = it == values.end() ? stats::Interval{} : stats::mean_interval(it->second);
      t += "\t" + num(i.mean) + "\t" + num(i.half());
    }
    t += "\n";
  }
  return t;
}

// Forget and retain accuracy against an x label; one line per series, error bars: the 95 % t
// interval of the mean.
std::vector<std::string> accuracy_figure(const fs::path& dir, const std::string& name, const std::string& xlabel,
                                         const std::vector<std::string>& xs, const std::vector<std::string>& names,
                                         const std::map<std::pair<std::string, std::string>, std::vector<double>>& forget,
                                         const std::map<std::pair<std::string, std::string>, std::vector<double>>& retain,
                                         const std::string& gnuplot, const std::vector<std::string>& styles = {}) {
  core::write_file_atomically((dir / (name + "_forget.dat")).string(), series_table(xs, names, forget));
  core::write_file_atomically((dir / (name + "_retain.dat")).string(), series_table(xs, names, retain));
  // One plot clause per series, so each has its own style (gnuplot's default cycle repeats colours
  // after eight series); a missing half-width draws the point without a bar.
  auto plot = [&](const std::string& which) {
    std::string cmd = "plot";
    for (size_t i = 0; i < names.size(); ++i) {
      const size_t col = 2 + 2 * i;
      cmd += fmt::format("{} '{}_{}.dat' using 0:{}:(valid({}) ? column({}) : 0):xtic(1) with yerrorlines lw 2 {} "
                         "title columnheader({})",
                         i == 0 ? "" : ", \\\n    ", name, which, col, col + 1, col + 1,
                         i < styles.size() ? styles[i] : fmt::format("lt {} pt 7", i + 1), col);
    }
    return cmd + "\n";
  };
  std::string body = "set multiplot layout 1,2\nset yrange [0:100]\nset ylabel 'zero-shot top-1 (%), mean ± 95% CI'\n";
  body += fmt::format("set xlabel '{}'\n", xlabel);
  body += "set title 'forget classes (lower is better)'\nset key off\n" + plot("forget");
  body += "set title 'retain classes (higher is better)'\nset key outside right top\n" + plot("retain");
  return render(dir, name, body, gnuplot, "1300,480", "13in,4.8in");
}

// Every selection trial's validation forget against retain top-1, one series per group, the
// chosen trial of each group ringed.
std::vector<std::string> selection_figure(const fs::path& dir, const std::vector<RunRecord>& runs,
                                          const std::string& gnuplot) {
  std::map<std::string, std::string> chosen;  // group -> trial
  for (const auto& r : runs) {
    if (r.stage != "trial" && r.labels.count("group") && r.labels.count("selected_trial")) {
      chosen[r.labels.at("group")] = r.labels.at("selected_trial");
    }
  }
  std::map<std::string, std::string> data;  // group -> rows
  std::string ring;
  for (const auto& r : runs) {
    if (r.stage != "trial" || r.run_status != train::RunStatus::kCompleted || !r.labels.count("group")) continue;
    const std::string& g = r.labels.at("group");
    const std::string row = fmt::format("{}\t{}\n", num(metric(r, "zero_shot.retain_top1")),
                                        num(metric(r, "zero_shot.forget_top1")));
    // Legend: model, method variant and the original's curvature (the group's long text is in
    // selection.md).
    data[r.model + " " + r.variant + (r.model == "meru" ? " (c " + r.curvature + ")" : "")] += row;
    if (chosen.count(g) && r.labels.count("trial") && chosen[g] == r.labels.at("trial")) ring += row;
  }
  if (data.empty()) return {};
  std::string t, plot = "plot";
  size_t i = 0;
  for (const auto& [g, rows] : data) {
    t += "retain\t" + g + "\n" + rows + "\n\n";
    plot += fmt::format("{} 'selection.dat' index {} using 1:2 with points pt {} ps 1.2 lt {} title columnheader(2)",
                        i == 0 ? "" : ", \\\n    ", i, 5 + 2 * (i % 4), i + 1);
    ++i;
  }
  core::write_file_atomically((dir / "selection.dat").string(), t);
  core::write_file_atomically((dir / "selection_chosen.dat").string(), "retain\tforget\n" + ring);
  plot += ", \\\n    'selection_chosen.dat' using 1:2 skip 1 with points pt 6 ps 2.5 lw 2 lc rgb 'black' title 'chosen'\n";
  const std::string body =
      "set termoption noenhanced\nset title 'selection trials on the validation split (chosen: ringed)'\n"
      "set xlabel 'retain top-1 (%)'\n"
      "set ylabel 'forget top-1 (%)'\nset xrange [0:100]\nset yrange [0:100]\n" + plot;
  return render(dir, "selection", body, gnuplot, "1000,600", "10in,6in");
}

// The representative MERU run for the hierarchy figures: a completed hac run with side files,
// the smallest forget set (the forget points stand out against the retained ones), then the
// first by directory.
const RunRecord* representative(const std::vector<RunRecord>& runs) {
  const RunRecord* best = nullptr;
  for (const auto& r : runs) {
    if (r.kind != "unlearn" || r.stage == "trial" || r.model != "meru" || r.variant != "hac" ||
        r.run_status != train::RunStatus::kCompleted) {
      continue;
    }
    if (!fs::exists(fs::path(r.abs_dir) / "eval" / "samples.csv")) continue;
    if (best == nullptr || r.concepts < best->concepts) best = &r;
  }
  return best;
}

std::vector<std::string> histogram_figure(const fs::path& dir, const RunRecord& r, const std::string& gnuplot) {
  const std::string path = (fs::path(r.abs_dir) / "eval" / "samples.csv").string();
  const eval::Samples s = eval::samples_from_csv(core::read_text_file(path), path);
  if (!s.has_before()) return {};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (size_t i = 0; i < s.size(); ++i) {
    for (double v : {s.after.image_dist0[i], s.before.image_dist0[i]}) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  constexpr int kBins = 30;
  const double width = std::max(1e-9, (hi - lo) / kBins);
  std::vector<std::array<double, 4>> h(kBins, {0, 0, 0, 0});
  std::array<double, 4> total{0, 0, 0, 0};
  for (size_t i = 0; i < s.size(); ++i) {
    const int base = s.forget[i] ? 0 : 2;
    for (int which = 0; which < 2; ++which) {
      const double v = which == 0 ? s.before.image_dist0[i] : s.after.image_dist0[i];
      const int b = std::clamp(static_cast<int>((v - lo) / width), 0, kBins - 1);
      h[static_cast<size_t>(b)][static_cast<size_t>(base + which)] += 1;
      total[static_cast<size_t>(base + which)] += 1;
    }
  }
  std::string t = "d0\tforget before\tforget after\tretain before\tretain after\n";
  for (int b = 0; b < kBins; ++b) {
    t += num(lo + (b + 0.5) * width);
    for (int k = 0; k < 4; ++k) {
      t += "\t" + num(total[static_cast<size_t>(k)] > 0 ? h[static_cast<size_t>(b)][static_cast<size_t>(k)] /
                                                              total[static_cast<size_t>(k)]
                                                        : kNaN);
    }
    t += "\n";
  }
  core::write_file_atomically((dir / "dist0_hist.dat").string(), t);
  std::string body = fmt::format(
      "set title 'image distance to the origin, {} ({} concept(s) forgotten: {})'\n"
      "set xlabel 'd_c(origin, image)'\nset ylabel 'share of images'\n"
      "plot 'dist0_hist.dat' using 1:2 with steps lw 2 dt 2 lc rgb '#d62728' title columnheader(2), \\\n"
      "     '' using 1:3 with steps lw 2 lc rgb '#d62728' title columnheader(3), \\\n"
      "     '' using 1:4 with steps lw 2 dt 2 lc rgb '#1f77b4' title columnheader(4), \\\n"
      "     '' using 1:5 with steps lw 2 lc rgb '#1f77b4' title columnheader(5)\n",
      r.variant, r.concepts, r.forget);
  return render(dir, "dist0_hist", body, gnuplot, "1000,500", "10in,5in");
}

// Top-2 principal directions of rows (power iteration with deflation).
std::array<std::vector<double>, 2> top2(const std::vector<std::vector<double>>& rows) {
  const size_t d = rows.front().size();
  std::vector<double> mean(d, 0.0);
  for (const auto& r : rows) {
    for (size_t j = 0; j < d; ++j) mean[j] += r[j] / static_cast<double>(rows.size());
  }
  std::vector<std::vector<double>> cov(d, std::vector<double>(d, 0.0));
  for (const auto& r : rows) {
    for (size_t a = 0; a < d; ++a) {
      for (size_t b = 0; b < d; ++b) cov[a][b] += (r[a] - mean[a]) * (r[b] - mean[b]);
    }
  }
  std::array<std::vector<double>, 2> out;
  for (int k = 0; k < 2; ++k) {
    std::vector<double> v(d);
    for (size_t j = 0; j < d; ++j) v[j] = 1.0 + 0.01 * static_cast<double>(j);  // deterministic start
    for (int it = 0; it < 300; ++it) {
      std::vector<double> w(d, 0.0);
      for (size_t a = 0; a < d; ++a) {
        for (size_t b = 0; b < d; ++b) w[a] += cov[a][b] * v[b];
      }
      if (k == 1) {  // deflate: stay orthogonal to the first direction
        double dot = 0.0;
        for (size_t j = 0; j < d; ++j) dot += w[j] * out[0][j];
        for (size_t j = 0; j < d; ++j) w[j] -= dot * out[0][j];
      }
      double norm = 0.0;
      for (double x : w) norm += x * x;
      norm = std::sqrt(norm);
      if (norm == 0.0) break;
      for (size_t j = 0; j < d; ++j) v[j] = w[j] / norm;
    }
    out[static_cast<size_t>(k)] = v;
  }
  return out;
}

std::vector<std::string> poincare_figure(const fs::path& dir, const RunRecord& r, const std::string& gnuplot) {
  const fs::path file = fs::path(r.abs_dir) / "eval" / "embeddings.csv";
  const double c = metric(r, "curvature");
  if (!fs::exists(file) || std::isnan(c)) return {};
  std::istringstream in(core::read_text_file(file.string()));
  std::string line;
  std::getline(in, line);  // header: row,concept,forget,model,modality,e0..
  struct Point {
    bool forget, after;
    std::vector<double> p;
  };
  std::vector<Point> pts;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (cells.size() < 6 || cells[4] != "image") continue;
    std::vector<double> x;
    double sq = 0.0;
    for (size_t j = 5; j < cells.size(); ++j) x.push_back(std::stod(cells[j])), sq += x.back() * x.back();
    // Hyperboloid (space part x, time x0) -> Poincaré ball of radius 1/sqrt(c) -> unit disk.
    const double x0 = std::sqrt(1.0 / c + sq), sc = std::sqrt(c);
    for (double& v : x) v = sc * v / (1.0 + sc * x0);
    pts.push_back({cells[2] == "1", cells[3] == "after", x});
  }
  if (pts.size() < 3) return {};
  std::vector<std::vector<double>> rows;
  for (const auto& p : pts) rows.push_back(p.p);
  const auto dirs = top2(rows);
  std::string data[2];
  for (const auto& p : pts) {
    double a = 0.0, b = 0.0, radius = 0.0;
    for (size_t j = 0; j < p.p.size(); ++j) a += p.p[j] * dirs[0][j], b += p.p[j] * dirs[1][j], radius += p.p[j] * p.p[j];
    const double len = std::sqrt(a * a + b * b);
    radius = std::sqrt(radius);
    // Keep each point's distance to the origin: only its direction is projected.
    const double scale = len > 0 ? radius / len : 0.0;
    data[p.after ? 1 : 0] += fmt::format("{}\t{}\t{}\n", num(a * scale), num(b * scale), p.forget ? 1 : 0);
  }
  core::write_file_atomically((dir / "poincare_before.dat").string(), "x\ty\tforget\n" + data[0]);
  core::write_file_atomically((dir / "poincare_after.dat").string(), "x\ty\tforget\n" + data[1]);
  std::string body = fmt::format(
      "set multiplot layout 1,2 title 'MERU image embeddings in the Poincaré disk (top-2 principal directions, "
      "distance to the centre kept); {}, forget: {}'\n"
      "set size ratio -1\nset xrange [-1.05:1.05]\nset yrange [-1.05:1.05]\n"
      "set key outside bottom center horizontal\n"
      "set object 1 circle at 0,0 size 1 fs empty border lc rgb 'black'\nunset grid\n",
      r.variant, r.forget);
  for (const char* which : {"before", "after"}) {
    body += fmt::format(
        "set title '{} unlearning'\n"
        "plot 'poincare_{}.dat' using 1:($3==0?$2:NaN) skip 1 with points pt 7 ps 0.5 lc rgb '#1f77b4' title 'retain', \\\n"
        "     '' using 1:($3==1?$2:NaN) skip 1 with points pt 7 ps 0.6 lc rgb '#d62728' title 'forget'\n",
        which, which);
  }
  return render(dir, "poincare", body, gnuplot, "1100,620", "11in,6.2in");
}

}  // namespace

// The loss curves of one run per (model, method variant, curvature): every term of its losses.csv
// against the step (lr, curvature and logit scale left out), one panel per run. The run shown for
// each is the completed, non-trial one with the fewest concepts, then the first forget set, original
// seed and unlearning seed, so the panels are comparable units. At most 20 panels.
std::vector<std::string> loss_figure(const fs::path& dir, const std::vector<RunRecord>& runs, const std::string& gnuplot) {
  std::map<std::string, const RunRecord*> pick;
  auto order = [](const RunRecord& r) { return std::make_tuple(r.concepts, r.forget, r.original_seed, r.seed, r.dir); };
  for (const auto& r : runs) {
    if (r.stage == "trial" || r.run_status != train::RunStatus::kCompleted) continue;
    if (!fs::exists(fs::path(r.abs_dir) / "losses.csv")) continue;
    const std::string name = r.kind == "unlearn" ? fmt::format("{} {} (c {})", r.model, r.variant, r.curvature)
                                                 : fmt::format("{} pretraining (c {}, seed {})", r.model, r.curvature, r.original_seed);
    auto [it, added] = pick.emplace(name, &r);
    if (!added && order(r) < order(*it->second)) it->second = &r;
  }
  if (pick.empty()) return {};
  std::string body = "set datafile separator ','\nset termoption noenhanced\nset key top right font ',8'\n";
  const size_t panels = std::min<size_t>(pick.size(), 20);
  const size_t cols = std::min<size_t>(panels, 4), rows = (panels + cols - 1) / cols;
  body += fmt::format("set multiplot layout {},{}\nset xlabel 'step'\n", rows, cols);
  size_t i = 0;
  for (const auto& [name, r] : pick) {
    if (i == panels) break;
    const std::string data = fmt::format("losses_{}.dat", i);
    const std::string csv = core::read_text_file((fs::path(r->abs_dir) / "losses.csv").string());
    core::write_file_atomically((dir / data).string(), csv);
    std::vector<std::string> header;
    std::stringstream line(csv.substr(0, csv.find('\n')));
    for (std::string col; std::getline(line, col, ',');) header.push_back(col);
    std::string plot;
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string& h = header[c];
      if (h == "step" || h == "lr" || h == "curv" || h == "logit_scale") continue;
      plot += fmt::format("{}'{}' using 1:{} with lines lw {} title '{}'", plot.empty() ? "plot " : ", \\\n    ", data,
                          c + 1, h == "loss" ? 2 : 1, h);
    }
    body += fmt::format("set title '{}'\n{}\n", name, plot.empty() ? "plot 0 notitle" : plot);
    ++i;
  }
  if (pick.size() > panels) core::log_info("collect: {} runs with loss curves; the figure shows the first {}", pick.size(), panels);
  return render(dir, "losses", body, gnuplot, fmt::format("{},{}", 420 * cols, 320 * rows),
                fmt::format("{}in,{}in", 4.2 * cols, 3.2 * rows));
}

bool gnuplot_runs(const std::string& gnuplot) {
  return shell_status(quote(gnuplot) + " --version > /dev/null 2>&1") == 0;
}

std::vector<std::string> write_figures(const std::vector<RunRecord>& runs, const std::string& out,
                                       const std::string& gnuplot) {
  if (!gnuplot_runs(gnuplot)) {
    throw IoError(fmt::format("collect: cannot run gnuplot ('{}'); install it (`make deps` installs gnuplot-nox) or "
                              "pass --no-figures", gnuplot));
  }
  const fs::path dir = fs::path(out) / "figures";
  fs::create_directories(dir);
  std::vector<std::string> files;
  auto add = [&](const std::vector<std::string>& f) { files.insert(files.end(), f.begin(), f.end()); };
  // Accuracy vs number of concepts: one line per (model, method) at each model's most common curvature.
  std::map<std::string, std::map<std::string, int>> curv_count;
  for (const auto& r : runs) {
    if (r.kind == "unlearn" && r.stage != "trial" && r.run_status == train::RunStatus::kCompleted) {
      curv_count[r.model][r.curvature] += 1;
    }
  }
  std::map<std::string, std::string> main_curv;
  for (const auto& [model, counts] : curv_count) {
    main_curv[model] = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  }
  std::map<std::pair<std::string, std::string>, std::vector<double>> forget, retain, cforget, cretain;
  std::set<int64_t> ks;
  std::vector<std::pair<int, std::string>> series;
  std::map<std::string, std::string> style;  // series -> colour by method, dashes and marks by model
  std::set<std::string> curvs;
  for (const auto& r : runs) {
    if (r.kind != "unlearn" || r.stage == "trial" || r.run_status != train::RunStatus::kCompleted) continue;
    if (r.curvature == main_curv[r.model]) {
      const std::string name = r.model + " " + r.variant + (r.setting.empty() ? "" : " (" + r.setting + ")");
      if (std::find_if(series.begin(), series.end(), [&](auto& s) { return s.second == name; }) == series.end()) {
        const int rank = variant_rank(r.variant);
        series.emplace_back(rank * 2 + (r.model == "meru"), name);
        static const char* palette[] = {"#7f7f7f", "#2ca02c", "#8c564b", "#9467bd", "#e377c2", "#bcbd22",
                                        "#1f77b4", "#d62728", "#ff7f0e", "#17becf", "#000000"};
        constexpr int kColours = static_cast<int>(sizeof(palette) / sizeof(palette[0]));
        style[name] = fmt::format("lc rgb '{}' {}", palette[std::clamp(rank, 0, kColours - 1)],
                                  r.model == "meru" ? "dt 1 pt 7" : "dt 2 pt 4");
      }
      forget[{fmt::format("{}", r.concepts), name}].push_back(metric(r, "zero_shot.forget_top1"));
      retain[{fmt::format("{}", r.concepts), name}].push_back(metric(r, "zero_shot.retain_top1"));
      ks.insert(r.concepts);
    }
    if (r.model == "meru" && r.variant == "hac") {
      const std::string name = fmt::format("{} concept(s)", r.concepts);
      cforget[{r.curvature, name}].push_back(metric(r, "zero_shot.forget_top1"));
      cretain[{r.curvature, name}].push_back(metric(r, "zero_shot.retain_top1"));
      curvs.insert(r.curvature);
    }
  }
  std::sort(series.begin(), series.end());
  std::vector<std::string> names, xs;
  std::vector<std::string> styles;
  for (const auto& s : series) names.push_back(s.second), styles.push_back(style[s.second]);
  for (int64_t k : ks) xs.push_back(fmt::format("{}", k));
  if (!names.empty()) {
    add(accuracy_figure(dir, "acc_vs_concepts", "concepts forgotten", xs, names, forget, retain, gnuplot, styles));
  } else {
    core::log_info("collect: no completed unlearning runs; no accuracy figures");
  }
  if (curvs.size() >= 2) {
    std::vector<std::string> cx(curvs.begin(), curvs.end()), cn;
    std::set<std::string> seen;
    for (int64_t k : ks) cn.push_back(fmt::format("{} concept(s)", k));
    add(accuracy_figure(dir, "acc_vs_curvature", "MERU curvature of the original (HAC)", cx, cn, cforget, cretain, gnuplot));
  } else {
    core::log_info("collect: fewer than 2 MERU curvatures with HAC runs; no curvature figure");
  }
  add(selection_figure(dir, runs, gnuplot));
  add(loss_figure(dir, runs, gnuplot));
  if (const RunRecord* r = representative(runs)) {
    add(histogram_figure(dir, *r, gnuplot));
    add(poincare_figure(dir, *r, gnuplot));
  } else {
    core::log_info("collect: no completed MERU HAC run with eval side files; no hierarchy figures");
  }
  return files;
}

}  // namespace runner::sweep
