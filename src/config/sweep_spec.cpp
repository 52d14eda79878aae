// Sweep spec parsing (sweep_spec.h).
#include "config/sweep_spec.h"

#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <set>

#include "core/error.h"
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

// {key: value, ...} -> ["key=value", ...]
std::vector<std::string> assignments(const YAML::Node& map, const std::string& source, const std::string& what) {
  if (!map.IsMap()) throw ConfigError(fmt::format("{}: {} must be a mapping of config keys to values", where(source, map), what));
  std::vector<std::string> out;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    check_key(key, kv.first, source);
    out.push_back(key + "=" + flow(kv.second));
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> value_lists(const YAML::Node& map, const std::string& source,
                                                                          const char* kind) {
  if (!map.IsMap() || map.size() == 0) {
    throw ConfigError(fmt::format("{}: {} needs a mapping of keys to lists of values", where(source, map), kind));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    check_key(key, kv.first, source);
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

std::vector<Assignment> forget_axis(const YAML::Node& n, const std::string& source) {
  if (!n.IsMap()) throw ConfigError(fmt::format("{}: forget needs concepts, sizes and mode", where(source, n)));
  std::vector<std::string> concepts;
  std::vector<int64_t> sizes;
  std::string mode = "first", key = "unlearn.forget";
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
    } else {
      throw ConfigError(fmt::format("{}: unknown or malformed forget key '{}' (known: concepts, sizes, mode, key)",
                                    where(source, kv.first), k));
    }
  }
  if (concepts.empty()) throw ConfigError(fmt::format("{}: forget.concepts is empty", where(source, n)));
  if (sizes.empty()) sizes.push_back(1);
  if (mode != "first" && mode != "subsets") {
    throw ConfigError(fmt::format("{}: forget.mode '{}' must be first or subsets", where(source, n), mode));
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

}  // namespace

SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw ConfigError(fmt::format("{}: a sweep spec is a mapping (name, base, set, originals, axes)", source));
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
        const YAML::Node& body = axis.begin()->second;
        if (kind == "product") s.axes.push_back(product_axis(body, source));
        else if (kind == "zip") s.axes.push_back(zip_axis(body, source));
        else if (kind == "list") s.axes.push_back(list_axis(body, source));
        else if (kind == "forget") s.axes.push_back(forget_axis(body, source));
        else throw ConfigError(fmt::format("{}: unknown axis '{}' (product, zip, list, forget)", where(source, axis), kind));
        s.axis_kinds.push_back(kind);
      }
    } else {
      throw ConfigError(fmt::format("{}: unknown key '{}' (known: name, root, base, set, originals, ranks, axes)",
                                    where(source, kv.first), key));
    }
  }
  if (s.name.empty()) throw ConfigError(fmt::format("{}: name is required (results go to <root>/<name>/)", source));
  if (s.name.find('/') != std::string::npos || s.name == "." || s.name == "..") {
    throw ConfigError(fmt::format("{}: name '{}' must be a plain folder name", source, s.name));
  }
  if (s.ranks < 1) throw ConfigError(fmt::format("{}: ranks must be >= 1", source));
  return s;
}

SweepSpec load_sweep_spec(const std::string& path) { return parse_sweep_spec(core::read_text_file(path), path); }

}  // namespace runner::config
