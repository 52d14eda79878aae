// Side files (samples.csv, audit.csv, classes.csv) and the aggregates computed from them.
#include "eval/samples.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "core/error.h"
#include "eval/metrics.h"

namespace runner::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Doubles in their shortest round-trip form, so a file read back aggregates to the same numbers.
std::string cell(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }

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

// ---- One cell of a column, by the column's value type ---------------------------------------

std::string cell_text(int64_t v) { return fmt::format("{}", v); }
std::string cell_text(int32_t v) { return fmt::format("{}", v); }
std::string cell_text(char v) { return v ? "1" : "0"; }
std::string cell_text(double v) { return cell(v); }

void parse_cell(std::vector<int64_t>& out, const std::string& text, const std::string& source) {
  out.push_back(to_int(text, source));
}
void parse_cell(std::vector<int32_t>& out, const std::string& text, const std::string& source) {
  out.push_back(static_cast<int32_t>(to_int(text, source)));
}
void parse_cell(std::vector<char>& out, const std::string& text, const std::string& source) {
  out.push_back(static_cast<char>(to_int(text, source) != 0));
}
void parse_cell(std::vector<double>& out, const std::string& text, const std::string& source) {
  out.push_back(to_double(text, source));
}

// A column's values as the type its aggregate needs; a list entry pairing an aggregate with a
// column of another type is a programming error (the unit tests aggregate every column).
template <class T, class U>
const std::vector<T>& values_as(const std::vector<U>& values, const char* column) {
  if constexpr (std::is_same_v<T, U>) {
    return values;
  } else {
    throw std::logic_error(fmt::format("eval: column {}: its aggregate needs another value type", column));
  }
}

// Calls v(header name, values) for every column of samples.csv, in order.
template <class S, class V>
void for_each_csv_column(S& s, bool before, V&& v) {
  auto plain = [&](const char* name, auto& values, Aggregate, const char*) { v(std::string(name), values); };
  visit_row_columns(s, plain);
  visit_model_columns(s.after, plain);
  if (!before) return;
  visit_model_columns(s.before, [&](const char* name, auto& values, Aggregate, const char*) {
    v(std::string(name) + "_before", values);
  });
}

// Reads the columns one visit lists (names + suffix) from every row: all named in the header
// (IoError naming the first missing one), then parsed row by row.
template <class Visit>
void read_columns(Visit&& visit, const std::string& suffix, const std::vector<std::vector<std::string>>& rows,
                  const std::vector<std::string>& header, const std::string& source) {
  std::vector<size_t> index;
  std::vector<std::function<void(const std::string&)>> parse;
  constexpr size_t kAbsent = static_cast<size_t>(-1);
  visit([&](const char* name, auto& values, Aggregate, const char*) {
    if (is_added_column(name) && std::find(header.begin(), header.end(), name + suffix) == header.end()) {
      index.push_back(kAbsent);
      parse.emplace_back([&values, &source](const std::string&) { parse_cell(values, "nan", source); });
      return;
    }
    index.push_back(column(header, name + suffix, source));
    parse.emplace_back([&values, &source](const std::string& text) { parse_cell(values, text, source); });
  });
  static const std::string kNone;
  for (const auto& r : rows) {
    for (size_t c = 0; c < index.size(); ++c) parse[c](index[c] == kAbsent ? kNone : r[index[c]]);
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

// The value of a hierarchy column over the rows selected by mask (NaN for a column of another kind).
template <class T>
double hierarchy_value(const char* name, const std::vector<T>& values, Aggregate agg, const std::vector<char>& mask) {
  if (agg == Aggregate::kHierarchyMean) return masked_mean(values_as<double>(values, name), mask);
  if (agg == Aggregate::kHierarchyCone) return cone_share(values_as<int32_t>(values, name), mask);
  return kNaN;
}

bool is_hierarchy(Aggregate agg) { return agg == Aggregate::kHierarchyMean || agg == Aggregate::kHierarchyCone; }

json hierarchy_part(const ModelValues& m, const std::vector<char>& mask) {
  json h;
  visit_model_columns(m, [&](const char* name, const auto& values, Aggregate agg, const char* key) {
    if (is_hierarchy(agg)) h[key] = hierarchy_value(name, values, agg, mask);
  });
  return h;
}

// zero_shot and hierarchy blocks of one model's values.
json model_block(const Samples& s, const ModelValues& m, const std::vector<std::string>& names) {
  std::vector<int32_t> all, forget, retain;
  class_sets(s, all, forget, retain);
  json out;
  visit_model_columns(m, [&](const char* name, const auto& values, Aggregate agg, const char* key) {
    if (agg != Aggregate::kZeroShot) return;
    const ClassAccuracy acc = per_class_accuracy(values_as<int32_t>(values, name), s.concept, all);
    json zs;
    zs["forget_top1"] = macro_accuracy(acc, forget);
    zs["retain_top1"] = macro_accuracy(acc, retain);
    zs["all_top1"] = macro_accuracy(acc, all);
    json per_class = json::object();
    for (size_t i = 0; i < all.size(); ++i) per_class[name_of(names, all[i])] = acc.acc[i];
    zs["per_class"] = per_class;
    out[key] = zs;
  });
  std::vector<char> is_forget(s.forget), is_retain(s.size());
  for (size_t i = 0; i < s.size(); ++i) is_retain[i] = !s.forget[i];
  json h;
  bool euclidean = true;
  for (int32_t v : m.own_cone) euclidean = euclidean && v < 0;
  h["geometry"] = euclidean ? "euclidean (dist0 = norm before normalization; no cones)" : "lorentz";
  h["forget"] = hierarchy_part(m, is_forget);
  h["retain"] = hierarchy_part(m, is_retain);
  out["hierarchy"] = h;
  return out;
}

// Columns summarized per concept (classes.csv, shift_per_concept): zero-shot and hierarchy.
bool summarized_per_concept(Aggregate agg) { return agg == Aggregate::kZeroShot || is_hierarchy(agg); }

std::vector<std::string> concept_keys() {
  std::vector<std::string> keys;
  const ModelValues none;
  visit_model_columns(none, [&](const char*, const auto&, Aggregate agg, const char* key) {
    if (summarized_per_concept(agg)) keys.emplace_back(key);
  });
  return keys;
}

// Per-concept summaries of one model's values, in the order of concept_keys().
struct ConceptStats {
  int64_t rows = 0;
  std::vector<double> values;
};
ConceptStats concept_stats(const Samples& s, const ModelValues& m, int32_t c) {
  std::vector<char> mask(s.size());
  ConceptStats st;
  for (size_t i = 0; i < s.size(); ++i) {
    mask[i] = s.concept[i] == c;
    st.rows += mask[i];
  }
  visit_model_columns(m, [&](const char* name, const auto& values, Aggregate agg, const char*) {
    if (agg == Aggregate::kZeroShot) {
      st.values.push_back(per_class_accuracy(values_as<int32_t>(values, name), s.concept, {c}).acc[0]);
    } else if (is_hierarchy(agg)) {
      st.values.push_back(hierarchy_value(name, values, agg, mask));
    }
  });
  return st;
}

}  // namespace

std::vector<std::string> sample_columns(bool before) {
  std::vector<std::string> names;
  const Samples none;
  for_each_csv_column(none, before, [&](const std::string& name, const auto&) { names.push_back(name); });
  return names;
}

std::string to_csv(const Samples& s) {
  std::string out;
  for_each_csv_column(s, s.has_before(), [&](const std::string& name, const auto&) {
    out += (out.empty() ? "" : ",") + name;
  });
  out += "\n";
  for (size_t i = 0; i < s.size(); ++i) {
    std::string line;
    for_each_csv_column(s, s.has_before(), [&](const std::string&, const auto& values) {
      if (!line.empty()) line += ',';
      line += cell_text(values[i]);
    });
    out += line + "\n";
  }
  return out;
}

Samples samples_from_csv(const std::string& text, const std::string& source) {
  std::vector<std::string> header;
  const auto rows = read_table(text, source, header);
  Samples s;
  read_columns([&](auto&& v) { visit_row_columns(s, v); }, "", rows, header, source);
  read_columns([&](auto&& v) { visit_model_columns(s.after, v); }, "", rows, header, source);
  // The original's columns are there when the first of them is.
  std::string first;
  visit_model_columns(s.before, [&](const char* name, auto&, Aggregate, const char*) {
    if (first.empty()) first = name;
  });
  if (std::find(header.begin(), header.end(), first + "_before") != header.end()) {
    read_columns([&](auto&& v) { visit_model_columns(s.before, v); }, "_before", rows, header, source);
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
    json r;
    visit_row_columns(s, [&](const char* name, const auto& values, Aggregate agg, const char* key) {
      if (agg != Aggregate::kRecall) return;
      const std::vector<int64_t>& all_ranks = values_as<int64_t>(values, name);
      std::vector<int64_t> ranks;
      for (size_t i = 0; i < s.size(); ++i) {
        if ((*mask)[i]) ranks.push_back(all_ranks[i]);
      }
      for (int64_t k : {1, 5, 10}) r[fmt::format("{}_r{}", key, k)] = recall_at(ranks, k);
    });
    retrieval[label] = r;
  }
  out["retrieval"] = retrieval;
  std::vector<int32_t> all, forget, retain;
  class_sets(s, all, forget, retain);
  json rep;
  visit_row_columns(s, [&](const char* name, const auto& values, Aggregate agg, const char* key) {
    if (agg != Aggregate::kKnnAccuracy) return;
    const ClassAccuracy acc = per_class_accuracy(values_as<int32_t>(values, name), s.concept, all);
    rep[std::string(key) + "_forget"] = macro_accuracy(acc, forget);
    rep[std::string(key) + "_retain"] = macro_accuracy(acc, retain);
  });
  out["representation"] = rep;
  if (s.has_before()) {
    json before = model_block(s, s.before, names);
    const std::vector<std::string> keys = concept_keys();
    json per_concept = json::object();
    for (int32_t c : all) {
      const ConceptStats a = concept_stats(s, s.after, c), b = concept_stats(s, s.before, c);
      json shift;
      for (size_t j = 0; j < keys.size(); ++j) shift[keys[j]] = a.values[j] - b.values[j];
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
    const HeldOutAccuracy h = heldout_balanced_accuracy(m, o);
    j["heldout_balanced_accuracy"] = h.balanced_accuracy;
    j["heldout_ba_lo"] = h.lo;
    j["heldout_ba_hi"] = h.hi;
    // Informative: the held-out interval lies above chance.
    j["informative"] = !std::isnan(h.lo) && h.lo > 50.0;
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
  std::string out = "concept,name,forget,rows";
  const std::vector<std::string> keys = concept_keys();
  for (const auto& k : keys) out += "," + k;
  if (s.has_before()) {
    for (const auto& k : keys) out += "," + k + "_before";
  }
  out += "\n";
  for (int32_t c : all) {
    const ConceptStats a = concept_stats(s, s.after, c);
    const bool f = std::find(forget.begin(), forget.end(), c) != forget.end();
    out += fmt::format("{},\"{}\",{},{}", c, name_of(names, c), f ? 1 : 0, a.rows);
    for (double v : a.values) out += "," + cell(v);
    if (s.has_before()) {
      for (double v : concept_stats(s, s.before, c).values) out += "," + cell(v);
    }
    out += "\n";
  }
  return out;
}

}  // namespace runner::eval
