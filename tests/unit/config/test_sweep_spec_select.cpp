// Sweep spec extensions: forget axes with mode: random (distinct uniform k-subsets from a generator
// seeded by (seed, k)), and the select block with the settings drawn for each method's trials.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "config/sweep_spec.h"
#include "core/error.h"

namespace runner::config {
namespace {

SweepSpec spec_of(const std::string& body) { return parse_sweep_spec("name: x\n" + body, "s.yaml"); }

std::string error_of(const std::string& body) {
  try {
    spec_of(body);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << body;
  return "";
}

std::string trials_error(const SweepSpec& spec, const std::string& method) {
  try {
    select_trials(spec, method);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for method " << method;
  return "";
}

// "unlearn.forget=[a, c]" -> {"a", "c"}
std::vector<std::string> names(const Assignment& a) {
  EXPECT_EQ(a.size(), 1u);
  const std::string& s = a.at(0);
  const std::string head = "unlearn.forget=[";
  EXPECT_EQ(s.rfind(head, 0), 0u) << s;
  EXPECT_EQ(s.back(), ']') << s;
  std::vector<std::string> out;
  const std::string body = s.substr(head.size(), s.size() - head.size() - 1);
  size_t at = 0;
  while (at <= body.size()) {
    const size_t comma = body.find(", ", at);
    out.push_back(body.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 2;
  }
  return out;
}

std::vector<Assignment> forget_points(const std::string& forget) {
  const SweepSpec s = spec_of("axes:\n  - forget: " + forget + "\n");
  EXPECT_EQ(s.axes.size(), 1u);
  EXPECT_EQ(s.axis_kinds.at(0), "forget");
  return s.axes.at(0);
}

// The points of one size, in order.
std::vector<std::vector<std::string>> of_size(const std::vector<Assignment>& points, size_t k) {
  std::vector<std::vector<std::string>> out;
  for (const auto& p : points) {
    auto n = names(p);
    if (n.size() == k) out.push_back(n);
  }
  return out;
}

const std::vector<std::string> kConcepts = {"a", "b", "c", "d", "e", "f", "g", "h"};

TEST(SweepSpecRandomForget, DrawsDistinctSubsetsOfEachSize) {
  const auto points = forget_points("{concepts: [a, b, c, d, e, f, g, h], sizes: [2, 3], mode: random, draws: 5, seed: 7}");
  ASSERT_EQ(points.size(), 10u);
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(names(points[i]).size(), i < 5 ? 2u : 3u);  // sizes in order
  for (size_t k : {2u, 3u}) {
    const auto sets = of_size(points, k);
    ASSERT_EQ(sets.size(), 5u);
    EXPECT_EQ(std::set<std::vector<std::string>>(sets.begin(), sets.end()).size(), 5u);  // distinct
    for (const auto& set : sets) {
      std::vector<size_t> pos;
      for (const auto& name : set) {
        const auto it = std::find(kConcepts.begin(), kConcepts.end(), name);
        ASSERT_NE(it, kConcepts.end()) << name;
        pos.push_back(static_cast<size_t>(it - kConcepts.begin()));
      }
      EXPECT_TRUE(std::is_sorted(pos.begin(), pos.end()));  // names in the order of concepts
      EXPECT_EQ(std::set<size_t>(pos.begin(), pos.end()).size(), k);
    }
  }
  // draws defaults to 1; all C(n, k) subsets can be drawn.
  EXPECT_EQ(forget_points("{concepts: [a, b, c, d], sizes: [1, 2], mode: random}").size(), 2u);
  const auto every = forget_points("{concepts: [a, b, c, d], sizes: [2], mode: random, draws: 6}");
  EXPECT_EQ(std::set<Assignment>(every.begin(), every.end()).size(), 6u);
}

TEST(SweepSpecRandomForget, ReproducibleAndSeeded) {
  const std::string head = "{concepts: [a, b, c, d, e, f, g, h], sizes: [3], mode: random, draws: 6, seed: ";
  const auto a = forget_points(head + "11}");
  EXPECT_EQ(forget_points(head + "11}"), a);
  EXPECT_NE(forget_points(head + "12}"), a);
  // seed defaults to 0; seeds differing in high bits only differ.
  EXPECT_EQ(forget_points(head + "0}"), forget_points("{concepts: [a, b, c, d, e, f, g, h], sizes: [3], mode: random, draws: 6}"));
  EXPECT_NE(forget_points(head + "4294967296}"), forget_points(head + "0}"));
}

TEST(SweepSpecRandomForget, AddingASizeLeavesTheOtherSizesSets) {
  const std::string concepts = "{concepts: [a, b, c, d, e, f, g, h], mode: random, draws: 4, seed: 3, sizes: ";
  const auto two = forget_points(concepts + "[2]}");
  const auto more = forget_points(concepts + "[4, 2, 3]}");
  ASSERT_EQ(more.size(), 12u);
  EXPECT_EQ(of_size(more, 2), of_size(two, 2));
  EXPECT_EQ(of_size(more, 4), of_size(forget_points(concepts + "[4]}"), 4));
}

TEST(SweepSpecRandomForget, PinnedDraws) {
  // std::mt19937_64 and std::seed_seq are specified bit-exactly and the bounded draw is our own:
  // these sets are the same with every standard library.
  const auto points = forget_points("{concepts: [a, b, c, d, e, f, g, h], sizes: [3], mode: random, draws: 3, seed: 0}");
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points, (std::vector<Assignment>{{"unlearn.forget=[c, e, h]"}, {"unlearn.forget=[a, e, h]"}, {"unlearn.forget=[d, g, h]"}}));
}

TEST(SweepSpecRandomForget, Errors) {
  // Line 3: the forget mapping.
  std::string e = error_of("axes:\n  - forget: {concepts: [a, b, c, d], sizes: [2], mode: random, draws: 7}\n");
  EXPECT_NE(e.find("s.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("forget.draws 7 exceeds the C(4, 2) = 6"), std::string::npos) << e;
  EXPECT_NE(e.find("size 2"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], sizes: [1], draws: 2}\n");
  EXPECT_NE(e.find("s.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("forget.draws applies only to mode: random"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], sizes: [1], mode: subsets, seed: 2}\n");
  EXPECT_NE(e.find("forget.seed applies only to mode: random"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], mode: random, draws: 0}\n");
  EXPECT_NE(e.find("forget.draws must be an integer >= 1"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], mode: random, seed: -1}\n");
  EXPECT_NE(e.find("forget.seed must be an integer >= 0"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], mode: shuffled}\n");
  EXPECT_NE(e.find("first, subsets or random"), std::string::npos) << e;
  e = error_of("axes:\n  - forget: {concepts: [a, b, c], count: 2}\n");
  EXPECT_NE(e.find("known: concepts, sizes, mode, key, draws, seed"), std::string::npos) << e;
}

const char* kSelect = R"(select:
  trials: 4
  seed: 9
  retain_drop: 2.5
  set: {unlearn.forget: [shirt, bag], train.seed: 100}
  space:
    all: {unlearn.lr: [0.0005, 0.001, 0.002], unlearn.steps: [20, 40]}
    hac: {unlearn.beta: [0.5, 1.0]}
)";

TEST(SweepSpecSelect, ParsesTheBlock) {
  const SweepSpec none = spec_of("axes: []\n");
  EXPECT_FALSE(none.select.enabled);
  const SweepSpec s = spec_of(kSelect);
  const SelectSpec& sel = s.select;
  EXPECT_TRUE(sel.enabled);
  EXPECT_EQ(sel.trials, 4);
  EXPECT_EQ(sel.seed, 9u);
  EXPECT_EQ(sel.retain_drop, 2.5);
  EXPECT_EQ(sel.set, (std::vector<std::string>{"unlearn.forget=[shirt, bag]", "train.seed=100"}));
  EXPECT_EQ(sel.methods_without_selection, (std::vector<std::string>{"none", "retrain"}));
  ASSERT_EQ(sel.space.size(), 2u);
  const auto& all = sel.space.at("all");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "unlearn.lr");
  EXPECT_EQ(all[0].second, (std::vector<std::string>{"unlearn.lr=0.0005", "unlearn.lr=0.001", "unlearn.lr=0.002"}));
  EXPECT_EQ(all[1].first, "unlearn.steps");
  EXPECT_EQ(all[1].second, (std::vector<std::string>{"unlearn.steps=20", "unlearn.steps=40"}));
  const auto& hac = sel.space.at("hac");
  ASSERT_EQ(hac.size(), 1u);
  EXPECT_EQ(hac[0].second, (std::vector<std::string>{"unlearn.beta=0.5", "unlearn.beta=1.0"}));
  // The merged space of hac: all's keys, then its own.
  const auto trials = select_trials(s, "hac");
  ASSERT_EQ(trials.size(), 4u);
  for (const auto& t : trials) {
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].rfind("unlearn.lr=", 0), 0u) << t[0];
    EXPECT_EQ(t[1].rfind("unlearn.steps=", 0), 0u) << t[1];
    EXPECT_EQ(t[2].rfind("unlearn.beta=", 0), 0u) << t[2];
  }
  // retain_drop defaults to 5; fixed replaces the methods run as they are.
  const SweepSpec f = spec_of("select: {trials: 1, fixed: [none], space: {all: {unlearn.lr: [1]}}}\n");
  EXPECT_EQ(f.select.retain_drop, 5.0);
  EXPECT_EQ(f.select.methods_without_selection, (std::vector<std::string>{"none"}));
  EXPECT_TRUE(select_trials(f, "none").empty());
  EXPECT_EQ(select_trials(f, "retrain"), (std::vector<Assignment>{{"unlearn.lr=1"}}));
}

TEST(SweepSpecSelect, ErrorsNameTheFileLineAndKey) {
  std::string e = error_of("select:\n  trials: 2\n  trails: 3\n  space: {all: {unlearn.lr: [1, 2]}}\n");
  EXPECT_NE(e.find("s.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'select.trails'"), std::string::npos) << e;
  EXPECT_NE(e.find("known: trials, seed, axis, retain_drop, set, fixed, ablations, space"), std::string::npos) << e;
  e = error_of("select:\n  trials: 2\n  space: {}\n");
  EXPECT_NE(e.find("s.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("select.space needs"), std::string::npos) << e;
  e = error_of("select: {trials: 2}\n");
  EXPECT_NE(e.find("select.space is required"), std::string::npos) << e;
  e = error_of("select: {space: {all: {unlearn.lr: [1]}}}\n");
  EXPECT_NE(e.find("select.trials is required"), std::string::npos) << e;
  e = error_of("select: {trials: 0, space: {all: {unlearn.lr: [1]}}}\n");
  EXPECT_NE(e.find("select.trials must be an integer >= 1"), std::string::npos) << e;
  e = error_of("select: {trials: 1, retain_drop: -1, space: {all: {unlearn.lr: [1]}}}\n");
  EXPECT_NE(e.find("select.retain_drop"), std::string::npos) << e;
  e = error_of("select: {trials: 1, space: {hac: {unlearn.lr: []}}}\n");
  EXPECT_NE(e.find("select.space.hac 'unlearn.lr' needs a non-empty list"), std::string::npos) << e;
  e = error_of("select: {trials: 1, space: {hac: {lr: [1]}}}\n");
  EXPECT_NE(e.find("'lr' is not a config key"), std::string::npos) << e;
  e = error_of("select: {trials: 1, space: {hac: {ranks: [1, 2]}}}\n");
  EXPECT_NE(e.find("'ranks' is not allowed in select.space.hac"), std::string::npos) << e;
  e = error_of("select: {trials: 1, set: {original.train.seed: 1}, space: {hac: {unlearn.lr: [1]}}}\n");
  EXPECT_NE(e.find("'original.train.seed' is not allowed in select.set"), std::string::npos) << e;
  e = error_of("selection: {}\n");
  EXPECT_NE(e.find("axes, select)"), std::string::npos) << e;
}

TEST(SweepSpecSelect, TrialsAreDistinctReproducibleAndInProductOrder) {
  const SweepSpec s = spec_of(kSelect);
  const auto a = select_trials(s, "hac");
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(std::set<Assignment>(a.begin(), a.end()).size(), 4u);
  EXPECT_EQ(select_trials(spec_of(kSelect), "hac"), a);
  // Ascending product order: lr, steps, beta, the last fastest.
  const auto index = [&](const Assignment& t) {
    const auto& sp = s.select.space;
    const auto at = [](const std::vector<std::string>& v, const std::string& x) {
      return static_cast<size_t>(std::find(v.begin(), v.end(), x) - v.begin());
    };
    return (at(sp.at("all")[0].second, t[0]) * 2 + at(sp.at("all")[1].second, t[1])) * 2 + at(sp.at("hac")[0].second, t[2]);
  };
  for (size_t i = 1; i < a.size(); ++i) EXPECT_LT(index(a[i - 1]), index(a[i]));
  // Other seeds draw other settings (not every one of several seeds the same).
  std::string text = kSelect;
  bool differs = false;
  for (const char* seed : {"1", "2", "3"}) {
    std::string t = text;
    t.replace(t.find("seed: 9"), 7, std::string("seed: ") + seed);
    differs = differs || select_trials(spec_of(t), "hac") != a;
  }
  EXPECT_TRUE(differs);
  // A method with only "all" draws from all's 6 combinations.
  const auto ga = select_trials(s, "ga");
  ASSERT_EQ(ga.size(), 4u);
  for (const auto& t : ga) EXPECT_EQ(t.size(), 2u);
}

TEST(SweepSpecSelect, ExactlyTrialsCombinationsAreAllTakenInProductOrder) {
  const SweepSpec s = spec_of("select:\n  trials: 6\n  space:\n    all: {unlearn.lr: [1, 2, 3], unlearn.steps: [20, 40]}\n");
  EXPECT_EQ(select_trials(s, "ga"), (std::vector<Assignment>{{"unlearn.lr=1", "unlearn.steps=20"},
                                                             {"unlearn.lr=1", "unlearn.steps=40"},
                                                             {"unlearn.lr=2", "unlearn.steps=20"},
                                                             {"unlearn.lr=2", "unlearn.steps=40"},
                                                             {"unlearn.lr=3", "unlearn.steps=20"},
                                                             {"unlearn.lr=3", "unlearn.steps=40"}}));
}

TEST(SweepSpecSelect, TooSmallOrMissingSpaceNamesTheMethod) {
  const SweepSpec s = spec_of("select:\n  trials: 3\n  space:\n    hac: {unlearn.beta: [0.5, 1.0]}\n");
  std::string e = trials_error(s, "hac");
  EXPECT_NE(e.find("s.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("'hac' has 2 combinations, fewer than select.trials = 3"), std::string::npos) << e;
  e = trials_error(s, "ga");
  EXPECT_NE(e.find("no entry for method 'ga'"), std::string::npos) << e;
  EXPECT_TRUE(select_trials(s, "retrain").empty());  // run as it is
  e = trials_error(spec_of("axes: []\n"), "hac");
  EXPECT_NE(e.find("no select block"), std::string::npos) << e;
}

TEST(SweepSpecSelect, AMethodsOwnKeyOverridesAll) {
  const SweepSpec s = spec_of(R"(select:
  trials: 2
  space:
    all: {unlearn.lr: [1, 2], unlearn.steps: [5]}
    hac: {unlearn.lr: [7, 9]}
)");
  EXPECT_EQ(select_trials(s, "hac"), (std::vector<Assignment>{{"unlearn.steps=5", "unlearn.lr=7"},
                                                              {"unlearn.steps=5", "unlearn.lr=9"}}));
  EXPECT_EQ(select_trials(s, "ga"), (std::vector<Assignment>{{"unlearn.lr=1", "unlearn.steps=5"},
                                                             {"unlearn.lr=2", "unlearn.steps=5"}}));
}

}  // namespace
}  // namespace runner::config
