// Sweep spec parsing (sweep_spec.h).
#include "config/sweep_spec.h"

#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <random>
#include <set>

#include "core/error.h"
#include "config/validate.h"
#include "core/hash.h"
#include "core/files.h"

namespace runner::config {

namespace {

std::string where(const std::string& source, const YAML::Node& n) {
  return n.Mark().is_null() ? source : fmt::format("{}:{}", source, n.Mark().line + 1);
}

// A value as YAML flow text, so that "key=" + text reads back as the same value.
std::string flow(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

std::string scalar(const YAML::Node& n, const std::string& source, const std::string& key) {
  if (!n.IsScalar()) throw ConfigError(fmt::format("{}: {} must be a string", where(source, n), key));
  return n.as<std::string>();
}

void check_key(const std::string& key, const YAML::Node& at, const std::string& source) {
  const auto dot = key.find('.');
  if (key == "ranks" || (dot != std::string::npos && dot > 0 && dot + 1 < key.size())) return;
  throw ConfigError(fmt::format("{}: '{}' is not a config key (section.key, original.section.key or ranks)",
                                where(source, at), key));
}

// check_key, and with run_keys_only also no ranks or original.* (the select block sets keys of the
// unlearning run only); `what` names the block in the message.
void check_key(const std::string& key, const YAML::Node& at, const std::string& source, bool run_keys_only,
               const std::string& what) {
  check_key(key, at, source);
  if (run_keys_only && (key == "ranks" || key.rfind("original.", 0) == 0)) {
    throw ConfigError(fmt::format("{}: '{}' is not allowed in {} (keys of the unlearning run only: no ranks, no original.*)",
                                  where(source, at), key, what));
  }
}

// {key: value, ...} -> ["key=value", ...]
std::vector<std::string> assignments(const YAML::Node& map, const std::string& source, const std::string& what,
                                     bool run_keys_only = false) {
  if (!map.IsMap()) throw ConfigError(fmt::format("{}: {} must be a mapping of config keys to values", where(source, map), what));
  std::vector<std::string> out;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    check_key(key, kv.first, source, run_keys_only, what);
    out.push_back(key + "=" + flow(kv.second));
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> value_lists(const YAML::Node& map, const std::string& source,
                                                                          const std::string& kind, bool run_keys_only = false) {
  if (!map.IsMap() || map.size() == 0) {
    throw ConfigError(fmt::format("{}: {} needs a mapping of keys to lists of values", where(source, map), kind));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    check_key(key, kv.first, source, run_keys_only, kind);
    if (!kv.second.IsSequence() || kv.second.size() == 0) {
      throw ConfigError(fmt::format("{}: {} '{}' needs a non-empty list of values", where(source, kv.second), kind, key));
    }
    std::vector<std::string> values;
    for (const auto& v : kv.second) values.push_back(key + "=" + flow(v));
    out.emplace_back(key, values);
  }
  return out;
}

std::vector<Assignment> product_axis(const YAML::Node& n, const std::string& source) {
  std::vector<Assignment> points{{}};
  for (const auto& [key, values] : value_lists(n, source, "product")) {
    std::vector<Assignment> next;
    for (const auto& p : points) {
      for (const auto& v : values) {
        Assignment a = p;
        a.push_back(v);
        next.push_back(a);
      }
    }
    points = next;
  }
  return points;
}

std::vector<Assignment> zip_axis(const YAML::Node& n, const std::string& source) {
  const auto lists = value_lists(n, source, "zip");
  const size_t len = lists.front().second.size();
  for (const auto& [key, values] : lists) {
    if (values.size() != len) {
      throw ConfigError(fmt::format("{}: zip lists differ in length ('{}' has {}, '{}' has {})", where(source, n),
                                    lists.front().first, len, key, values.size()));
    }
  }
  std::vector<Assignment> points(len);
  for (size_t i = 0; i < len; ++i) {
    for (const auto& kv : lists) points[i].push_back(kv.second[i]);
  }
  return points;
}

std::vector<Assignment> list_axis(const YAML::Node& n, const std::string& source) {
  if (!n.IsSequence() || n.size() == 0) {
    throw ConfigError(fmt::format("{}: list needs a non-empty list of {{key: value}} points", where(source, n)));
  }
  std::vector<Assignment> points;
  for (const auto& p : n) points.push_back(assignments(p, source, "a list point"));
  return points;
}

// An integer >= minimum (up to 2^64 - 1); ConfigError naming the key otherwise.
uint64_t count(const YAML::Node& n, const std::string& source, const std::string& key, uint64_t minimum) {
  const auto bad = [&]() {
    return ConfigError(fmt::format("{}: {} must be an integer >= {}", where(source, n), key, minimum));
  };
  if (!n.IsScalar()) throw bad();
  uint64_t v = 0;
  try {
    const auto i = n.as<int64_t>();
    if (i < 0) throw bad();
    v = static_cast<uint64_t>(i);
  } catch (const YAML::Exception&) {
    const std::string text = n.as<std::string>();
    if (!text.empty() && text.front() == '-') throw bad();
    try {
      v = n.as<uint64_t>();
    } catch (const YAML::Exception&) {
      throw bad();
    }
  }
  if (v < minimum) throw bad();
  return v;
}

// Portable random draws: std::mt19937_64 and std::seed_seq are specified bit-exactly; the bounded
// draw below replaces the implementation-defined distributions, so the same seed gives the same
// draws with every standard library.
std::mt19937_64 generator(uint64_t a, uint64_t b) {
  // seed_seq keeps 32 bits per word: split both values so that no bit is lost.
  std::seed_seq seq{static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(b),
                    static_cast<uint32_t>(b >> 32)};
  return std::mt19937_64(seq);
}

// Uniform in [0, bound), bound >= 1: rejection of the 2^64 mod bound lowest outputs.
uint64_t below(std::mt19937_64& g, uint64_t bound) {
  const uint64_t reject = (0 - bound) % bound;  // 2^64 mod bound
  uint64_t r = g();
  while (r < reject) r = g();
  return r % bound;
}

// C(n, k), saturated at the largest uint64_t.
uint64_t choose(uint64_t n, uint64_t k) {
  if (k > n) return 0;
  k = std::min(k, n - k);
  const uint64_t top = std::numeric_limits<uint64_t>::max();
  uint64_t c = 1;
  for (uint64_t i = 0; i < k; ++i) {
    // c * (n - i) / (i + 1) is exact; C(n, i) grows with i up to n / 2, so saturation stays.
    if (c > top / (n - i)) return top;
    c = c * (n - i) / (i + 1);
  }
  return c;
}


// `draws` distinct k-subsets of positions 0..n-1, each uniform (a partial Fisher-Yates shuffle,
// positions sorted, a subset drawn before is drawn again), in the order drawn.
std::vector<std::vector<size_t>> random_subsets(size_t n, size_t k, uint64_t draws, uint64_t seed) {
  std::mt19937_64 g = generator(seed, k);
  std::set<std::vector<size_t>> seen;
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> pos(n);
  while (out.size() < draws) {
    for (size_t i = 0; i < n; ++i) pos[i] = i;
    for (size_t i = 0; i < k; ++i) std::swap(pos[i], pos[i + static_cast<size_t>(below(g, n - i))]);
    std::vector<size_t> pick(pos.begin(), pos.begin() + static_cast<std::ptrdiff_t>(k));
    std::sort(pick.begin(), pick.end());
    if (seen.insert(pick).second) out.push_back(pick);
  }
  return out;
}

std::vector<Assignment> forget_axis(const YAML::Node& n, const std::string& source) {
  if (!n.IsMap()) throw ConfigError(fmt::format("{}: forget needs concepts, sizes and mode", where(source, n)));
  std::vector<std::string> concepts;
  std::vector<int64_t> sizes;
  std::string mode = "first", key = "unlearn.forget";
  uint64_t draws = 1, seed = 0;
  std::string random_only, random_at;  // the draws or seed key, if given, and where
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (k == "concepts" && kv.second.IsSequence()) {
      for (const auto& c : kv.second) concepts.push_back(scalar(c, source, "forget.concepts[]"));
    } else if (k == "sizes" && kv.second.IsSequence()) {
      for (const auto& s : kv.second) {
        try {
          sizes.push_back(s.as<int64_t>());
        } catch (const YAML::Exception&) {
          throw ConfigError(fmt::format("{}: forget.sizes must be integers", where(source, s)));
        }
      }
    } else if (k == "mode") {
      mode = scalar(kv.second, source, "forget.mode");
    } else if (k == "key") {
      key = scalar(kv.second, source, "forget.key");
    } else if (k == "draws") {
      draws = count(kv.second, source, "forget.draws", 1);
      random_only = k;
      random_at = where(source, kv.first);
    } else if (k == "seed") {
      seed = count(kv.second, source, "forget.seed", 0);
      random_only = k;
      random_at = where(source, kv.first);
    } else {
      throw ConfigError(fmt::format(
          "{}: unknown or malformed forget key '{}' (known: concepts, sizes, mode, key, draws, seed)",
          where(source, kv.first), k));
    }
  }
  if (concepts.empty()) throw ConfigError(fmt::format("{}: forget.concepts is empty", where(source, n)));
  if (sizes.empty()) sizes.push_back(1);
  if (mode != "first" && mode != "subsets" && mode != "random") {
    throw ConfigError(fmt::format("{}: forget.mode '{}' must be first, subsets or random", where(source, n), mode));
  }
  if (mode != "random" && !random_only.empty()) {
    throw ConfigError(fmt::format("{}: forget.{} applies only to mode: random (mode is {})", random_at, random_only, mode));
  }
  const std::set<std::string> distinct(concepts.begin(), concepts.end());
  if (distinct.size() != concepts.size()) throw ConfigError(fmt::format("{}: forget.concepts repeats a name", where(source, n)));
  std::vector<Assignment> points;
  auto add = [&](const std::vector<std::string>& set) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& c : set) list.push_back(c);
    points.push_back({key + "=" + flow(list)});
  };
  for (int64_t k : sizes) {
    if (k < 1 || k > static_cast<int64_t>(concepts.size())) {
      throw ConfigError(fmt::format("{}: forget size {} is outside 1..{} (the number of concepts listed)",
                                    where(source, n), k, concepts.size()));
    }
    if (mode == "first") {
      add({concepts.begin(), concepts.begin() + k});
      continue;
    }
    if (mode == "random") {
      const uint64_t all = choose(concepts.size(), static_cast<uint64_t>(k));
      if (draws > all) {
        throw ConfigError(fmt::format("{}: forget.draws {} exceeds the C({}, {}) = {} subsets of size {}",
                                      where(source, n), draws, concepts.size(), k, all, k));
      }
      for (const auto& pick : random_subsets(concepts.size(), static_cast<size_t>(k), draws, seed)) {
        std::vector<std::string> set;
        for (size_t i : pick) set.push_back(concepts[i]);
        add(set);
      }
      continue;
    }
    // Every k-subset in lexicographic order of positions.
    std::vector<size_t> idx(static_cast<size_t>(k));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    while (true) {
      std::vector<std::string> set;
      for (size_t i : idx) set.push_back(concepts[i]);
      add(set);
      int64_t i = k - 1;
      while (i >= 0 && idx[static_cast<size_t>(i)] == concepts.size() - static_cast<size_t>(k) + static_cast<size_t>(i)) --i;
      if (i < 0) break;
      ++idx[static_cast<size_t>(i)];
      for (auto j = static_cast<size_t>(i) + 1; j < idx.size(); ++j) idx[j] = idx[j - 1] + 1;
    }
  }
  return points;
}

SelectSpec select_block(const YAML::Node& n, const std::string& source) {
  if (!n.IsMap()) throw ConfigError(fmt::format("{}: select needs trials and space", where(source, n)));
  SelectSpec s;
  s.enabled = true;
  bool has_space = false;
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (k == "trials") {
      s.trials = static_cast<int64_t>(std::min<uint64_t>(count(v, source, "select.trials", 1),
                                                         std::numeric_limits<int64_t>::max()));
    } else if (k == "seed") {
      s.seed = count(v, source, "select.seed", 0);
    } else if (k == "axis") {
      s.axis = static_cast<int64_t>(std::min<uint64_t>(count(v, source, "select.axis", 0), 1u << 20));
    } else if (k == "retain_drop") {
      try {
        s.retain_drop = v.as<double>();
      } catch (const YAML::Exception&) {
        throw ConfigError(fmt::format("{}: select.retain_drop must be a number", where(source, v)));
      }
      if (!(s.retain_drop >= 0) || s.retain_drop == std::numeric_limits<double>::infinity()) {
        throw ConfigError(fmt::format("{}: select.retain_drop must be a finite number >= 0 (points)", where(source, v)));
      }
    } else if (k == "set") {
      s.set = assignments(v, source, "select.set", true);
    } else if (k == "fixed") {
      if (!v.IsSequence()) throw ConfigError(fmt::format("{}: select.fixed must be a list of method names", where(source, v)));
      s.methods_without_selection.clear();
      for (const auto& m : v) s.methods_without_selection.push_back(scalar(m, source, "select.fixed[]"));
    } else if (k == "ablations") {
      if (!v.IsSequence()) throw ConfigError(fmt::format("{}: select.ablations must be a list of keys", where(source, v)));
      for (const auto& m : v) s.ablations.push_back(scalar(m, source, "select.ablations[]"));
    } else if (k == "space") {
      if (!v.IsMap() || v.size() == 0) {
        throw ConfigError(fmt::format("{}: select.space needs a mapping of method names (or all) to {{key: [values]}}",
                                      where(source, v)));
      }
      for (const auto& m : v) {
        const std::string method = scalar(m.first, source, "select.space key");
        if (s.space.count(method)) {
          throw ConfigError(fmt::format("{}: select.space lists '{}' twice", where(source, m.first), method));
        }
        s.space[method] = value_lists(m.second, source, "select.space." + method, true);
      }
      has_space = true;
    } else {
      throw ConfigError(fmt::format("{}: unknown key 'select.{}' (known: trials, seed, axis, retain_drop, set, fixed, ablations, space)",
                                    where(source, kv.first), k));
    }
  }
  if (s.trials < 1) throw ConfigError(fmt::format("{}: select.trials is required (>= 1)", where(source, n)));
  if (!has_space) throw ConfigError(fmt::format("{}: select.space is required", where(source, n)));
  for (const auto& [method, keys] : s.space) {
    for (const auto& kv : keys) {
      if (std::find(s.ablations.begin(), s.ablations.end(), kv.first) != s.ablations.end()) {
        throw ConfigError(fmt::format("{}: select.space.{} sets '{}', which select.ablations lists: an ablation's "
                                      "switch is not a setting to choose", where(source, n), method, kv.first));
      }
    }
  }
  return s;
}

}  // namespace

std::vector<Assignment> select_trials(const SweepSpec& spec, const std::string& method) {
  const SelectSpec& sel = spec.select;
  if (!sel.enabled) throw ConfigError(fmt::format("{}: no select block, so no trials for method '{}'", spec.source, method));
  const auto& fixed = sel.methods_without_selection;
  if (std::find(fixed.begin(), fixed.end(), method) != fixed.end()) return {};
  const auto all = sel.space.find("all");
  const auto own = sel.space.find(method);
  if (own == sel.space.end() && all == sel.space.end()) {
    throw ConfigError(fmt::format("{}: select.space has no entry for method '{}' and no 'all' (add one, or list it in select.fixed)",
                                  spec.source, method));
  }
  // The merged space: all's keys the method does not set, then the method's.
  std::vector<std::pair<std::string, std::vector<std::string>>> space;
  if (all != sel.space.end()) {
    for (const auto& kv : all->second) {
      const bool overridden = own != sel.space.end() &&
                              std::any_of(own->second.begin(), own->second.end(),
                                          [&](const auto& o) { return o.first == kv.first; });
      if (!overridden) space.push_back(kv);
    }
  }
  if (own != sel.space.end()) space.insert(space.end(), own->second.begin(), own->second.end());
  uint64_t combos = 1;
  for (const auto& kv : space) {
    if (combos > std::numeric_limits<uint64_t>::max() / kv.second.size()) {
      throw ConfigError(fmt::format("{}: select.space of method '{}' has too many combinations", spec.source, method));
    }
    combos *= kv.second.size();
  }
  const auto trials = static_cast<uint64_t>(sel.trials);
  if (combos < trials) {
    throw ConfigError(fmt::format("{}: select.space of method '{}' has {} combinations, fewer than select.trials = {}",
                                  spec.source, method, combos, trials));
  }
  // Distinct indices into the product (Floyd's sampling: each `trials`-subset equally likely).
  std::set<uint64_t> picked;
  if (combos == trials) {
    for (uint64_t i = 0; i < combos; ++i) picked.insert(i);
  } else {
    std::mt19937_64 g = generator(sel.seed, core::fnv1a64(method));
    for (uint64_t j = combos - trials; j < combos; ++j) {
      const uint64_t t = below(g, j + 1);
      if (!picked.insert(t).second) picked.insert(j);
    }
  }
  // Index -> assignment, the last key fastest.
  std::vector<Assignment> out;
  for (uint64_t index : picked) {
    Assignment a(space.size());
    for (size_t i = space.size(); i-- > 0;) {
      const auto& values = space[i].second;
      a[i] = values[static_cast<size_t>(index % values.size())];
      index /= values.size();
    }
    out.push_back(a);
  }
  return out;
}

SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source) {
  check_yaml_text(yaml_text, source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, yaml_error_text(e)));
  }
  if (!root.IsMap()) throw ConfigError(fmt::format("{}: a sweep spec is a mapping (name, base, set, originals, axes, select)", source));
  SweepSpec s;
  s.source = source;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "name") {
      s.name = scalar(v, source, "name");
    } else if (key == "root") {
      s.root = scalar(v, source, "root");
    } else if (key == "base") {
      s.base = scalar(v, source, "base");
    } else if (key == "set") {
      s.set = assignments(v, source, "set");
    } else if (key == "ranks") {
      try {
        s.ranks = v.as<int64_t>();
      } catch (const YAML::Exception&) {
        throw ConfigError(fmt::format("{}: ranks must be an integer", where(source, v)));
      }
    } else if (key == "originals") {
      if (!v.IsMap()) throw ConfigError(fmt::format("{}: originals needs base and/or set", where(source, v)));
      for (const auto& o : v) {
        const std::string ok = o.first.as<std::string>();
        if (ok == "base") {
          s.original_base = scalar(o.second, source, "originals.base");
        } else if (ok == "set") {
          s.original_set = assignments(o.second, source, "originals.set");
        } else {
          throw ConfigError(fmt::format("{}: unknown key 'originals.{}' (known: base, set)", where(source, o.first), ok));
        }
      }
      s.originals = true;
    } else if (key == "axes") {
      if (!v.IsSequence()) throw ConfigError(fmt::format("{}: axes must be a list", where(source, v)));
      for (const auto& axis : v) {
        if (!axis.IsMap() || axis.size() != 1) {
          throw ConfigError(fmt::format("{}: each axis is one of product:, zip:, list:, forget:", where(source, axis)));
        }
        const std::string kind = axis.begin()->first.as<std::string>();
        const YAML::Node body = axis.begin()->second;  // a copy: the iterator is a temporary
        if (kind == "product") s.axes.push_back(product_axis(body, source));
        else if (kind == "zip") s.axes.push_back(zip_axis(body, source));
        else if (kind == "list") s.axes.push_back(list_axis(body, source));
        else if (kind == "forget") s.axes.push_back(forget_axis(body, source));
        else throw ConfigError(fmt::format("{}: unknown axis '{}' (product, zip, list, forget)", where(source, axis), kind));
        s.axis_kinds.push_back(kind);
      }
    } else if (key == "select") {
      s.select = select_block(v, source);
    } else {
      throw ConfigError(fmt::format("{}: unknown key '{}' (known: name, root, base, set, originals, ranks, axes, select)",
                                    where(source, kv.first), key));
    }
  }
  if (s.name.empty()) throw ConfigError(fmt::format("{}: name is required (results go to <root>/<name>/)", source));
  if (s.select.enabled && s.select.axis > 0 && s.select.axis >= static_cast<int64_t>(s.axes.size())) {
    throw ConfigError(fmt::format("{}: select.axis {} names no axis (the spec has {}; 0 is the first)", source,
                                  s.select.axis, s.axes.size()));
  }
  if (s.name.find('/') != std::string::npos || s.name == "." || s.name == "..") {
    throw ConfigError(fmt::format("{}: name '{}' must be a plain folder name", source, s.name));
  }
  if (s.ranks < 1) throw ConfigError(fmt::format("{}: ranks must be >= 1", source));
  return s;
}

SweepSpec load_sweep_spec(const std::string& path) {
  return parse_sweep_spec(read_config_text(path, "sweep spec"), path);
}

}  // namespace runner::config
