// Side files (samples.csv, audit.csv, classes.csv) and the aggregates computed from them.
#include "eval/samples.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"
#include "eval/metrics.h"

namespace runner::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::string> kModelColumns = {"zs_pred", "score", "image_dist0", "text_dist0", "own_cone",
                                                "parent_cone"};

// Doubles in their shortest round-trip form, so a file read back aggregates to the same numbers.
std::string cell(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }

void append_model(std::string& line, const ModelValues& m, size_t i) {
  line += fmt::format(",{},{},{},{},{},{}", m.zs_pred[i], cell(m.score[i]), cell(m.image_dist0[i]),
                      cell(m.text_dist0[i]), m.own_cone[i], m.parent_cone[i]);
}

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : line) {
    if (ch == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

// Reads a CSV with a header into rows of cells, checking every line has the header's width.
std::vector<std::vector<std::string>> read_table(const std::string& text, const std::string& source,
                                                 std::vector<std::string>& header) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) throw IoError(fmt::format("{}: empty file, expected a CSV header", source));
  header = split_line(line);
  std::vector<std::vector<std::string>> rows;
  int64_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    rows.push_back(split_line(line));
    if (rows.back().size() != header.size()) {
      throw IoError(fmt::format("{}:{}: {} cells, the header has {}", source, number, rows.back().size(),
                                header.size()));
    }
  }
  return rows;
}

double to_double(const std::string& s, const std::string& source) {
  if (s == "nan") return kNaN;
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw IoError(fmt::format("{}: '{}' is not a number", source, s));
}

int64_t to_int(const std::string& s, const std::string& source) {
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw IoError(fmt::format("{}: '{}' is not an integer", source, s));
}

size_t column(const std::vector<std::string>& header, const std::string& name, const std::string& source) {
  const auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) throw IoError(fmt::format("{}: no column '{}'", source, name));
  return static_cast<size_t>(it - header.begin());
}

void read_model(ModelValues& m, const std::vector<std::vector<std::string>>& rows,
                const std::vector<std::string>& header, const std::string& suffix, const std::string& source) {
  std::vector<size_t> c;
  for (const auto& name : kModelColumns) c.push_back(column(header, name + suffix, source));
  for (const auto& r : rows) {
    m.zs_pred.push_back(static_cast<int32_t>(to_int(r[c[0]], source)));
    m.score.push_back(to_double(r[c[1]], source));
    m.image_dist0.push_back(to_double(r[c[2]], source));
    m.text_dist0.push_back(to_double(r[c[3]], source));
    m.own_cone.push_back(static_cast<int32_t>(to_int(r[c[4]], source)));
    m.parent_cone.push_back(static_cast<int32_t>(to_int(r[c[5]], source)));
  }
}

// The distinct concepts of the samples and those of them that are forget concepts.
void class_sets(const Samples& s, std::vector<int32_t>& all, std::vector<int32_t>& forget,
                std::vector<int32_t>& retain) {
  std::set<int32_t> a, f;
  for (size_t i = 0; i < s.size(); ++i) {
    a.insert(s.concept[i]);
    if (s.forget[i]) f.insert(s.concept[i]);
  }
  all.assign(a.begin(), a.end());
  forget.assign(f.begin(), f.end());
  retain.clear();
  for (int32_t c : all) {
    if (!f.count(c)) retain.push_back(c);
  }
}

// Share (%) of cone flags equal to 1 among the applicable (>= 0) rows selected by mask.
double cone_share(const std::vector<int32_t>& flags, const std::vector<char>& mask) {
  int64_t inside = 0, n = 0;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (!mask[i] || flags[i] < 0) continue;
    n += 1;
    inside += flags[i] == 1 ? 1 : 0;
  }
  return n == 0 ? kNaN : 100.0 * static_cast<double>(inside) / static_cast<double>(n);
}

std::string name_of(const std::vector<std::string>& names, int32_t c) {
  return c >= 0 && static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : fmt::format("#{}", c);
}

json hierarchy_part(const ModelValues& m, const std::vector<char>& mask) {
  json h;
  h["image_dist0"] = masked_mean(m.image_dist0, mask);
  h["text_dist0"] = masked_mean(m.text_dist0, mask);
  h["own_cone"] = cone_share(m.own_cone, mask);
  h["parent_cone"] = cone_share(m.parent_cone, mask);
  return h;
}

// zero_shot and hierarchy blocks of one model's values.
json model_block(const Samples& s, const ModelValues& m, const std::vector<std::string>& names) {
  std::vector<int32_t> all, forget, retain;
  class_sets(s, all, forget, retain);
  const ClassAccuracy acc = per_class_accuracy(m.zs_pred, s.concept, all);
  json zs;
  zs["forget_top1"] = macro_accuracy(acc, forget);
  zs["retain_top1"] = macro_accuracy(acc, retain);
  zs["all_top1"] = macro_accuracy(acc, all);
  json per_class = json::object();
  for (size_t i = 0; i < all.size(); ++i) per_class[name_of(names, all[i])] = acc.acc[i];
  zs["per_class"] = per_class;
  std::vector<char> is_forget(s.forget), is_retain(s.size());
  for (size_t i = 0; i < s.size(); ++i) is_retain[i] = !s.forget[i];
  json h;
  bool euclidean = true;
  for (int32_t v : m.own_cone) euclidean = euclidean && v < 0;
  h["geometry"] = euclidean ? "euclidean (dist0 = norm before normalization; no cones)" : "lorentz";
  h["forget"] = hierarchy_part(m, is_forget);
  h["retain"] = hierarchy_part(m, is_retain);
  json out;
  out["zero_shot"] = zs;
  out["hierarchy"] = h;
  return out;
}

// Per-concept means of one model's values.
struct ConceptStats {
  double zs = kNaN, image_dist0 = kNaN, text_dist0 = kNaN, own_cone = kNaN, parent_cone = kNaN;
  int64_t rows = 0;
};
ConceptStats concept_stats(const Samples& s, const ModelValues& m, int32_t c) {
  std::vector<char> mask(s.size());
  ConceptStats st;
  for (size_t i = 0; i < s.size(); ++i) {
    mask[i] = s.concept[i] == c;
    st.rows += mask[i];
  }
  st.zs = per_class_accuracy(m.zs_pred, s.concept, {c}).acc[0];
  st.image_dist0 = masked_mean(m.image_dist0, mask);
  st.text_dist0 = masked_mean(m.text_dist0, mask);
  st.own_cone = cone_share(m.own_cone, mask);
  st.parent_cone = cone_share(m.parent_cone, mask);
  return st;
}

}  // namespace

std::string to_csv(const Samples& s) {
  std::string out = "row,concept,forget,i2t_rank,t2i_rank,knn_pred";
  for (const auto& c : kModelColumns) out += "," + c;
  if (s.has_before()) {
    for (const auto& c : kModelColumns) out += "," + c + "_before";
  }
  out += "\n";
  for (size_t i = 0; i < s.size(); ++i) {
    std::string line = fmt::format("{},{},{},{},{},{}", s.row[i], s.concept[i], s.forget[i] ? 1 : 0, s.i2t_rank[i],
                                   s.t2i_rank[i], s.knn_pred[i]);
    append_model(line, s.after, i);
    if (s.has_before()) append_model(line, s.before, i);
    out += line + "\n";
  }
  return out;
}

Samples samples_from_csv(const std::string& text, const std::string& source) {
  std::vector<std::string> header;
  const auto rows = read_table(text, source, header);
  Samples s;
  const size_t c_row = column(header, "row", source), c_concept = column(header, "concept", source),
               c_forget = column(header, "forget", source), c_i2t = column(header, "i2t_rank", source),
               c_t2i = column(header, "t2i_rank", source), c_knn = column(header, "knn_pred", source);
  for (const auto& r : rows) {
    s.row.push_back(to_int(r[c_row], source));
    s.concept.push_back(static_cast<int32_t>(to_int(r[c_concept], source)));
    s.forget.push_back(static_cast<char>(to_int(r[c_forget], source) != 0));
    s.i2t_rank.push_back(to_int(r[c_i2t], source));
    s.t2i_rank.push_back(to_int(r[c_t2i], source));
    s.knn_pred.push_back(static_cast<int32_t>(to_int(r[c_knn], source)));
  }
  read_model(s.after, rows, header, "", source);
  if (std::find(header.begin(), header.end(), "zs_pred_before") != header.end()) {
    read_model(s.before, rows, header, "_before", source);
  }
  return s;
}

std::string to_csv(const AuditRows& a) {
  const bool retrain = !a.retrain_score.empty();
  std::string out = retrain ? "set,row,concept,score,retrain_score\n" : "set,row,concept,score\n";
  for (size_t i = 0; i < a.size(); ++i) {
    out += fmt::format("{},{},{},{}", a.set[i], a.row[i], a.concept[i], cell(a.score[i]));
    if (retrain) out += "," + cell(a.retrain_score[i]);
    out += "\n";
  }
  return out;
}

AuditRows audit_from_csv(const std::string& text, const std::string& source) {
  std::vector<std::string> header;
  const auto rows = read_table(text, source, header);
  AuditRows a;
  const size_t c_set = column(header, "set", source), c_row = column(header, "row", source),
               c_concept = column(header, "concept", source), c_score = column(header, "score", source);
  const bool retrain = std::find(header.begin(), header.end(), "retrain_score") != header.end();
  const size_t c_retrain = retrain ? column(header, "retrain_score", source) : 0;
  for (const auto& r : rows) {
    if (r[c_set] != "member" && r[c_set] != "nonmember" && r[c_set] != "forget") {
      throw IoError(fmt::format("{}: unknown set '{}' (member | nonmember | forget)", source, r[c_set]));
    }
    a.set.push_back(r[c_set]);
    a.row.push_back(to_int(r[c_row], source));
    a.concept.push_back(static_cast<int32_t>(to_int(r[c_concept], source)));
    a.score.push_back(to_double(r[c_score], source));
    if (retrain) a.retrain_score.push_back(to_double(r[c_retrain], source));
  }
  return a;
}

json aggregate_samples(const Samples& s, const std::vector<std::string>& names) {
  json out = model_block(s, s.after, names);
  std::vector<char> is_retain(s.size());
  for (size_t i = 0; i < s.size(); ++i) is_retain[i] = !s.forget[i];
  json retrieval;
  for (const auto& [label, mask] : {std::pair<const char*, const std::vector<char>*>{"forget", &s.forget},
                                    {"retain", &is_retain}}) {
    std::vector<int64_t> i2t, t2i;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!(*mask)[i]) continue;
      i2t.push_back(s.i2t_rank[i]);
      t2i.push_back(s.t2i_rank[i]);
    }
    json r;
    for (int64_t k : {1, 5, 10}) r[fmt::format("i2t_r{}", k)] = recall_at(i2t, k);
    for (int64_t k : {1, 5, 10}) r[fmt::format("t2i_r{}", k)] = recall_at(t2i, k);
    retrieval[label] = r;
  }
  out["retrieval"] = retrieval;
  std::vector<int32_t> all, forget, retain;
  class_sets(s, all, forget, retain);
  const ClassAccuracy knn = per_class_accuracy(s.knn_pred, s.concept, all);
  json rep;
  rep["knn_forget"] = macro_accuracy(knn, forget);
  rep["knn_retain"] = macro_accuracy(knn, retain);
  out["representation"] = rep;
  if (s.has_before()) {
    json before = model_block(s, s.before, names);
    json per_concept = json::object();
    for (int32_t c : all) {
      const ConceptStats a = concept_stats(s, s.after, c), b = concept_stats(s, s.before, c);
      json shift;
      shift["zero_shot"] = a.zs - b.zs;
      shift["image_dist0"] = a.image_dist0 - b.image_dist0;
      shift["text_dist0"] = a.text_dist0 - b.text_dist0;
      shift["own_cone"] = a.own_cone - b.own_cone;
      shift["parent_cone"] = a.parent_cone - b.parent_cone;
      per_concept[name_of(names, c)] = shift;
    }
    out["hierarchy"]["shift_per_concept"] = per_concept;
    out["before"] = before;
  }
  out["rows"] = static_cast<int64_t>(s.size());
  json fc = json::array();
  for (int32_t c : forget) fc.push_back(name_of(names, c));
  out["forget_classes"] = fc;
  out["classes"] = static_cast<int64_t>(all.size());
  return out;
}

json aggregate_audit(const AuditRows& a) {
  std::vector<double> members, nonmembers, forget, r_members, r_nonmembers, r_forget;
  const bool retrain = !a.retrain_score.empty();
  for (size_t i = 0; i < a.size(); ++i) {
    auto& dst = a.set[i] == "member" ? members : a.set[i] == "nonmember" ? nonmembers : forget;
    dst.push_back(a.score[i]);
    if (!retrain) continue;
    auto& rdst = a.set[i] == "member" ? r_members : a.set[i] == "nonmember" ? r_nonmembers : r_forget;
    rdst.push_back(a.retrain_score[i]);
  }
  auto block = [](const std::vector<double>& m, const std::vector<double>& o, const std::vector<double>& f) {
    const AuditThreshold t = fit_threshold(m, o);
    json j;
    j["threshold"] = t.threshold;
    j["fit_balanced_accuracy"] = t.balanced_accuracy;
    j["forget_nonmember"] = share_below(f, t.threshold);
    j["forget_score_mean"] = f.empty() ? kNaN : [&] {
      double sum = 0.0;
      for (double v : f) sum += v;
      return sum / static_cast<double>(f.size());
    }();
    return j;
  };
  json out = block(members, nonmembers, forget);
  out["member_pairs"] = static_cast<int64_t>(members.size());
  out["nonmember_pairs"] = static_cast<int64_t>(nonmembers.size());
  out["forget_pairs"] = static_cast<int64_t>(forget.size());
  if (retrain) {
    const json r = block(r_members, r_nonmembers, r_forget);
    out["retrain"] = r;
    out["gap_to_retrain"] = out["forget_nonmember"].get<double>() - r["forget_nonmember"].get<double>();
  }
  return out;
}

std::string per_concept_csv(const Samples& s, const std::vector<std::string>& names) {
  std::vector<int32_t> all, forget, retain;
  class_sets(s, all, forget, retain);
  std::string out = "concept,name,forget,rows,zero_shot,image_dist0,text_dist0,own_cone,parent_cone";
  if (s.has_before()) out += ",zero_shot_before,image_dist0_before,text_dist0_before,own_cone_before,parent_cone_before";
  out += "\n";
  for (int32_t c : all) {
    const ConceptStats a = concept_stats(s, s.after, c);
    const bool f = std::find(forget.begin(), forget.end(), c) != forget.end();
    out += fmt::format("{},\"{}\",{},{},{},{},{},{},{}", c, name_of(names, c), f ? 1 : 0, a.rows, cell(a.zs),
                       cell(a.image_dist0), cell(a.text_dist0), cell(a.own_cone), cell(a.parent_cone));
    if (s.has_before()) {
      const ConceptStats b = concept_stats(s, s.before, c);
      out += fmt::format(",{},{},{},{},{}", cell(b.zs), cell(b.image_dist0), cell(b.text_dist0), cell(b.own_cone),
                         cell(b.parent_cone));
    }
    out += "\n";
  }
  return out;
}

}  // namespace runner::eval
