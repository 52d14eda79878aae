// Selection on the validation split: the rule on constructed trials, and a sweep whose select
// block runs its trials first, then gives the points the chosen settings, resumes without
// redoing finished trials, and reports every trial and choice.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "config/sweep_spec.h"
#include "core/error.h"
#include "core/files.h"
#include "sweep/grid.h"
#include "sweep/select.h"
#include "sweep/status.h"

namespace runner::sweep {
namespace {

namespace fs = std::filesystem;
using train::RunStatus;

TrialOutcome outcome(int64_t t, double forget, double retain, double before = 80.0,
                     RunStatus status = RunStatus::kCompleted) {
  TrialOutcome o;
  o.trial = t;
  o.forget = forget;
  o.retain = retain;
  o.retain_before = before;
  o.status = status;
  return o;
}

TEST(SelectRule, LowestForgetAmongTrialsWithinTheRetainDrop) {
  // Original's retain 80, drop 5: trials 0 (retain 74) and 3 (FAILED) are out; 1 and 2 are in,
  // and 2 forgets more.
  std::vector<TrialOutcome> t = {outcome(0, 0.0, 74.0), outcome(1, 10.0, 79.0), outcome(2, 4.0, 75.0),
                                 outcome(3, 0.0, 90.0, 80.0, RunStatus::kFailed)};
  std::string note;
  EXPECT_EQ(choose_trial(t, 5.0, &note), 2);
  EXPECT_FALSE(t[0].admissible);
  EXPECT_TRUE(t[1].admissible);
  EXPECT_TRUE(t[2].admissible);
  EXPECT_FALSE(t[3].admissible);
  EXPECT_NE(note.find("lowest validation forget"), std::string::npos);
  // A tie on forget goes to the higher retain, then to the earlier trial.
  std::vector<TrialOutcome> tie = {outcome(0, 3.0, 77.0), outcome(1, 3.0, 78.0), outcome(2, 3.0, 78.0)};
  EXPECT_EQ(choose_trial(tie, 5.0, nullptr), 1);
}

TEST(SelectRule, NoTrialWithinTheDropFallsBackToTheHighestRetainAndSaysSo) {
  std::vector<TrialOutcome> t = {outcome(0, 0.0, 40.0), outcome(1, 20.0, 60.0), outcome(2, 5.0, 60.0)};
  std::string note;
  EXPECT_EQ(choose_trial(t, 5.0, &note), 2);
  EXPECT_NE(note.find("no trial kept retain"), std::string::npos);
  std::vector<TrialOutcome> none = {outcome(0, 0.0, 90.0, 80.0, RunStatus::kFailed)};
  EXPECT_EQ(choose_trial(none, 5.0, &note), -1);
}

class SweepSelect : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("hac_sweep_select_" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  config::SweepSpec spec() const {
    return config::parse_sweep_spec(R"(name: sel
root: )" + root_.string() + R"(
set: {data.val_fraction: 0.1, unlearn.steps: 7}
originals:
  set: {train.steps: 11, data.val_fraction: 0.1}
select:
  trials: 2
  seed: 3
  retain_drop: 5
  set: {unlearn.forget: [bag], train.seed: 100}
  space:
    all: {unlearn.lr: [0.001, 0.002]}
    hac: {unlearn.beta: [0.5, 1.0]}
axes:
  - list: [{unlearn.method: hac}, {unlearn.method: ft}, {unlearn.method: none}]
  - forget: {concepts: [sandal, shirt], sizes: [1, 2]}
  - product: {train.seed: [0, 1]}
)", "s.yaml");
  }

  // Writes a COMPLETED (or other) result.json with validation numbers into a trial's folder.
  static void finish(const Job& j, double forget, double retain, const char* status = "COMPLETED") {
    fs::create_directories(j.dir);
    nlohmann::json r;
    r["status"] = status;
    r["metrics"]["zero_shot"]["forget_top1"] = forget;
    r["metrics"]["zero_shot"]["retain_top1"] = retain;
    r["metrics"]["before"]["zero_shot"]["retain_top1"] = 80.0;
    core::write_file_atomically(result_path(j), r.dump());
  }

  fs::path root_;
};

TEST_F(SweepSelect, TrialsRunFirstOnValidationThenPointsGetTheChoice) {
  Grid g = expand(spec());
  ASSERT_TRUE(g.selecting);
  // hac and ft get 2 trials each; none runs as it is.
  ASSERT_EQ(g.selection.size(), 3u);
  EXPECT_TRUE(g.selection[2].fixed);
  ASSERT_EQ(g.trials.size(), 4u);
  EXPECT_EQ(g.points.size(), g.trials.size());  // the backends run the trials now
  for (const Job& t : g.trials) {
    EXPECT_EQ(t.cfg.eval.split, "val");
    EXPECT_EQ(t.cfg.unlearn.forget, std::vector<std::string>{"bag"});
    EXPECT_EQ(t.cfg.train.seed, 100);
    EXPECT_EQ(t.labels.at("stage"), "trial");
    EXPECT_NE(t.dir.find("/trials/"), std::string::npos);
    EXPECT_EQ(t.needs, 0);  // the group's original
  }
  // Interrupted after one trial: it is not run again, the others are, and no point is listed.
  finish(g.trials[0], 2.0, 78.0);
  g = expand(spec());
  ASSERT_TRUE(g.selecting);
  EXPECT_FALSE(should_run(job_status(g.trials[0]), false));
  EXPECT_TRUE(should_run(job_status(g.trials[1]), false));
  // hac: trial 1 forgets less but trial 0 drops retain 10 points: trial 1 is chosen. ft: trial 0.
  finish(g.trials[0], 0.0, 70.0);
  finish(g.trials[1], 6.0, 79.0);
  finish(g.trials[2], 1.0, 77.0);
  finish(g.trials[3], 9.0, 80.0, "FAILED");
  g = expand(spec());
  ASSERT_FALSE(g.selecting);
  EXPECT_EQ(g.selection[0].chosen, 1);
  EXPECT_EQ(g.selection[1].chosen, 0);
  ASSERT_EQ(g.points.size(), 3u * 2u * 2u);
  const auto hac_settings = config::select_trials(spec(), "hac")[1];
  for (const Job& p : g.points) {
    EXPECT_EQ(p.cfg.eval.split, "test");
    EXPECT_EQ(p.dir.find("/trials/"), std::string::npos);
    if (p.cfg.unlearn.method == "hac") {
      EXPECT_EQ(p.labels.at("selected_trial"), "1");
      EXPECT_EQ(p.labels.at("selected"), g.trials[1].labels.at("settings"));
    } else if (p.cfg.unlearn.method == "none") {
      EXPECT_EQ(p.labels.count("selected"), 0u);
    }
  }
  write_selection(g);
  const auto sel = nlohmann::json::parse(core::read_text_file((fs::path(g.dir) / "selection.json").string()));
  EXPECT_EQ(sel["groups"][0]["chosen"], 1);
  EXPECT_EQ(sel["groups"][1]["trials"][1]["status"], "FAILED");
  EXPECT_NE(core::read_text_file((fs::path(g.dir) / "selection.md").string()).find("**chosen**"), std::string::npos);
}

// select.axis names the methods axis when another comes first (here the originals' seeds); an
// entry that pins its original's seed collapses the seed axis to one point (identical points merge).
TEST_F(SweepSelect, GroupsComeFromTheNamedAxis) {
  const config::SweepSpec spec = config::parse_sweep_spec(R"(name: sel
root: )" + root_.string() + R"(
set: {data.val_fraction: 0.1}
originals: {set: {train.steps: 11, data.val_fraction: 0.1}}
select:
  trials: 1
  axis: 1
  space: {all: {unlearn.lr: [0.001]}}
axes:
  - product: {original.train.seed: [0, 1]}
  - list: [{unlearn.method: ft}, {unlearn.method: ga, original.train.seed: 0}]
)", "s.yaml");
  const Grid g = expand(spec);
  ASSERT_EQ(g.selection.size(), 2u);
  EXPECT_EQ(g.selection[0].group, "unlearn.method=ft");
  EXPECT_EQ(g.selection[1].group, "unlearn.method=ga, original.train.seed=0");
  EXPECT_EQ(g.originals.size(), 2u);  // seeds 0 and 1
  EXPECT_EQ(g.trials.size(), 2u);
  EXPECT_THROW(config::parse_sweep_spec(R"(name: x
select: {trials: 1, axis: 3, space: {all: {unlearn.lr: [0.001]}}}
axes:
  - list: [{unlearn.method: ft}]
)", "s.yaml"), ConfigError);
}

// select.ablations: a group that is another plus a switch runs no trials and takes that group's
// choice, with its own switch still applied.
TEST_F(SweepSelect, AblationsRunWithTheChoiceOfTheGroupTheyAblate) {
  const std::string text = R"(name: sel
root: )" + root_.string() + R"(
set: {data.val_fraction: 0.1, unlearn.steps: 7}
originals:
  set: {train.steps: 11, data.val_fraction: 0.1}
select:
  trials: 2
  seed: 3
  set: {unlearn.forget: [bag], train.seed: 100}
  ablations: [unlearn.entcal, unlearn.norm]
  space:
    all: {unlearn.lr: [0.001, 0.002]}
    hac: {unlearn.norm_mode: [l1, grow]}
axes:
  - list:
      - {unlearn.method: hac}
      - {unlearn.method: hac, unlearn.entcal: false}
      - {unlearn.method: hac, unlearn.norm: false, unlearn.entcal: false}
      - {unlearn.method: ft}
  - forget: {concepts: [sandal, shirt], sizes: [1]}
)";
  const config::SweepSpec sp = config::parse_sweep_spec(text, "s.yaml");
  Grid g = expand(sp);
  ASSERT_TRUE(g.selecting);
  ASSERT_EQ(g.selection.size(), 4u);
  EXPECT_EQ(g.selection[0].follows, -1);
  EXPECT_EQ(g.selection[1].follows, 0);
  EXPECT_EQ(g.selection[2].follows, 0);  // the order of the keys in the assignment does not matter
  EXPECT_EQ(g.selection[3].follows, -1);
  ASSERT_EQ(g.trials.size(), 4u);  // hac's 2 and ft's 2: the ablations have none of their own
  finish(g.trials[0], 5.0, 79.0);
  finish(g.trials[1], 1.0, 78.0);
  finish(g.trials[2], 1.0, 78.0);
  finish(g.trials[3], 1.0, 78.0);
  g = expand(sp);
  ASSERT_FALSE(g.selecting);
  EXPECT_EQ(g.selection[0].chosen, 1);
  const std::string chosen = g.trials[1].labels.at("settings");
  int ablations = 0;
  for (const Job& p : g.points) {
    if (p.cfg.unlearn.method != "hac") continue;
    EXPECT_EQ(p.labels.at("selected"), chosen) << p.group;
    EXPECT_EQ(p.cfg.unlearn.norm_mode, g.trials[1].cfg.unlearn.norm_mode) << p.group;
    EXPECT_EQ(p.cfg.unlearn.lr, g.trials[1].cfg.unlearn.lr) << p.group;
    if (p.group.find("entcal=false") != std::string::npos) {
      ++ablations;
      EXPECT_FALSE(p.cfg.unlearn.entcal);
      EXPECT_EQ(p.labels.at("selected_from"), "unlearn.method=hac");
    } else {
      EXPECT_TRUE(p.cfg.unlearn.entcal);
      EXPECT_EQ(p.labels.count("selected_from"), 0u);
    }
  }
  EXPECT_EQ(ablations, 2);  // one forget set: one point per ablation group
  write_selection(g);
  const auto sel = nlohmann::json::parse(core::read_text_file((fs::path(g.dir) / "selection.json").string()));
  EXPECT_EQ(sel["groups"][1]["follows"], "unlearn.method=hac");
  EXPECT_NE(core::read_text_file((fs::path(g.dir) / "selection.md").string()).find("the ablation of [unlearn.method=hac]"),
            std::string::npos);
  const std::string chosen_md = core::read_text_file((fs::path(g.dir) / "selection_chosen.md").string());
  EXPECT_NE(chosen_md.find("| unlearn.method=hac, unlearn.entcal=false | " + chosen + " |"), std::string::npos) << chosen_md;
  EXPECT_NE(chosen_md.find("ablation: the choice of [unlearn.method=hac]"), std::string::npos) << chosen_md;

  // An ablation without the group it ablates, and a space that sets an ablation switch: errors.
  std::string orphan = text;
  orphan.replace(orphan.find("      - {unlearn.method: hac}\n"), std::string("      - {unlearn.method: hac}\n").size(), "");
  try {
    expand(config::parse_sweep_spec(orphan, "s.yaml"));
    ADD_FAILURE() << "no error for an ablation without its method";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("select.ablations"), std::string::npos) << e.what();
  }
  std::string sets_switch = text;
  sets_switch.replace(sets_switch.find("unlearn.norm_mode: [l1, grow]"), 29, "unlearn.norm: [true, false]");
  EXPECT_THROW(config::parse_sweep_spec(sets_switch, "s.yaml"), ConfigError);
}

TEST_F(SweepSelect, NeedsAValidationSplitAndRefusesKeysThatChangeTheOriginal) {
  std::string text = R"(name: sel
root: r
originals: {set: {train.steps: 3}}
select:
  trials: 1
  space: {all: {unlearn.lr: [0.001]}}
axes:
  - list: [{unlearn.method: ft}]
)";
  try {
    expand(config::parse_sweep_spec(text, "s.yaml"));
    ADD_FAILURE() << "no error without a validation split";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.val_fraction"), std::string::npos) << e.what();
  }
  text.replace(text.find("unlearn.lr"), 10, "model.curv_init");
  try {
    expand(config::parse_sweep_spec(text, "s.yaml"));
    ADD_FAILURE() << "no error for a model key";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.curv_init"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace runner::sweep
