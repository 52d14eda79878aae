// The rules every sweep backend shares: which jobs run (by the status in their result.json) and
// when a point's original is done; the method and curvature labels that grid ids, result.json
// labels and the tables share; shell quoting and commands; the backend factory by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "core/error.h"
#include "core/files.h"
#include "sweep/backend.h"
#include "core/lock.h"
#include "sweep/labels.h"
#include "sweep/report.h"
#include "sweep/shell.h"
#include "sweep/status.h"
#include "train/result_file.h"

namespace runner::sweep {
namespace {

namespace fs = std::filesystem;
using train::RunStatus;

class SweepStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hac_sweep_status_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A job whose directory holds a result.json with `status` (none for kAbsent).
  Job job(const std::string& name, RunStatus status) {
    Job j;
    j.id = name;
    j.dir = (dir_ / name).string();
    fs::create_directories(j.dir);
    if (status != RunStatus::kAbsent) train::ResultFile(result_path(j)).write(status);
    return j;
  }

  fs::path dir_;
};

TEST(SweepShouldRun, CompletedNeverFailedOnlyWhenAskedTheRestAlways) {
  for (const bool rerun : {false, true}) {
    EXPECT_FALSE(should_run(RunStatus::kCompleted, rerun));
    EXPECT_EQ(should_run(RunStatus::kFailed, rerun), rerun);
    EXPECT_TRUE(should_run(RunStatus::kAbsent, rerun));     // not run yet
    EXPECT_TRUE(should_run(RunStatus::kRunning, rerun));    // from a killed sweep: resumes
    EXPECT_TRUE(should_run(RunStatus::kPreempted, rerun));  // resumes
  }
}

TEST_F(SweepStatus, JobStatusReadsResultJsonAndTornFilesAreAbsent) {
  EXPECT_EQ(job_status(job("none", RunStatus::kAbsent)), RunStatus::kAbsent);
  EXPECT_EQ(job_status(job("done", RunStatus::kCompleted)), RunStatus::kCompleted);
  EXPECT_EQ(job_status(job("bad", RunStatus::kFailed)), RunStatus::kFailed);
  EXPECT_EQ(job_status(job("stopped", RunStatus::kPreempted)), RunStatus::kPreempted);
  const Job torn = job("torn", RunStatus::kAbsent);
  std::ofstream(result_path(torn)) << "{\"status\": \"COMPLETED\", \"metr";
  EXPECT_EQ(job_status(torn), RunStatus::kAbsent);
}

TEST_F(SweepStatus, APointMayStartWhenItsOriginalIsCompletedOrItHasNone) {
  Grid g;
  g.originals = {job("o_done", RunStatus::kCompleted), job("o_failed", RunStatus::kFailed),
                 job("o_new", RunStatus::kAbsent)};
  Job p;
  p.needs = -1;  // names its own original
  EXPECT_TRUE(original_done(g, p));
  p.needs = 0;
  EXPECT_TRUE(original_done(g, p));
  p.needs = 1;
  EXPECT_FALSE(original_done(g, p));
  p.needs = 2;
  EXPECT_FALSE(original_done(g, p));
}

TEST(SweepLabels, MethodLabelNamesHacVariantsByWhatIsOff) {
  config::UnlearnConfig u;
  u.method = "hac";
  u.entcal = true;
  u.norm = true;
  EXPECT_EQ(method_label(u), "hac");
  u.entcal = false;
  EXPECT_EQ(method_label(u), "hac-entcal");
  u.norm = false;
  EXPECT_EQ(method_label(u), "hac-both");
  u.entcal = true;
  EXPECT_EQ(method_label(u), "hac-norm");
  u.method = "ga";  // other methods keep their name whatever the hac switches say
  EXPECT_EQ(method_label(u), "ga");
}

TEST(SweepLabels, TableOrderFollowsTheMethodRegistryWithHacsVariantsAfterHac) {
  const std::vector<std::string> want = {"none", "retrain", "ft", "ga", "ng", "l1", "ac",
                                         "hac", "hac-entcal", "hac-norm", "hac-both"};
  for (size_t i = 0; i + 1 < want.size(); ++i) {
    EXPECT_LT(variant_rank(want[i]), variant_rank(want[i + 1])) << want[i] << " before " << want[i + 1];
  }
  EXPECT_GT(variant_rank("scrub"), variant_rank("hac-both"));  // unknown labels come last
  EXPECT_EQ(variant_rank("scrub"), variant_rank("zzz"));         // and tie (the caller sorts them by name)
}

TEST(SweepLabels, CurvatureLabels) {
  config::ModelConfig m;
  m.kind = "meru";
  m.curv_init = 1.0;
  m.curv_learn = true;
  EXPECT_EQ(curvature_label(m), "1 learned");
  m.curv_init = 0.1;
  m.curv_learn = false;
  EXPECT_EQ(curvature_label(m), "0.1");
  m.kind = "clip";
  EXPECT_EQ(curvature_label(m), "euclidean");
  EXPECT_EQ(curvature_value(m), "0.1");  // the value whatever the kind
}

TEST_F(SweepStatus, OriginalCurvatureLabelReadsTheConfigBesideTheModel) {
  EXPECT_EQ(original_curvature_label(""), "");
  EXPECT_EQ(original_curvature_label((dir_ / "missing" / "model.pt").string()), "");
  config::Config c;
  c.model.kind = "meru";
  c.model.curv_init = 2.0;
  c.model.curv_learn = false;
  fs::create_directories(dir_ / "meru");
  core::write_file_atomically((dir_ / "meru" / "config.yaml").string(), config::to_yaml(c));
  EXPECT_EQ(original_curvature_label((dir_ / "meru" / "model.pt").string()), "2");
  c.model.kind = "clip";
  fs::create_directories(dir_ / "clip");
  core::write_file_atomically((dir_ / "clip" / "config.yaml").string(), config::to_yaml(c));
  EXPECT_EQ(original_curvature_label((dir_ / "clip" / "model.pt").string()), "euclidean");
  fs::create_directories(dir_ / "broken");
  core::write_file_atomically((dir_ / "broken" / "config.yaml").string(), "model: [not, a, section\n");
  EXPECT_EQ(original_curvature_label((dir_ / "broken" / "model.pt").string()), "");
}

TEST(SweepShell, QuoteAndCommands) {
  EXPECT_EQ(quote("plain"), "'plain'");
  EXPECT_EQ(quote("it's a dir"), "'it'\\''s a dir'");
  EXPECT_EQ(shell_output("printf " + quote("it's")), "it's");
  EXPECT_THROW(shell_output("exit 3"), IoError);
  EXPECT_EQ(shell_status("exit 3"), 3);
  EXPECT_EQ(shell_status("true"), 0);
  EXPECT_EQ(hac_executable("/opt/hac"), "/opt/hac");
  EXPECT_TRUE(fs::exists(hac_executable("")));  // this process's executable
}

TEST(SweepBackends, FactoryByName) {
  EXPECT_EQ(backend_names(), (std::vector<std::string>{"local", "mpi", "slurm"}));
  BackendOptions o;
  for (const auto& name : backend_names()) EXPECT_EQ(make_backend(name, o)->name(), name);
  EXPECT_THROW(make_backend("pbs", o), UsageError);
}

// The lock: one holder; a second acquire (another open file description, as another process
// would have) is a LockedError naming the directory and the holder; released with its owner.
TEST_F(SweepStatus, DirLockHasOneHolderAndNamesIt) {
  const std::string d = (dir_ / "run").string();
  EXPECT_FALSE(core::lock_holder(d).has_value());
  {
    core::DirLock first = core::DirLock::acquire(d, "run");
    ASSERT_TRUE(first.held());
    const auto holder = core::lock_holder(d);
    ASSERT_TRUE(holder.has_value());
    EXPECT_NE(holder->find("pid " + std::to_string(::getpid())), std::string::npos) << *holder;
    try {
      core::DirLock second = core::DirLock::acquire(d, "run");
      FAIL() << "a second holder";
    } catch (const LockedError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(d), std::string::npos) << msg;
      EXPECT_NE(msg.find("pid " + std::to_string(::getpid())), std::string::npos) << msg;
    }
    EXPECT_EQ(core::exit_code_for(LockedError("x")), core::kExitLocked);
  }
  EXPECT_FALSE(core::lock_holder(d).has_value());  // released with its DirLock
  EXPECT_NO_THROW(core::DirLock::acquire(d, "run"));
}

// A RUNNING run that no live process holds is listed as "RUNNING (no process)".
TEST_F(SweepStatus, RunningWithoutAHolderIsSaidSo) {
  Grid g;
  g.name = "s";
  g.dir = dir_.string();
  g.points.push_back(job("p0", RunStatus::kRunning));
  ::testing::internal::CaptureStdout();
  print_grid(g);
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("RUNNING (no process)"), std::string::npos) << out;
  core::DirLock held = core::DirLock::acquire(g.points[0].dir, "run");
  ::testing::internal::CaptureStdout();
  print_grid(g);
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("RUNNING"), std::string::npos) << out;
  EXPECT_EQ(out.find("no process"), std::string::npos) << out;
}

}  // namespace
}  // namespace runner::sweep
