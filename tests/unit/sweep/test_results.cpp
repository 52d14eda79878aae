// `hac collect` on hand-made result trees: the long CSV, mean ± std over seeds, missing and failed
// runs shown (not dropped), unreadable files counted and never read as complete, idempotence,
// and the figures made by the real gnuplot.
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "sweep/results.h"
#include "train/result_file.h"

namespace runner::sweep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

class Collect : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hac_collect_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A result.json of an unlearning run with the given metrics.
  void run(const std::string& name, const std::string& method, int seed, const std::vector<std::string>& forget,
           double forget_top1, double retain_top1, const std::string& status = "COMPLETED", bool clip = false,
           const std::string& extra_config = "", const json& more_labels = json::object(),
           const json& more_metrics = json::object()) {
    json r;
    r["status"] = status;
    r["error"] = status == "FAILED" ? json("non-finite loss at step 3 of hac") : json(nullptr);
    r["kind"] = "unlearn";
    r["run_id"] = name;
    r["method"] = method;
    std::string f;
    for (const auto& c : forget) f += (f.empty() ? "" : ", ") + c;
    r["config"] = "unlearn:\n  method: " + method + "\n  forget: [" + f + "]\n" + extra_config + "train:\n  seed: " +
                  std::to_string(seed) + "\n";
    r["labels"] = {{"curvature", clip ? "euclidean" : "1 learned"}};
    for (const auto& [k, v] : more_labels.items()) r["labels"][k] = v;
    r["provenance"] = {{"world_size", 2}};
    if (status == "COMPLETED") {
      r["metrics"] = {{"zero_shot", {{"forget_top1", forget_top1}, {"retain_top1", retain_top1}}},
                      {"audit", {{"forget_nonmember", 50.0}, {"gap_to_retrain", nullptr}}},
                      {"curvature", clip ? json(nullptr) : json(1.0)}};
      for (const auto& [k, v] : more_metrics.items()) r["metrics"][k] = v;
    } else {
      r["metrics"] = json::object();
    }
    fs::create_directories(dir_ / name);
    core::write_file_atomically((dir_ / name / "result.json").string(), r.dump(2));
  }

  std::string read(const std::string& rel) { return core::read_text_file((dir_ / "collected" / rel).string()); }

  fs::path dir_;
};

TEST_F(Collect, MeanAndStdOverSeedsInEveryFormat) {
  run("a0", "hac", 0, {"sandal"}, 10.0, 70.0);
  run("a1", "hac", 1, {"sandal"}, 20.0, 80.0);
  run("b0", "ac", 0, {"sandal"}, 40.0, 75.0, "COMPLETED", true);
  run("c0", "hac", 0, {"sandal", "bag"}, 5.0, 60.0, "COMPLETED", false, "  entcal: false\n");
  CollectOptions o;
  o.dir = dir_.string();
  o.figures = false;
  const CollectSummary s = collect(o);
  EXPECT_EQ(s.runs, 4);
  EXPECT_EQ(s.completed, 4);
  const std::string md = read("table_main.md");
  // hac at 1 concept: forget mean 15, sample std 7.07; retain 75 ± 7.1.
  // hac at 1 concept: {10, 20}: mean 15, sd 7.07, t(0.975, 1) = 12.706 -> half-width 63.5.
  EXPECT_NE(md.find("| meru | hac | meru, curvature 1 learned | 1 | 2 | 15.0 ± 63.5 | 75.0 ± 63.5 | — | — |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| clip | ac | clip, curvature euclidean | — | 1 | 40.0 | 75.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| meru | hac-entcal | meru, curvature 1 learned | 1 | 1 | — | — | 5.0 | 60.0 |"),
            std::string::npos) << md;
  EXPECT_LT(md.find("| clip | ac"), md.find("| meru | hac |"));
  const std::string tex = read("table_main.tex");
  EXPECT_NE(tex.find("\\toprule"), std::string::npos);
  EXPECT_NE(tex.find("15.0 $\\pm$ 63.5"), std::string::npos) << tex;
  EXPECT_NE(tex.find("hac-entcal"), std::string::npos);
  const std::string csv = read("table_main.csv");
  EXPECT_NE(csv.find("meru,hac,\"meru, curvature 1 learned\",1,2,15,-48.531"), std::string::npos) << csv;
  const std::string lng = read("results_long.csv");
  EXPECT_NE(lng.find("a1,a1,COMPLETED,unlearn,,hac,hac,meru,,0,1,sandal,1 learned,1,2,zero_shot.forget_top1,20\n"),
            std::string::npos) << lng;
  EXPECT_NE(lng.find(",audit.gap_to_retrain,\n"), std::string::npos) << lng;  // null stays empty
}

TEST_F(Collect, RunsOfDifferentSettingsAreNotAveragedAsSeeds) {
  run("lr_a", "hac", 0, {"sandal"}, 10.0, 70.0, "COMPLETED", false, "  lr: 0.002\n");
  run("lr_b", "hac", 1, {"sandal"}, 30.0, 70.0, "COMPLETED", false, "  lr: 0.0005\n");
  run("lr_c", "hac", 2, {"sandal"}, 20.0, 70.0, "COMPLETED", false, "  lr: 0.002\n");
  CollectOptions o;
  o.dir = dir_.string();
  o.figures = false;
  collect(o);
  const std::string md = read("table_main.md");
  EXPECT_NE(md.find("| meru | hac (unlearn.lr=0.002) | meru, curvature 1 learned | 1 | 2 | 15.0 ± 63.5 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| meru | hac (unlearn.lr=0.0005) | meru, curvature 1 learned | 1 | 1 | 30.0 |"),
            std::string::npos) << md;
}

TEST_F(Collect, GapToTheRetrainRunOfTheSameForgetSetAndSeed) {
  run("h", "hac", 0, {"sandal"}, 10.0, 70.0);     // audit.forget_nonmember 50 (see run())
  run("r", "retrain", 0, {"sandal"}, 10.0, 70.0);
  run("h1", "hac", 1, {"sandal"}, 10.0, 70.0);    // no retrain run with seed 1: no gap
  std::vector<RunRecord> runs = read_runs(dir_.string(), "", nullptr);
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& r : runs) EXPECT_EQ(r.run_status, train::RunStatus::kCompleted) << r.dir;
  runs[2].metrics["audit.forget_nonmember"] = 80.0;  // "r"
  add_retrain_gaps(runs);
  ASSERT_EQ(runs[0].dir, "h");
  EXPECT_DOUBLE_EQ(runs[0].metrics.at("audit.gap_to_retrain"), -30.0);
  EXPECT_TRUE(std::isnan(runs[1].metrics.at("audit.gap_to_retrain")));
  EXPECT_DOUBLE_EQ(runs[2].metrics.at("audit.gap_to_retrain"), 0.0);
}

TEST_F(Collect, FailedAndUnreadableRunsAreShownNotDropped) {
  run("ok", "hac", 0, {"sandal"}, 10.0, 70.0);
  run("bad", "hac", 1, {"sandal"}, 0.0, 0.0, "FAILED");
  run("odd", "hac", 2, {"sandal"}, 0.0, 0.0, "QUEUED");  // a status no run writes: incomplete, shown as written
  fs::create_directories(dir_ / "torn");
  std::ofstream(dir_ / "torn" / "result.json") << "{\"status\": \"COMPLETED\", \"metrics\": {\"zero_sh";
  CollectOptions o;
  o.dir = dir_.string();
  o.figures = false;
  const CollectSummary s = collect(o);
  EXPECT_EQ(s.runs, 3);
  EXPECT_EQ(s.completed, 1);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.incomplete, 1);
  EXPECT_EQ(s.unreadable, 1);
  const std::string md = read("table_main.md");
  EXPECT_NE(md.find("| meru | hac | meru, curvature 1 learned | 1 | 1 | 10.0 | 70.0 |"), std::string::npos)
      << md;  // n = 1 of 3 seeds
  EXPECT_NE(md.find("`bad`: FAILED — non-finite loss at step 3 of hac"), std::string::npos) << md;
  EXPECT_EQ(md.find("torn"), std::string::npos) << "an unreadable file must not count as a run";
  EXPECT_NE(read("results_long.csv").find("bad,bad,FAILED,unlearn,,hac,hac,meru,,0,1,sandal,1 learned,1,2,,\n"),
            std::string::npos);
  EXPECT_NE(read("results_long.csv").find("odd,odd,QUEUED,unlearn,"), std::string::npos);
}

// Paired differences on matched units (original seed, forget set, seed), the claims' verdicts by
// their stated rules, and the audit marked uninformative when its held-out accuracy's interval
// contains 50.
TEST_F(Collect, PairedDifferencesClaimsAndTheAuditMark) {
  const json meru = {{"original_config", "meru tiny, curvature 1 learned"}, {"original_seed", "0"}};
  const json clip = {{"original_config", "clip tiny, curvature euclidean"}, {"original_seed", "0"}};
  // The audit's held-out balanced accuracy of HAC's runs: 49, 51, 53: its t interval contains 50.
  auto chance = [](int seed) {
    return json{{"audit", {{"forget_nonmember", 50.0}, {"heldout_balanced_accuracy", 49.0 + 2 * seed}}}};
  };
  const double hac_forget[] = {0.0, 5.0, 10.0}, ac_forget[] = {20.0, 30.0, 40.0};
  for (int seed = 0; seed < 3; ++seed) {
    run("h" + std::to_string(seed), "hac", seed, {"sandal"}, hac_forget[seed], 70.0 + seed, "COMPLETED", false, "",
        meru, chance(seed));
    run("a" + std::to_string(seed), "ac", seed, {"sandal"}, ac_forget[seed], 75.0, "COMPLETED", true, "", clip);
    run("n" + std::to_string(seed), "none", seed, {"sandal"}, 80.0, 72.0, "COMPLETED", false, "", meru);
  }
  run("h9", "hac", 9, {"sandal"}, 1.0, 70.0, "COMPLETED", false, "", meru);  // no ac on unit s9: not paired
  CollectOptions o;
  o.dir = dir_.string();
  o.figures = false;
  collect(o);
  const std::string paired = read("table_paired.md");
  // Differences {-20, -25, -30}: mean -25, sd 5, t(0.975, 2) = 4.303 -> [-37.4, -12.6]; n 3; the
  // exact sign-flip p: 2 of 8 sign patterns reach |mean| 25.
  EXPECT_NE(paired.find("| hac (meru tiny, curvature 1 learned) − ac (clip tiny, curvature euclidean) | forget top-1 | "
                        "all | 3 | -25.0 [-37.4, -12.6] |"),
            std::string::npos) << paired;
  EXPECT_NE(paired.find("| 0.250 |"), std::string::npos) << paired;
  const std::string claims = read("claims.md");
  EXPECT_NE(claims.find("| HAC forgets more than AC |"), std::string::npos) << claims;
  EXPECT_NE(claims.find("-25.0 [-37.4, -12.6] | 3 |"), std::string::npos) << claims;
  EXPECT_NE(claims.find("**supported**"), std::string::npos) << claims;
  // Retain: HAC {70, 71, 72} (h9 has no none on s9) - none 72: {-2, -1, 0}, all above -10.
  EXPECT_NE(claims.find("| HAC keeps retain accuracy reasonable |"), std::string::npos) << claims;
  EXPECT_NE(claims.find("not tested"), std::string::npos) << "no ablation rows: named, not judged\n" << claims;
  const std::string md = read("table_main.md");
  EXPECT_NE(md.find("*uninformative*"), std::string::npos) << md;
  EXPECT_NE(md.find("50.0 ± 0.0 †"), std::string::npos) << md;
}

// The hierarchy table (margins and radius changes, before -> after) and HAC minus each ablation on
// those values (table_parts.md), paired on units.
TEST_F(Collect, HierarchyTableAndThePartsOfHac) {
  const json meru = {{"original_config", "meru tiny, curvature 1 learned"}, {"original_seed", "0"}};
  auto hier = [](double forget_margin, double retain_margin, double forget_d0) {
    const json before = {{"forget", {{"cone_margin", -0.1}, {"own_cone", 80.0}, {"image_dist0", 1.4}}},
                         {"retain", {{"cone_margin", -0.2}, {"own_cone", 90.0}, {"image_dist0", 1.5}}}};
    return json{{"hierarchy",
                 {{"forget", {{"cone_margin", forget_margin}, {"own_cone", 10.0}, {"image_dist0", forget_d0}}},
                  {"retain", {{"cone_margin", retain_margin}, {"own_cone", 85.0}, {"image_dist0", 1.5}}}}},
                {"before", {{"hierarchy", before}}}};
  };
  for (int seed = 0; seed < 3; ++seed) {
    run("h" + std::to_string(seed), "hac", seed, {"sandal"}, 5.0, 70.0, "COMPLETED", false, "", meru,
        hier(0.3 + 0.1 * seed, -0.2, 1.6));
    run("e" + std::to_string(seed), "hac", seed, {"sandal"}, 9.0, 70.0, "COMPLETED", false, "  entcal: false\n", meru,
        hier(0.1 + 0.1 * seed + 0.01 * seed * seed, -0.2, 1.6));
  }
  CollectOptions o;
  o.dir = dir_.string();
  o.figures = false;
  collect(o);
  const std::string h = read("table_hierarchy.md");
  EXPECT_NE(h.find("Δ forget margin"), std::string::npos) << h;
  EXPECT_NE(h.find("Δ d0 retain img"), std::string::npos) << h;
  // hac's forget margins 0.3, 0.4, 0.5 (mean 0.4; half-width t(0.975, 2) * 0.1 / sqrt(3) = 0.248); the
  // change from -0.1: 0.5; the forget images' radius change 1.6 - 1.4 = 0.2 in every run.
  EXPECT_NE(h.find("0.400 ± 0.248 | 0.500 ± 0.248 |"), std::string::npos) << h;
  EXPECT_NE(h.find("0.200 ± 0.000"), std::string::npos) << h;
  EXPECT_NE(read("table_hierarchy.csv").find("delta.hierarchy.forget.cone_margin_mean"), std::string::npos);
  const std::string parts = read("table_parts.md");
  // Forget: 5 - 9 = -4 on every unit; forget margins differ by 0.2, 0.19, 0.16: mean 0.183.
  EXPECT_NE(parts.find("| hac (meru tiny, curvature 1 learned) − hac-entcal (meru tiny, curvature 1 learned) | 3 |"),
            std::string::npos) << parts;
  EXPECT_NE(parts.find("**-4.0 [-4.0, -4.0]**"), std::string::npos) << parts;
  EXPECT_NE(parts.find("**0.183 ["), std::string::npos) << parts;
  EXPECT_NE(read("table_paired.md").find("forget angle margin (rad)"), std::string::npos);
}

TEST_F(Collect, IdempotentAndFiguresFromGnuplot) {
  for (int seed = 0; seed < 2; ++seed) {
    run("h1_" + std::to_string(seed), "hac", seed, {"sandal"}, 10.0 + seed, 70.0);
    run("h2_" + std::to_string(seed), "hac", seed, {"sandal", "bag"}, 5.0 + seed, 65.0);
    run("a1_" + std::to_string(seed), "ac", seed, {"sandal"}, 30.0 + seed, 75.0, "COMPLETED", true);
    run("a2_" + std::to_string(seed), "ac", seed, {"sandal", "bag"}, 35.0, 72.0, "COMPLETED", true);
  }
  CollectOptions o;
  o.dir = dir_.string();
  const CollectSummary first = collect(o);
  const std::string md = read("table_main.md"), lng = read("results_long.csv"),
                    dat = read("figures/acc_vs_concepts_forget.dat");
  for (const char* f : {"figures/acc_vs_concepts.png", "figures/acc_vs_concepts.pdf"}) {
    EXPECT_GT(fs::file_size(dir_ / "collected" / f), 1000u) << f;
  }
  // clip ac, then meru hac at 1 concept: means 30.5 and 10.5, each with the 95 % half-width of two
  // values one apart (0.5 x 12.706 = 6.353).
  EXPECT_NE(dat.find("1\t30.5\t6.35"), std::string::npos) << dat;
  EXPECT_NE(dat.find("\t10.5\t6.35"), std::string::npos) << dat;
  const std::string pdf = read("figures/acc_vs_concepts.pdf"), png = read("figures/acc_vs_concepts.png");
  EXPECT_EQ(pdf.find("/CreationDate (D:"), std::string::npos) << "cairo's time stamp must be blanked";
  ::sleep(1);  // cairo's stamp has a resolution of a second
  const CollectSummary second = collect(o);
  EXPECT_EQ(first.files, second.files);
  EXPECT_EQ(read("figures/acc_vs_concepts.pdf"), pdf);
  EXPECT_EQ(read("figures/acc_vs_concepts.png"), png);
  EXPECT_EQ(read("table_main.md"), md);
  EXPECT_EQ(read("results_long.csv"), lng);
  EXPECT_EQ(read("figures/acc_vs_concepts_forget.dat"), dat);
  // A missing gnuplot is an error naming it, not a silent skip.
  o.gnuplot = "/nonexistent/gnuplot";
  EXPECT_THROW(collect(o), IoError);
}

}  // namespace
}  // namespace runner::sweep
