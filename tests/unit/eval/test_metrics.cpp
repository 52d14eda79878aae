// The evaluation metrics on hand-made inputs with known answers, and the side files: written in
// their format, read back column for column through the field lists, aggregated to the same numbers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <cmath>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/samples.h"

namespace runner::eval {
namespace {

TEST(MacroAccuracy, PerfectIs100ConstantIsOneOverK) {
  const std::vector<int32_t> label = {0, 0, 1, 1, 1, 2, 3, 3};
  const std::vector<int32_t> classes = {0, 1, 2, 3};
  EXPECT_DOUBLE_EQ(macro_accuracy(per_class_accuracy(label, label, classes), classes), 100.0);
  const std::vector<int32_t> constant(label.size(), 1);
  const ClassAccuracy a = per_class_accuracy(constant, label, classes);
  EXPECT_DOUBLE_EQ(macro_accuracy(a, classes), 100.0 / 4);
  EXPECT_DOUBLE_EQ(macro_accuracy(a, {1}), 100.0);
  EXPECT_DOUBLE_EQ(macro_accuracy(a, {0, 2, 3}), 0.0);
}

TEST(MacroAccuracy, MeansClassesNotRowsAndSkipsClassesWithoutRows) {
  // Class 0: 1 of 4 right (25%); class 1: 1 of 1 (100%): macro 62.5, micro would be 40.
  const std::vector<int32_t> label = {0, 0, 0, 0, 1};
  const std::vector<int32_t> pred = {0, 1, 1, 1, 1};
  const ClassAccuracy a = per_class_accuracy(pred, label, {0, 1, 7});
  EXPECT_DOUBLE_EQ(a.acc[0], 25.0);
  EXPECT_EQ(a.count[2], 0);
  EXPECT_TRUE(std::isnan(a.acc[2]));
  EXPECT_DOUBLE_EQ(macro_accuracy(a, {0, 1, 7}), 62.5);
  EXPECT_TRUE(std::isnan(macro_accuracy(a, {7})));
}

TEST(Argmax, FirstOfEqualMaxima) {
  const at::Tensor s = torch::tensor({0.1, 0.9, 0.9, 0.3, 0.3, 0.2}, torch::kDouble).reshape({2, 3});
  EXPECT_EQ(argmax_rows(s), (std::vector<int32_t>{1, 0}));
}

TEST(GroupRanks, KnownRanksAndPessimisticTies) {
  // Gallery items 0..3; query 0's target (item 2) is beaten by item 1 only -> rank 2.
  // Query 1's target (item 0) is tied with item 3 -> ties count against it -> rank 2.
  // Query 2's targets are items 1 and 3 (same group 5): the best of them is first -> rank 1.
  const at::Tensor s = torch::tensor({0.1, 0.8, 0.5, 0.2,  //
                                      0.7, 0.1, 0.3, 0.7,  //
                                      0.9, 0.2, 0.1, 0.95},
                                     torch::kDouble)
                           .reshape({3, 4});
  const auto r = group_ranks(s, {2, 0, 5}, {0, 1, 2, 5});
  EXPECT_EQ(r, (std::vector<int64_t>{2, 2, 1}));
}

TEST(GroupRanks, CollapsedModelGetsTheWorstRankAndMissingTargetsRankPastTheEnd) {
  const at::Tensor s = torch::zeros({2, 5});
  const auto r = group_ranks(s, {0, 9}, {0, 1, 2, 3, 4});
  EXPECT_EQ(r[0], 5);
  EXPECT_EQ(r[1], 6);
  EXPECT_DOUBLE_EQ(recall_at(r, 5), 50.0);
  EXPECT_DOUBLE_EQ(recall_at({1, 2, 10, 11}, 1), 25.0);
  EXPECT_DOUBLE_EQ(recall_at({1, 2, 10, 11}, 10), 75.0);
  EXPECT_TRUE(std::isnan(recall_at({}, 1)));
}

TEST(Audit, SeparableScoresGiveAPerfectThresholdBetweenThem) {
  const std::vector<double> members = {0.9, 0.8, 0.85, 0.7};
  const std::vector<double> nonmembers = {0.1, 0.3, 0.2, 0.5};
  const AuditThreshold t = fit_threshold(members, nonmembers);
  EXPECT_DOUBLE_EQ(t.balanced_accuracy, 100.0);
  EXPECT_GT(t.threshold, 0.5);
  EXPECT_LT(t.threshold, 0.7);
  EXPECT_DOUBLE_EQ(share_below({0.95, 0.2, 0.1, 0.55}, t.threshold), 75.0);
  EXPECT_TRUE(std::isnan(share_below({}, t.threshold)));
}

TEST(Audit, OverlappingScoresBalanceBothClasses) {
  // Members {1, 2, 3, 4}, non-members {0, 2.5}: best rule "member iff >= 2.75" keeps 2 of 4
  // members and both non-members (75%), as does ">= 0.5" (4 of 4, 1 of 2 = 75%); the first wins.
  const AuditThreshold t = fit_threshold({1, 2, 3, 4}, {0, 2.5});
  EXPECT_DOUBLE_EQ(t.balanced_accuracy, 75.0);
  EXPECT_DOUBLE_EQ(t.threshold, 0.5);
}

// Cross-fitted balanced accuracy: separable scores give 100 % out of fold; scores that carry no
// member signal stay near 50 % (the fitted value is pushed above it), and the interval says so.
TEST(Audit, HeldOutBalancedAccuracyIsNotFittedOnItsOwnPairs) {
  const HeldOutAccuracy perfect = heldout_balanced_accuracy({10, 11, 12, 13}, {1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(perfect.balanced_accuracy, 100.0);
  EXPECT_DOUBLE_EQ(perfect.hi, 100.0);
  // Hand count: folds of members {10,12} / {11,13}, non-members {1,3} / {2,4}; the thresholds
  // fitted on each fold (6.5 and 7.5) put every held-out pair on its side: TPR = TNR = 1, the
  // variance is 0 and lo = 100. (Members {5..8} would not do: the threshold 4 fitted on {5,7} /
  // {1,3} calls the held-out non-member 4 a member.)
  EXPECT_DOUBLE_EQ(perfect.lo, 100.0);
  // No signal: members and non-members from the same pseudo-random stream.
  std::vector<double> m, o;
  uint64_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const double v = static_cast<double>(x >> 11) / 9007199254740992.0;
    (i % 2 ? m : o).push_back(v);
  }
  const HeldOutAccuracy h = heldout_balanced_accuracy(m, o);
  EXPECT_GT(fit_threshold(m, o).balanced_accuracy, h.balanced_accuracy);
  EXPECT_LT(h.lo, 50.0);
  EXPECT_GT(h.hi, 50.0);
  // At most the width with both rates at 0.5: 2 x 1.959964 x 0.5 x sqrt(0.25/1000 + 0.25/1000) = 4.38 points.
  EXPECT_LE(h.hi - h.lo, 4.39);
  EXPECT_GT(h.hi - h.lo, 1.0);
  EXPECT_TRUE(std::isnan(heldout_balanced_accuracy({1}, {0, 1}).balanced_accuracy));
  const HeldOutAccuracy touching = heldout_balanced_accuracy({5, 6, 7, 8}, {1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(touching.balanced_accuracy, 87.5);  // 4 of 4 members, 3 of 4 non-members
}

TEST(Audit, AggregateWithRetrainGap) {
  AuditRows a;
  auto add = [&](const char* set, double score, double retrain) {
    a.set.emplace_back(set);
    a.row.push_back(static_cast<int64_t>(a.row.size()));
    a.concept.push_back(0);
    a.score.push_back(score);
    a.retrain_score.push_back(retrain);
  };
  // Model: members at 1, non-members at 0, forget pairs at 1 (look like members: 0% non-member).
  // Retrain: the same members/non-members, forget pairs at 0 (100% non-member): gap -100.
  for (int i = 0; i < 3; ++i) add("member", 1.0, 1.0);
  for (int i = 0; i < 3; ++i) add("nonmember", 0.0, 0.0);
  for (int i = 0; i < 2; ++i) add("forget", 1.0, 0.0);
  const json j = aggregate_audit(a);
  EXPECT_DOUBLE_EQ(j["forget_nonmember"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["retrain"]["forget_nonmember"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j["gap_to_retrain"].get<double>(), -100.0);
  EXPECT_EQ(j["forget_pairs"].get<int64_t>(), 2);
  const AuditRows back = audit_from_csv(to_csv(a), "audit.csv");
  EXPECT_EQ(aggregate_audit(back).dump(), j.dump());
}

TEST(Knn, MajorityOfNearestWithTieRules) {
  // Bank: class 0 near (1, 0), class 1 near (0, 1).
  const at::Tensor bank = torch::tensor({1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9, 0.2, 0.8}, torch::kDouble).reshape({5, 2});
  const std::vector<int32_t> labels = {0, 0, 1, 1, 1};
  const at::Tensor q = torch::tensor({1.0, 0.05, 0.05, 1.0}, torch::kDouble).reshape({2, 2});
  EXPECT_EQ(knn_predict(bank, labels, q, 1), (std::vector<int32_t>{0, 1}));
  // k = 5 over 5 rows: class 1 has 3 votes everywhere.
  EXPECT_EQ(knn_predict(bank, labels, q, 5), (std::vector<int32_t>{1, 1}));
  // k = 4 on query (1, 0.05): 2 votes each; class 0's two are closer -> 0.
  EXPECT_EQ(knn_predict(bank, labels, q.slice(0, 0, 1), 4), (std::vector<int32_t>{0}));
  // Scale does not matter (cosine).
  EXPECT_EQ(knn_predict(bank * 7.0, labels, q * 0.1, 1), (std::vector<int32_t>{0, 1}));
}

TEST(Cka, OneForRotationAndScaleLowForIndependent) {
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({200, 8}, torch::kDouble);
  const at::Tensor rot = std::get<0>(at::linalg_qr(torch::randn({8, 8}, torch::kDouble)));
  EXPECT_NEAR(linear_cka(x, x), 1.0, 1e-12);
  EXPECT_NEAR(linear_cka(x, 3.0 * at::matmul(x, rot) + 5.0), 1.0, 1e-12);
  EXPECT_LT(linear_cka(x, torch::randn({200, 8}, torch::kDouble)), 0.15);
  // Closed form for one column each: CKA = squared Pearson correlation.
  const at::Tensor a = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kDouble).reshape({4, 1});
  const at::Tensor b = torch::tensor({1.0, 3.0, 2.0, 4.0}, torch::kDouble).reshape({4, 1});
  EXPECT_NEAR(linear_cka(a, b), 0.8 * 0.8, 1e-12);  // Pearson r = 0.8
  EXPECT_TRUE(std::isnan(linear_cka(torch::ones({4, 2}), a)));
}

// Two forget classes (0, 1) and two retain classes (2, 3), two rows each.
Samples hand_made_samples() {
  Samples s;
  s.row = {0, 1, 2, 3, 4, 5, 6, 7};
  s.concept = {0, 0, 1, 1, 2, 2, 3, 3};
  s.forget = {1, 1, 1, 1, 0, 0, 0, 0};
  s.i2t_rank = {1, 7, 3, 20, 1, 1, 2, 6};
  s.t2i_rank = {2, 2, 11, 11, 1, 1, 1, 1};
  s.knn_pred = {0, 0, 1, 2, 2, 2, 3, 3};
  s.after.zs_pred = {2, 2, 3, 1, 2, 2, 3, 2};  // forget: 0% and 50%; retain: 100% and 50%
  s.after.score = {-1, -2, -3, -4, -0.5, -0.5, -0.25, -0.75};
  s.after.image_dist0 = {4, 6, 4, 6, 1, 1, 1, 1};
  s.after.text_dist0 = {2, 2, 2, 2, 1, 1, 1, 1};
  s.after.own_cone = {0, 0, 0, 1, 1, 1, 1, 0};
  s.after.parent_cone = {1, 1, -1, -1, 1, 0, 1, 0};
  s.after.cone_margin = {0.5, 0.25, 0.5, -0.25, -1, -1, -0.5, 0.5};
  s.before = s.after;
  s.before.cone_margin = {-0.5, -0.5, -0.5, -0.5, -1, -1, -1, 0.5};
  s.before.zs_pred = {0, 0, 1, 1, 2, 2, 3, 3};
  s.before.image_dist0 = {1, 1, 1, 1, 1, 1, 1, 1};
  s.before.own_cone = {1, 1, 1, 1, 1, 1, 1, 0};
  return s;
}

TEST(Aggregate, HandMadeSamplesGiveKnownNumbers) {
  const Samples s = hand_made_samples();
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const json j = aggregate_samples(s, names);
  EXPECT_DOUBLE_EQ(j["zero_shot"]["forget_top1"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["zero_shot"]["retain_top1"].get<double>(), 75.0);
  EXPECT_DOUBLE_EQ(j["zero_shot"]["all_top1"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["zero_shot"]["per_class"]["b"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["before"]["zero_shot"]["forget_top1"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j["retrieval"]["forget"]["i2t_r1"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["retrieval"]["forget"]["i2t_r5"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["retrieval"]["forget"]["t2i_r10"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["retrieval"]["retain"]["i2t_r5"].get<double>(), 75.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["forget"]["image_dist0"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["forget"]["own_cone"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["forget"]["parent_cone"].get<double>(), 100.0);  // n/a rows left out
  EXPECT_DOUBLE_EQ(j["hierarchy"]["retain"]["parent_cone"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["shift_per_concept"]["a"]["image_dist0"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["shift_per_concept"]["a"]["own_cone"].get<double>(), -100.0);
  EXPECT_DOUBLE_EQ(j["hierarchy"]["shift_per_concept"]["c"]["image_dist0"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["representation"]["knn_forget"].get<double>(), 75.0);
  EXPECT_DOUBLE_EQ(j["representation"]["knn_retain"].get<double>(), 100.0);
  EXPECT_EQ(j["forget_classes"], json({"a", "b"}));
}

TEST(Aggregate, SideFileReadBackGivesTheSameMetrics) {
  const Samples s = hand_made_samples();
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const Samples back = samples_from_csv(to_csv(s), "samples.csv");
  EXPECT_EQ(aggregate_samples(back, names).dump(), aggregate_samples(s, names).dump());
  const std::string classes = per_concept_csv(s, names);
  EXPECT_NE(classes.find("0,\"a\",1,2,0,5,2,0,100,0.375,100,1,2,100,100,-0.5"), std::string::npos) << classes;
}

TEST(SideFiles, SamplesCsvKeepsItsFormat) {
  const std::string text = to_csv(hand_made_samples());
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "row,concept,forget,i2t_rank,t2i_rank,knn_pred,zs_pred,score,image_dist0,text_dist0,own_cone,parent_cone,"
            "cone_margin,zs_pred_before,score_before,image_dist0_before,text_dist0_before,own_cone_before,"
            "parent_cone_before,cone_margin_before");
  EXPECT_NE(text.find("\n0,0,1,1,2,0,2,-1,4,2,0,1,0.5,0,-1,1,2,1,1,-0.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n4,2,0,1,1,2,2,-0.5,1,1,1,1,-1,2,-0.5,1,1,1,1,-1\n"), std::string::npos) << text;
}

// A samples.csv written before cone_margin existed still reads: the column is NaN, the other
// aggregates are unchanged; a missing original column is still an error naming it.
TEST(SideFiles, AnOlderSamplesCsvWithoutConeMarginReadsAsNaN) {
  const Samples s = hand_made_samples();
  std::string text = to_csv(s);
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  // Drop the two cone_margin columns (positions 12 and 19).
  std::string old;
  for (const auto& line : lines) {
    std::vector<std::string> cells;
    for (size_t a = 0;;) {
      const size_t b = line.find(',', a);
      cells.push_back(line.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos) break;
      a = b + 1;
    }
    ASSERT_EQ(cells.size(), 20u);
    cells.erase(cells.begin() + 19);
    cells.erase(cells.begin() + 12);
    old += fmt::format("{}\n", fmt::join(cells, ","));
  }
  const Samples back = samples_from_csv(old, "old.csv");
  ASSERT_EQ(back.size(), s.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_TRUE(std::isnan(back.after.cone_margin[i]));
    EXPECT_TRUE(std::isnan(back.before.cone_margin[i]));
  }
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const json a = aggregate_samples(back, names), b = aggregate_samples(s, names);
  EXPECT_EQ(a["zero_shot"], b["zero_shot"]);
  EXPECT_EQ(a["hierarchy"]["forget"]["image_dist0"], b["hierarchy"]["forget"]["image_dist0"]);
  EXPECT_DOUBLE_EQ(b["hierarchy"]["forget"]["cone_margin"].get<double>(), 0.25);  // (0.5 + 0.25 + 0.5 - 0.25) / 4
  EXPECT_DOUBLE_EQ(b["before"]["hierarchy"]["forget"]["cone_margin"].get<double>(), -0.5);
  std::string no_score = old;
  no_score.replace(no_score.find(",score,"), 7, ",scor,");
  EXPECT_THROW(samples_from_csv(no_score, "old.csv"), IoError);
}

// Every column of samples.csv through the field lists, as (header name, cells).
std::vector<std::pair<std::string, std::vector<std::string>>> columns_of(const Samples& s) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  auto add = [&](const std::string& suffix) {
    return [&out, suffix](const char* name, const auto& values, Aggregate, const char*) {
      std::vector<std::string> cells;
      for (const auto& v : values) cells.push_back(fmt::format("{}", static_cast<double>(v)));
      out.emplace_back(name + suffix, cells);
    };
  };
  visit_row_columns(s, add(""));
  visit_model_columns(s.after, add(""));
  if (s.has_before()) visit_model_columns(s.before, add("_before"));
  return out;
}

// Distinct values in every column (NaN in one), through the field lists themselves.
Samples every_column_filled() {
  Samples s;
  int column = 0;
  auto fill = [&](const char*, auto& values, Aggregate, const char*) {
    using T = typename std::decay_t<decltype(values)>::value_type;
    ++column;
    for (int i = 0; i < 5; ++i) {
      if constexpr (std::is_same_v<T, char>) {
        values.push_back(static_cast<char>(i % 2));  // written as 0/1
      } else if constexpr (std::is_same_v<T, double>) {
        values.push_back(i == 3 ? std::nan("") : column + i / 3.0 - 7.0);
      } else {
        values.push_back(static_cast<T>(column * 10 + i - 20));
      }
    }
  };
  visit_row_columns(s, fill);
  visit_model_columns(s.after, fill);
  visit_model_columns(s.before, fill);
  return s;
}

TEST(SideFiles, EveryColumnRoundTripsThroughTheFieldLists) {
  const Samples s = every_column_filled();
  const auto columns = columns_of(s);
  std::vector<std::string> names;
  for (const auto& c : columns) names.push_back(c.first);
  EXPECT_EQ(sample_columns(true), names);
  const std::string text = to_csv(s);
  std::string header;
  for (const auto& n : names) header += (header.empty() ? "" : ",") + n;
  EXPECT_EQ(text.substr(0, text.find('\n')), header);
  EXPECT_EQ(columns_of(samples_from_csv(text, "samples.csv")), columns);
  // Without the original: no _before columns, and none read back.
  Samples after_only = s;
  after_only.before = ModelValues{};
  const Samples back = samples_from_csv(to_csv(after_only), "samples.csv");
  EXPECT_FALSE(back.has_before());
  EXPECT_EQ(columns_of(back), columns_of(after_only));
  const auto after_names = std::vector<std::string>(names.begin(), names.begin() + columns_of(after_only).size());
  EXPECT_EQ(sample_columns(false), after_names);
  // Every aggregate accepts its column's type.
  EXPECT_NO_THROW(aggregate_samples(s, {}));
  EXPECT_NO_THROW(per_concept_csv(s, {}));
  // The lists cover every member: both structs hold nothing but column vectors (all vectors have
  // one size), so a member left out of the lists shows up here.
  size_t row_columns = 0, model_columns = 0;
  visit_row_columns(s, [&](const char*, const auto&, Aggregate, const char*) { ++row_columns; });
  visit_model_columns(s.after, [&](const char*, const auto&, Aggregate, const char*) { ++model_columns; });
  EXPECT_EQ(sizeof(ModelValues), model_columns * sizeof(std::vector<double>));
  EXPECT_EQ(sizeof(Samples), row_columns * sizeof(std::vector<double>) + 2 * sizeof(ModelValues));
  EXPECT_EQ(names.size(), row_columns + 2 * model_columns);
}

TEST(Aggregate, MalformedSideFilesNameTheFileAndLine) {
  std::string text = to_csv(hand_made_samples());
  text += "8,1,1\n";
  try {
    samples_from_csv(text, "run/eval/samples.csv");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("run/eval/samples.csv:10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(samples_from_csv("row,concept\n1,2\n", "s.csv"), IoError);  // columns missing
  EXPECT_THROW(audit_from_csv("set,row,concept,score\nmaybe,1,2,0.5\n", "a.csv"), IoError);
  EXPECT_THROW(audit_from_csv("set,row,concept,score\nmember,1,2,x\n", "a.csv"), IoError);
}

}  // namespace
}  // namespace runner::eval
