// The evaluation on 2 and 4 ranks: every metric and every side file equals one process's (not at
// 1 rank, where it would compare a process with itself: tests/CMakeLists.txt filters it out); the
// evaluation at the end of `hac unlearn` (method none) lands in result.json with side files that
// re-aggregate to the same numbers, and a pretrained tiny MERU's zero-shot accuracy on
// Fashion-MNIST is well above chance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "config/config.h"
#include "core/error.h"
#include "core/files.h"
#include "data/dataset.h"
#include "app/app.h"
#include "data/fashion_mnist.h"
#include "comm/runtime.h"
#include "eval/evaluate.h"
#include "eval/samples.h"
#include "models/pretrained.h"
#include "scratch_dataset.h"
#include "train/loop.h"

namespace runner::eval {
namespace {

namespace fs = std::filesystem;

comm::CommPtr comm() { return comm::world(); }

class EvalMpi : public ::testing::Test {
 protected:
  // A small Fashion-MNIST file (rank 0) and a tiny MERU original trained on it (global batch 64,
  // 300 steps: about 60% zero-shot accuracy; 100 steps give less than 20%), shared by every test.
  static void SetUpTestSuite() {
    dir_ = testing_mpi::scratch_with_fashion_mnist("hac_eval_mpi", 1200, 300);
    config::Config c = base("original");
    c.data.batch_size = 64 / comm()->world_size();
    c.train.steps = 300;
    c.train.warmup_steps = 20;
    c.train.lr = 2e-3;
    train::run_pretrain(c, comm(), train::RunInfo{"test", "test", 0, {}, {}});
    original_ = c.output.dir + "/model.pt";
  }
  static void TearDownTestSuite() {
    comm()->barrier();
    if (comm()->rank() == 0) fs::remove_all(dir_);
  }

  static config::Config base(const std::string& name) {
    config::Config c;
    c.data.file = dir_ + "/fm.h5";
    c.data.batch_size = 16;
    c.model.kind = "meru";
    c.model.preset = "tiny";
    c.train.seed = 3;
    c.train.log_every = 1000;
    c.unlearn.forget = {"footwear"};  // a parent: sandal, sneaker and ankle boot are forgotten
    c.eval.batch_size = 48;           // 300 test rows -> 7 chunks, shared unevenly by 2 and 4 ranks
    c.eval.knn_bank_rows = 400;
    c.eval.audit_rows = 150;
    c.eval.cka_rows = 120;
    c.eval.embedding_rows = 40;
    c.output.dir = dir_ + "/" + name;
    return c;
  }

  static Request request(const config::Config& c, const comm::CommPtr& cm, const std::string& out) {
    std::map<std::string, std::string> extras;
    models::ModelOptions o;
    Request r;
    r.cfg = c;
    r.comm = cm;
    r.model = models::load_model(original_, &extras, &o);
    r.tokenizer = models::checkpoint_tokenizer(extras, c.data.vocab_file, original_);
    r.context_length = o.text.context_length;
    r.file = data::DatasetFile::open(c.data.file);
    r.original = original_;
    r.out_dir = out;
    return r;
  }

  static json without_seconds(const std::string& text) {
    json j = json::parse(text);
    j.erase("seconds");
    return j;
  }

  static std::string dir_, original_;
};
std::string EvalMpi::dir_, EvalMpi::original_;

TEST_F(EvalMpi, EveryMetricAndSideFileEqualsOneProcess) {
  const config::Config c = base("equal");
  const std::string distributed = evaluate(request(c, comm(), dir_ + "/equal_world"));
  // Every rank holds the same metrics.
  const std::string from_root = comm()->broadcast_string(distributed, 0);
  EXPECT_EQ(without_seconds(distributed), without_seconds(from_root));
  if (comm()->rank() == 0) {
    const std::string single = evaluate(request(c, comm::make_self_comm(), dir_ + "/equal_self"));
    EXPECT_EQ(without_seconds(distributed).dump(2), without_seconds(single).dump(2));
    for (const char* f : {"samples.csv", "audit.csv", "classes.csv", "embeddings.csv"}) {
      EXPECT_EQ(core::read_text_file(dir_ + "/equal_world/eval/" + f), core::read_text_file(dir_ + "/equal_self/eval/" + f))
          << f;
    }
  }
  comm()->barrier();
}

TEST_F(EvalMpi, NoneAtTheEndOfUnlearnIsWellAboveChanceAndSideFilesReaggregate) {
  config::Config c = base("none");
  c.unlearn.method = "none";
  c.unlearn.original = original_;
  // The hook `hac train`/`hac unlearn` use, so the test covers the app's wiring too.
  train::RunInfo info{"test", "test", 0, app::evaluation_hook(), {}};
  ASSERT_EQ(train::run_unlearn(c, comm(), info), 0);
  const json result = json::parse(core::read_text_file(c.output.dir + "/result.json"));
  ASSERT_EQ(result["status"], "COMPLETED");
  const json& m = result["metrics"];
  // Ten classes: chance is 10%. The 300-step tiny MERU gets far above it on both sets.
  EXPECT_GT(m["zero_shot"]["retain_top1"].get<double>(), 30.0) << m.dump(1);
  EXPECT_GT(m["zero_shot"]["forget_top1"].get<double>(), 30.0) << m.dump(1);
  EXPECT_EQ(m["forget_classes"], json({"sandal", "sneaker", "ankle boot"}));
  // `none` is the original: before = after, CKA 1, no hierarchy shift.
  EXPECT_EQ(m["zero_shot"].dump(), m["before"]["zero_shot"].dump());
  EXPECT_NEAR(m["representation"]["cka"].get<double>(), 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(m["hierarchy"]["shift_per_concept"]["sandal"]["image_dist0"].get<double>(), 0.0);
  // Cone and distance statistics exist for MERU; the audit saw every set.
  EXPECT_TRUE(m["hierarchy"]["forget"]["own_cone"].is_number());
  EXPECT_TRUE(m["hierarchy"]["forget"]["parent_cone"].is_number());
  EXPECT_GT(m["audit"]["forget_pairs"].get<int64_t>(), 0);
  EXPECT_TRUE(m["audit"]["forget_nonmember"].is_number());
  // The side files alone give the same aggregates.
  const auto info_file = data::DatasetFile::open(c.data.file);
  const Samples s = samples_from_csv(core::read_text_file(c.output.dir + "/eval/samples.csv"), "samples.csv");
  const json again = aggregate_samples(s, info_file->info().concept_names);
  for (const char* key : {"zero_shot", "retrieval", "hierarchy", "before"}) {
    EXPECT_EQ(again[key].dump(), m[key].dump()) << key;
  }
  const AuditRows a = audit_from_csv(core::read_text_file(c.output.dir + "/eval/audit.csv"), "audit.csv");
  EXPECT_EQ(aggregate_audit(a).dump(), m["audit"].dump());
  comm()->barrier();
}

TEST_F(EvalMpi, RetrainReferenceGivesTheAuditGap) {
  config::Config c = base("retrain_gap");
  c.eval.retrain = original_;  // any model works as the reference; the original gives gap 0
  const json m = json::parse(evaluate(request(c, comm(), dir_ + "/retrain_gap")));
  EXPECT_DOUBLE_EQ(m["audit"]["gap_to_retrain"].get<double>(), 0.0);
  EXPECT_EQ(m["audit"]["retrain"]["forget_nonmember"], m["audit"]["forget_nonmember"]);
  comm()->barrier();
}

TEST_F(EvalMpi, UnknownForgetConceptIsAConfigErrorOnEveryRank) {
  config::Config c = base("unknown");
  c.unlearn.forget = {"hats"};
  try {
    evaluate(request(c, comm(), dir_ + "/unknown"));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hats"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace runner::eval
