// Unit tests of src/train without a training run: AdamW's parameter groups (which parameters get
// weight decay), the warmup + cosine learning-rate schedule, result.json's status (to_string /
// parse_run_status, ResultFile::write / read_status) and the checkpoint files of a run directory.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/files.h"
#include "train/checkpoint_files.h"
#include "train/loop.h"
#include "comm/comm.h"
#include "core/error.h"
#include "train/optim.h"
#include "train/result_file.h"

namespace runner::train {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test's temp dir, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "hac_train_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

void touch(const std::string& path, const std::string& text = "x") { std::ofstream(path) << text; }

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- parameter groups ----

// MERU's names (models/contrastive_model.h, models/encoders.h) with their shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> meru_like_params() {
  return {
      {"logit_scale", {}},
      {"curv", {}},
      {"visual_alpha", {}},
      {"textual_alpha", {}},
      {"visual.cls_token", {1, 1, 8}},
      {"visual.patch_embed.proj.weight", {8, 1, 4, 4}},
      {"visual.patch_embed.proj.bias", {8}},
      {"visual.blocks.0.norm1.weight", {8}},
      {"visual.blocks.0.norm1.bias", {8}},
      {"visual.blocks.0.attn.qkv.weight", {24, 8}},
      {"visual.blocks.0.attn.qkv.bias", {24}},
      {"textual.token_embed.weight", {16, 8}},
      {"textual.resblocks.0.attn.in_proj_weight", {24, 8}},
      {"textual.resblocks.0.attn.in_proj_bias", {24}},
      {"textual.resblocks.0.ln_1.weight", {8}},
      {"visual_proj.weight", {4, 8}},
      {"textual_proj.weight", {4, 8}},
  };
}

// Weight decay applies to the matrices and convolution kernels (and the class token), nothing else.
bool should_decay(const std::string& name) {
  return name == "visual.cls_token" || name == "visual.patch_embed.proj.weight" ||
         name == "visual.blocks.0.attn.qkv.weight" || name == "textual.token_embed.weight" ||
         name == "textual.resblocks.0.attn.in_proj_weight" || name == "visual_proj.weight" ||
         name == "textual_proj.weight";
}

TEST(ParamGroups, DecayOnMatricesOnlyNotOnScalarsBiasesOrNorms) {
  for (const auto& [name, shape] : meru_like_params()) {
    EXPECT_EQ(decays(name, at::zeros(shape)), should_decay(name)) << name;
  }
}

TEST(ParamGroups, TheNamedScalarsAndBiasesAreExcludedWhateverTheirShape) {
  // The name rule holds on its own, not only through the < 2 dimensions rule.
  for (const char* name :
       {"logit_scale", "curv", "visual_alpha", "textual_alpha", "visual_proj.bias", "visual.blocks.0.mlp.fc1.bias"}) {
    EXPECT_FALSE(decays(name, at::zeros({3, 3}))) << name;
  }
  // Names that merely contain those words are ordinary parameters.
  EXPECT_TRUE(decays("visual.blocks.0.mlp.bias_proj.weight", at::zeros({3, 3})));
  EXPECT_TRUE(decays("curv_proj.weight", at::zeros({3, 3})));
  // One dimension never decays (LayerNorm gains, in_proj_bias).
  EXPECT_FALSE(decays("textual.ln_final.weight", at::zeros({3})));
  EXPECT_FALSE(decays("textual.resblocks.0.attn.in_proj_bias", at::zeros({3})));
}

TEST(ParamGroups, AdamWShrinksOnlyTheDecayedParameters) {
  // With zero gradients the moments stay 0 and the Adam update is 0, so a step is the decay
  // alone: p *= 1 - lr wd on the decayed parameters, nothing on the others.
  NamedTensors params;
  for (const auto& [name, shape] : meru_like_params()) {
    at::Tensor p = at::full(shape, 2.0, at::kDouble).set_requires_grad(true);
    p.mutable_grad() = at::zeros_like(p);
    params.emplace_back(name, p);
  }
  AdamWOptions o;
  o.weight_decay = 0.2;
  AdamW opt(params, o);
  opt.step(/*lr=*/0.1);
  for (const auto& [name, p] : params) {
    const double want = should_decay(name) ? 2.0 * (1.0 - 0.1 * 0.2) : 2.0;
    EXPECT_TRUE(at::allclose(p.detach(), at::full_like(p.detach(), want), 0, 1e-15))
        << name << ": " << p.detach().flatten()[0].item<double>() << ", expected " << want;
  }
}

// ---- learning-rate schedule ----

TEST(LrSchedule, LinearWarmupThenCosineToZero) {
  const int64_t total = 110, warmup = 10;
  const double peak = 1e-3;
  EXPECT_DOUBLE_EQ(lr_at(0, total, warmup, peak), peak / warmup);      // first step: 1/warmup of the peak
  EXPECT_DOUBLE_EQ(lr_at(4, total, warmup, peak), peak * 5 / warmup);  // linear
  EXPECT_DOUBLE_EQ(lr_at(warmup - 1, total, warmup, peak), peak);      // end of warmup: the peak
  EXPECT_DOUBLE_EQ(lr_at(warmup, total, warmup, peak), peak);          // cosine starts at the peak
  EXPECT_NEAR(lr_at(warmup + (total - warmup) / 2, total, warmup, peak), peak / 2, 1e-15);  // midpoint
  // Last step: one step short of 0 on the cosine; 0 where the schedule ends.
  const double last = lr_at(total - 1, total, warmup, peak);
  EXPECT_NEAR(last, peak * 0.5 * (1 + std::cos(M_PI * 99.0 / 100.0)), 1e-18);
  EXPECT_GT(last, 0.0);
  EXPECT_LT(last, peak * 1e-3);
  EXPECT_NEAR(lr_at(total, total, warmup, peak), 0.0, 1e-18);
  for (int64_t s = 1; s < total; ++s) {
    const double prev = lr_at(s - 1, total, warmup, peak), cur = lr_at(s, total, warmup, peak);
    if (s < warmup) {
      EXPECT_GT(cur, prev) << "step " << s;
    } else {
      EXPECT_LE(cur, prev) << "step " << s;
    }
  }
}

TEST(LrSchedule, WithoutWarmupOrDecaySteps) {
  // No warmup: the cosine from the first step. Warmup covering every step: no decay after it.
  EXPECT_DOUBLE_EQ(lr_at(0, 100, 0, 0.5), 0.5);
  EXPECT_NEAR(lr_at(50, 100, 0, 0.5), 0.25, 1e-15);
  EXPECT_DOUBLE_EQ(lr_at(9, 10, 10, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(10, 10, 10, 0.5), 0.5);
}

// ---- result.json ----

TEST(RunStatus, NamesRoundTrip) {
  const std::vector<std::pair<RunStatus, std::string>> names = {{RunStatus::kRunning, "RUNNING"},
                                                                {RunStatus::kCompleted, "COMPLETED"},
                                                                {RunStatus::kFailed, "FAILED"},
                                                                {RunStatus::kPreempted, "PREEMPTED"}};
  for (const auto& [status, name] : names) {
    EXPECT_EQ(to_string(status), name);
    EXPECT_EQ(parse_run_status(name), status) << name;
  }
  EXPECT_EQ(to_string(RunStatus::kAbsent), "");
  for (const char* other : {"", "completed", "DONE", " COMPLETED", "COMPLETED\n"}) {
    EXPECT_EQ(parse_run_status(other), RunStatus::kAbsent) << "'" << other << "'";
  }
}

TEST(ResultFile, WriteThenReadStatusForEveryStatus) {
  ScratchDir d;
  const std::string path = d.file("result.json");
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kCompleted, RunStatus::kFailed, RunStatus::kPreempted}) {
    ResultFile(path).write(s);
    EXPECT_EQ(ResultFile::read_status(path), s) << to_string(s);
  }
  // Written atomically: no temp file is left beside it.
  EXPECT_EQ(names_in(d.path()), std::vector<std::string>{"result.json"});
}

TEST(ResultFile, ErrorAndFieldsAreWrittenInOrder) {
  ScratchDir d;
  const std::string path = d.file("result.json");
  ResultFile r(path);
  r.set_string("run_id", "hac-sandal-s0");
  r.set_json("world_size", "2");
  r.set_json("metrics", R"({"a": 1})");
  r.set_json("world_size", "4");  // a key set again keeps its place and takes the new value
  r.write(RunStatus::kFailed, "non-finite loss at step 3");
  EXPECT_EQ(r.path(), path);
  const std::string text = core::read_text_file(path);
  // status and error first, then the keys in the order they were first set.
  size_t last = 0;
  for (const char* part : {R"("status": "FAILED")", R"("error": "non-finite loss at step 3")",
                           R"("run_id": "hac-sandal-s0")", R"("world_size": 4)", R"("metrics": {)"}) {
    const size_t at = text.find(part);
    ASSERT_NE(at, std::string::npos) << part << " is not in\n" << text;
    EXPECT_GT(at, last) << part << " is out of order in\n" << text;
    last = at;
  }
  EXPECT_EQ(ResultFile::read_status(path), RunStatus::kFailed);

  ResultFile(path).write(RunStatus::kCompleted);
  EXPECT_NE(core::read_text_file(path).find(R"("error": null)"), std::string::npos);
}

TEST(ResultFile, AbsentOrUnreadableIsAbsent) {
  ScratchDir d;
  EXPECT_EQ(ResultFile::read_status(d.file("missing.json")), RunStatus::kAbsent);
  EXPECT_EQ(ResultFile::read_status(d.path()), RunStatus::kAbsent);  // a directory
  const std::vector<std::string> bad = {
      "",                                                 // empty
      R"({"status": "COMPLETED", "metrics": {"zero_sh)",  // torn mid-write
      "not json",                                         // not JSON
      R"({"error": null})",                               // no status
      R"({"status": "DONE"})",                            // unknown status
      R"({"status": 1})",                                 // not a string
      R"(["COMPLETED"])",                                 // not an object
  };
  for (const std::string& text : bad) {
    const std::string path = d.file("result.json");
    touch(path, text);
    EXPECT_EQ(ResultFile::read_status(path), RunStatus::kAbsent) << text;
  }
}

// ---- checkpoint files ----

TEST(CheckpointFiles, PathIsStepWithEightDigits) {
  EXPECT_EQ(checkpoint_path("run/checkpoints", 0), "run/checkpoints/step_00000000.pt");
  EXPECT_EQ(checkpoint_path("run/checkpoints", 42), "run/checkpoints/step_00000042.pt");
  EXPECT_EQ(checkpoint_path("run/checkpoints", 12345678), "run/checkpoints/step_12345678.pt");
}

TEST(CheckpointFiles, ListedNewestFirstIgnoringOtherNames) {
  ScratchDir d;
  EXPECT_TRUE(list_checkpoints(d.file("absent")).empty());
  EXPECT_TRUE(list_checkpoints(d.path()).empty());
  for (int64_t step : {2, 10, 1, 300}) touch(checkpoint_path(d.path(), step));
  // Not checkpoints: a temp file of an interrupted write, malformed names, other files.
  for (const char* other : {"step_00000500.pt.tmp.1234.0", "step_12.pt", "step_0000001x.pt", "step_000000400.pt",
                            "step_00000400.pth", "xstep_00000400.pt", "model.pt", "notes.txt"}) {
    touch(d.file(other));
  }
  const std::vector<std::string> want = {checkpoint_path(d.path(), 300), checkpoint_path(d.path(), 10),
                                         checkpoint_path(d.path(), 2), checkpoint_path(d.path(), 1)};
  EXPECT_EQ(list_checkpoints(d.path()), want);
}

TEST(CheckpointFiles, PruneKeepsTheNewestK) {
  ScratchDir d;
  for (int64_t step : {5, 20, 15, 10}) touch(checkpoint_path(d.path(), step));
  touch(d.file("step_00000500.pt.tmp.1234.0"));
  touch(d.file("model.pt"));
  prune_checkpoints(d.path(), 10);  // fewer than K: nothing removed
  EXPECT_EQ(list_checkpoints(d.path()).size(), 4u);
  prune_checkpoints(d.path(), 2);
  EXPECT_EQ(list_checkpoints(d.path()),
            (std::vector<std::string>{checkpoint_path(d.path(), 20), checkpoint_path(d.path(), 15)}));
  // Only checkpoints are pruned.
  EXPECT_EQ(names_in(d.path()), (std::vector<std::string>{"model.pt", "step_00000015.pt", "step_00000020.pt",
                                                          "step_00000500.pt.tmp.1234.0"}));
  prune_checkpoints(d.path(), 1);
  EXPECT_EQ(list_checkpoints(d.path()), std::vector<std::string>{checkpoint_path(d.path(), 20)});
}

// The run's device: the CPU for dist.device cpu; cuda without a visible device is a ConfigError
// naming the rank and the host (a CPU build refuses cuda before, in config validation).
TEST(RunDevice, CpuAndNoVisibleGpu) {
  config::Config c;
  EXPECT_TRUE(run_device(c, comm::make_self_comm()).is_cpu());
  c.dist.device = "cuda";
  if (!config::build_has_cuda()) {
    EXPECT_THROW(config::check_device_supported(c), ConfigError);
    try {
      run_device(c, comm::make_self_comm());
      ADD_FAILURE() << "cuda accepted without a device";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("rank 0"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("sees no CUDA device"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace runner::train
