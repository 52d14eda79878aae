// Sweep specs and their grids: every axis form, multi-concept forget sets, originals shared by the
// points that need the same pretraining config, run ids, and errors that name the file and line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <set>

#include "config/sweep_spec.h"
#include "core/error.h"
#include "sweep/grid.h"
#include "sweep/labels.h"

namespace runner::sweep {
namespace {

const char* kHead = R"(name: study
root: out
set: {unlearn.steps: 7}
originals:
  set: {train.steps: 11}
)";

Grid grid_of(const std::string& axes) { return expand(config::parse_sweep_spec(std::string(kHead) + axes, "s.yaml")); }

std::string error_of(const std::string& text) {
  try {
    expand(config::parse_sweep_spec(text, "s.yaml"));
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return "";
}

TEST(SweepGrid, ProductZipAndListMultiply) {
  const Grid g = grid_of(R"(axes:
  - product: {unlearn.method: [hac, ac], train.seed: [0, 1, 2]}
  - zip: {unlearn.alpha: [0.5, 2.0], unlearn.beta: [0.0, 1.0]}
  - list: [{unlearn.entcal: false}, {unlearn.norm: false}]
)");
  ASSERT_EQ(g.points.size(), 2u * 3u * 2u * 2u);
  EXPECT_EQ(g.dir, "out/study");
  std::set<std::string> ids, dirs;
  for (const auto& p : g.points) {
    ids.insert(p.id);
    dirs.insert(p.dir);
    EXPECT_EQ(p.cfg.unlearn.steps, 7);  // the spec's set applies to every point
    EXPECT_EQ(p.cfg.output.dir, p.dir);
    EXPECT_EQ(p.dir.rfind("out/study/runs/", 0), 0u) << p.dir;
    // zip: alpha and beta move together
    EXPECT_TRUE((p.cfg.unlearn.alpha == 0.5 && p.cfg.unlearn.beta == 0.0) ||
                (p.cfg.unlearn.alpha == 2.0 && p.cfg.unlearn.beta == 1.0));
  }
  EXPECT_EQ(ids.size(), g.points.size());
  EXPECT_EQ(dirs.size(), g.points.size());
  EXPECT_EQ(g.points[0].assignment,
            (std::vector<std::string>{"unlearn.method=hac", "train.seed=0", "unlearn.alpha=0.5", "unlearn.beta=0.0",
                                      "unlearn.entcal=false"}));
  // One original for every point: no pretraining key varies.
  ASSERT_EQ(g.originals.size(), 1u);
  EXPECT_EQ(g.originals[0].cfg.train.steps, 11);
  EXPECT_EQ(g.points[5].cfg.unlearn.original, g.originals[0].dir + "/model.pt");
}

TEST(SweepGrid, ForgetAxisFirstKAndEverySubset) {
  Grid g = grid_of(R"(axes:
  - forget: {concepts: [a, b, c, d, e], sizes: [1, 2, 3, 5], mode: first}
)");
  ASSERT_EQ(g.points.size(), 4u);
  EXPECT_EQ(g.points[1].cfg.unlearn.forget, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(g.points[3].cfg.unlearn.forget.size(), 5u);
  EXPECT_EQ(g.points[2].labels.at("concepts"), "3");
  g = grid_of(R"(axes:
  - forget: {concepts: [a, b, c, d, e], sizes: [2], mode: subsets}
)");
  ASSERT_EQ(g.points.size(), 10u);  // C(5, 2)
  EXPECT_EQ(g.points.front().cfg.unlearn.forget, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(g.points.back().cfg.unlearn.forget, (std::vector<std::string>{"d", "e"}));
  g = grid_of(R"(axes:
  - forget: {concepts: [a, b, c], sizes: [1], mode: subsets}
)");
  ASSERT_EQ(g.points.size(), 3u);  // single concepts
  EXPECT_EQ(g.points[2].cfg.unlearn.forget, (std::vector<std::string>{"c"}));
}

TEST(SweepGrid, CurvatureMakesOneOriginalPerValueAndSeedsShareThem) {
  const Grid g = grid_of(R"(axes:
  - product: {model.curv_init: [0.1, 1.0, 2.0], model.curv_learn: [false]}
  - product: {train.seed: [0, 1]}
  - list: [{original.train.seed: 5}]
)");
  ASSERT_EQ(g.points.size(), 6u);
  ASSERT_EQ(g.originals.size(), 3u);
  std::set<std::string> originals;
  for (const auto& p : g.points) {
    const Job& o = g.originals.at(static_cast<size_t>(p.needs));
    EXPECT_EQ(o.cfg.model.curv_init, p.cfg.model.curv_init);
    EXPECT_FALSE(o.cfg.model.curv_learn);
    EXPECT_EQ(o.cfg.train.seed, 5);  // original.* reaches only the original
    EXPECT_EQ(p.labels.at("curvature"), fmt::format("{}", o.cfg.model.curv_init));
    EXPECT_EQ(o.labels.at("curvature"), curvature_label(o.cfg.model));
    originals.insert(p.cfg.unlearn.original);
  }
  EXPECT_EQ(originals.size(), 3u);
  EXPECT_EQ(g.points[0].cfg.train.seed, 0);
  EXPECT_EQ(g.originals[0].dir.rfind("out/originals/meru-c0.1-", 0), 0u) << g.originals[0].dir;
}

TEST(SweepGrid, RunIdsAreStableReadableAndIgnoreOutputKeys) {
  const std::string axes = R"(axes:
  - product: {unlearn.method: [hac], unlearn.forget: [[sandal, bag]], unlearn.norm: [false]}
)";
  const Grid a = grid_of(axes), b = grid_of(axes);
  ASSERT_EQ(a.points.size(), 1u);
  EXPECT_EQ(a.points[0].id, b.points[0].id);
  EXPECT_EQ(a.points[0].id.rfind("hac-norm-sandal+bag-s0-", 0), 0u) << a.points[0].id;
  EXPECT_EQ(a.points[0].id.rfind(method_label(a.points[0].cfg.unlearn) + "-", 0), 0u) << a.points[0].id;
  const Grid c = grid_of(R"(axes:
  - product: {unlearn.method: [hac], unlearn.forget: [[sandal, bag]], unlearn.norm: [false], output.resume: [false]}
)");
  EXPECT_EQ(c.points[0].id, a.points[0].id);
  // Duplicate points merge.
  const Grid d = grid_of(R"(axes:
  - list: [{unlearn.method: ga}, {unlearn.method: ga}]
)");
  EXPECT_EQ(d.points.size(), 1u);
}

TEST(SweepGrid, PointsThatNameTheirOriginalKeepIt) {
  const Grid g = grid_of(R"(axes:
  - list: [{unlearn.original: released/meru_vit_s.pth}, {model.curv_init: 0.1}]
)");
  ASSERT_EQ(g.points.size(), 2u);
  ASSERT_EQ(g.originals.size(), 1u);
  EXPECT_EQ(g.points[0].cfg.unlearn.original, "released/meru_vit_s.pth");
  EXPECT_EQ(g.points[0].needs, -1);
  EXPECT_EQ(g.points[1].needs, 0);
  EXPECT_EQ(g.originals[0].cfg.model.curv_init, 0.1);
}

TEST(SweepGrid, RanksAxis) {
  const Grid g = grid_of(R"(ranks: 2
axes:
  - list: [{unlearn.method: ft}, {unlearn.method: ga, ranks: 4}]
)");
  ASSERT_EQ(g.points.size(), 2u);
  EXPECT_EQ(g.points[0].ranks, 2);
  EXPECT_EQ(g.points[1].ranks, 4);
}

TEST(SweepGrid, JobConfigIsWrittenWhereTheJobReadsIt) {
  Grid g = grid_of(R"(axes:
  - list: [{unlearn.method: ga}]
)");
  ASSERT_EQ(g.points.size(), 1u);
  Job& p = g.points[0];
  namespace fs = std::filesystem;
  const fs::path tmp = fs::path(::testing::TempDir()) / ("hac_grid_job_" + std::to_string(::getpid()));
  p.dir = (tmp / "run").string();
  p.cfg.output.dir = p.dir;
  write_job_config(p);
  EXPECT_EQ(job_config_path(p), p.dir + "/sweep_job.yaml");
  const config::Config back = config::load_config(job_config_path(p));
  EXPECT_EQ(config::semantic_hash(back), config::semantic_hash(p.cfg));
  EXPECT_EQ(back.unlearn.method, "ga");
  fs::remove_all(tmp);
}

TEST(SweepSpecErrors, NameTheFileLineAndKey) {
  std::string e = error_of(std::string(kHead) + "axes:\n  - zip: {unlearn.alpha: [1, 2], unlearn.beta: [1]}\n");
  EXPECT_NE(e.find("s.yaml:7"), std::string::npos) << e;
  EXPECT_NE(e.find("differ in length"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axes:\n  - grid: {unlearn.alpha: [1]}\n");
  EXPECT_NE(e.find("unknown axis 'grid'"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axis: []\n");
  EXPECT_NE(e.find("unknown key 'axis'"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axes:\n  - product: {unlearn.lr_max: [1]}\n");
  EXPECT_NE(e.find("lr_max"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axes:\n  - forget: {concepts: [a, b], sizes: [3]}\n");
  EXPECT_NE(e.find("forget size 3"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axes:\n  - product: {steps: [1]}\n");
  EXPECT_NE(e.find("'steps' is not a config key"), std::string::npos) << e;
  e = error_of("root: out\n");
  EXPECT_NE(e.find("name is required"), std::string::npos) << e;
  e = error_of("name: x\naxes:\n  - list: [{unlearn.method: ft}]\n");
  EXPECT_NE(e.find("unlearn.original is empty"), std::string::npos) << e;
  e = error_of(std::string(kHead) + "axes:\n  - list: [{ranks: 0}]\n");
  EXPECT_NE(e.find("ranks must be a positive integer"), std::string::npos) << e;
}

}  // namespace
}  // namespace runner::sweep
