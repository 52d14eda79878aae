// Metrics as pure functions (metrics.h).
#include "eval/metrics.h"

#include <boost/math/distributions/normal.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace runner::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

ClassAccuracy per_class_accuracy(const std::vector<int32_t>& pred, const std::vector<int32_t>& label,
                                 const std::vector<int32_t>& classes) {
  std::map<int32_t, std::pair<int64_t, int64_t>> tally;  // class -> (correct, rows)
  for (size_t i = 0; i < label.size(); ++i) {
    auto& t = tally[label[i]];
    t.second += 1;
    t.first += pred[i] == label[i] ? 1 : 0;
  }
  ClassAccuracy out;
  out.classes = classes;
  for (int32_t c : classes) {
    const auto it = tally.find(c);
    const int64_t n = it == tally.end() ? 0 : it->second.second;
    out.count.push_back(n);
    out.acc.push_back(n == 0 ? kNaN : 100.0 * static_cast<double>(it->second.first) / static_cast<double>(n));
  }
  return out;
}

double macro_accuracy(const ClassAccuracy& a, const std::vector<int32_t>& subset) {
  double sum = 0.0;
  int64_t n = 0;
  for (int32_t c : subset) {
    const auto it = std::find(a.classes.begin(), a.classes.end(), c);
    if (it == a.classes.end()) continue;
    const auto i = static_cast<size_t>(it - a.classes.begin());
    if (a.count[i] == 0) continue;
    sum += a.acc[i];
    n += 1;
  }
  return n == 0 ? kNaN : sum / static_cast<double>(n);
}

std::vector<int32_t> argmax_rows(const at::Tensor& scores) {
  const at::Tensor idx = scores.argmax(1).to(at::kInt).contiguous();
  // at::argmax returns the first maximal index on CPU; restated here as the contract.
  return {idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + idx.numel()};
}

std::vector<int64_t> group_ranks(const at::Tensor& scores, const std::vector<int64_t>& query_group,
                                 const std::vector<int64_t>& gallery_group) {
  const int64_t n = scores.size(0);
  const at::Tensor gallery = at::tensor(gallery_group, at::kLong).reshape({1, -1});
  const at::Tensor queries = at::tensor(query_group, at::kLong).reshape({-1, 1});
  std::vector<int64_t> ranks;
  ranks.reserve(static_cast<size_t>(n));
  constexpr int64_t kChunk = 1024;
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = std::min(n, b + kChunk);
    const at::Tensor s = scores.slice(0, b, e).to(at::kDouble);
    const at::Tensor correct = queries.slice(0, b, e).eq(gallery);
    const at::Tensor best =
        s.masked_fill(correct.logical_not(), -std::numeric_limits<double>::infinity()).amax(1, /*keepdim=*/true);
    const at::Tensor beaten = s.ge(best).logical_and(correct.logical_not()).sum(1);
    const at::Tensor any = correct.any(1);
    const at::Tensor r = at::where(any, beaten + 1, at::full_like(beaten, scores.size(1) + 1)).contiguous();
    ranks.insert(ranks.end(), r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  }
  return ranks;
}

double recall_at(const std::vector<int64_t>& ranks, int64_t k) {
  if (ranks.empty()) return kNaN;
  const auto hits = std::count_if(ranks.begin(), ranks.end(), [k](int64_t r) { return r <= k; });
  return 100.0 * static_cast<double>(hits) / static_cast<double>(ranks.size());
}

AuditThreshold fit_threshold(const std::vector<double>& members, const std::vector<double>& nonmembers) {
  std::vector<double> m = members, o = nonmembers;
  std::sort(m.begin(), m.end());
  std::sort(o.begin(), o.end());
  std::vector<double> all = m;
  all.insert(all.end(), o.begin(), o.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<double> candidates;
  if (!all.empty()) {
    candidates.push_back(all.front() - 1.0);
    for (size_t i = 0; i + 1 < all.size(); ++i) candidates.push_back(0.5 * (all[i] + all[i + 1]));
    candidates.push_back(all.back() + 1.0);
  }
  AuditThreshold best{kNaN, kNaN};
  for (double t : candidates) {
    // member iff score >= t: members above, non-members below.
    const auto m_hit = static_cast<double>(m.end() - std::lower_bound(m.begin(), m.end(), t));
    const auto o_hit = static_cast<double>(std::lower_bound(o.begin(), o.end(), t) - o.begin());
    const double tpr = m.empty() ? 0.0 : m_hit / static_cast<double>(m.size());
    const double tnr = o.empty() ? 0.0 : o_hit / static_cast<double>(o.size());
    const double bacc = 100.0 * (m.empty() || o.empty() ? tpr + tnr : 0.5 * (tpr + tnr));
    if (std::isnan(best.balanced_accuracy) || bacc > best.balanced_accuracy) best = {t, bacc};
  }
  return best;
}

HeldOutAccuracy heldout_balanced_accuracy(const std::vector<double>& members, const std::vector<double>& nonmembers) {
  if (members.size() < 2 || nonmembers.size() < 2) return {kNaN, kNaN, kNaN};
  std::vector<double> fold_m[2], fold_o[2];
  for (size_t i = 0; i < members.size(); ++i) fold_m[i % 2].push_back(members[i]);
  for (size_t i = 0; i < nonmembers.size(); ++i) fold_o[i % 2].push_back(nonmembers[i]);
  double tp = 0.0, tn = 0.0;
  for (int f = 0; f < 2; ++f) {
    const double t = fit_threshold(fold_m[f], fold_o[f]).threshold;
    for (double v : fold_m[1 - f]) tp += v >= t;
    for (double v : fold_o[1 - f]) tn += v < t;
  }
  const auto nm = static_cast<double>(members.size()), no = static_cast<double>(nonmembers.size());
  const double tpr = tp / nm, tnr = tn / no;
  const double ba = 0.5 * (tpr + tnr);
  const double se = 0.5 * std::sqrt(tpr * (1.0 - tpr) / nm + tnr * (1.0 - tnr) / no);
  const double z = boost::math::quantile(boost::math::normal_distribution<double>(), 0.975);
  return {100.0 * ba, 100.0 * std::max(0.0, ba - z * se), 100.0 * std::min(1.0, ba + z * se)};
}

double share_below(const std::vector<double>& scores, double threshold) {
  if (scores.empty()) return kNaN;
  const auto n = std::count_if(scores.begin(), scores.end(), [threshold](double s) { return s < threshold; });
  return 100.0 * static_cast<double>(n) / static_cast<double>(scores.size());
}

std::vector<int32_t> knn_predict(const at::Tensor& bank, const std::vector<int32_t>& bank_labels,
                                 const at::Tensor& queries, int64_t k) {
  auto unit = [](const at::Tensor& t) {
    const at::Tensor d = t.to(at::kDouble);
    return d / d.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  };
  const at::Tensor b = unit(bank);
  const at::Tensor q = unit(queries);
  const int64_t kk = std::min<int64_t>(k, b.size(0));
  std::vector<int32_t> pred;
  pred.reserve(static_cast<size_t>(q.size(0)));
  constexpr int64_t kChunk = 1024;
  for (int64_t s0 = 0; s0 < q.size(0); s0 += kChunk) {
    const at::Tensor sim = at::matmul(q.slice(0, s0, std::min(q.size(0), s0 + kChunk)), b.t());
    // Stable order among equal similarities: the lower bank row first.
    const auto top = sim.topk(kk, 1, /*largest=*/true, /*sorted=*/true);
    const at::Tensor vals = std::get<0>(top).contiguous();
    const at::Tensor idx = std::get<1>(top).contiguous();
    const auto* v = vals.data_ptr<double>();
    const auto* ix = idx.data_ptr<int64_t>();
    for (int64_t i = 0; i < vals.size(0); ++i) {
      std::map<int32_t, std::pair<int64_t, double>> votes;  // label -> (count, summed similarity)
      for (int64_t j = 0; j < kk; ++j) {
        auto& vote = votes[bank_labels[static_cast<size_t>(ix[i * kk + j])]];
        vote.first += 1;
        vote.second += v[i * kk + j];
      }
      int32_t best = -1;
      std::pair<int64_t, double> best_vote{-1, 0.0};
      for (const auto& [label, vote] : votes) {  // ascending labels: ties keep the lower one
        if (vote.first > best_vote.first || (vote.first == best_vote.first && vote.second > best_vote.second)) {
          best = label;
          best_vote = vote;
        }
      }
      pred.push_back(best);
    }
  }
  return pred;
}

double linear_cka(const at::Tensor& x, const at::Tensor& y) {
  const at::Tensor xc = x.to(at::kDouble) - x.to(at::kDouble).mean(0, true);
  const at::Tensor yc = y.to(at::kDouble) - y.to(at::kDouble).mean(0, true);
  const double cross = at::matmul(yc.t(), xc).pow(2).sum().item<double>();
  const double xx = at::matmul(xc.t(), xc).pow(2).sum().sqrt().item<double>();
  const double yy = at::matmul(yc.t(), yc).pow(2).sum().sqrt().item<double>();
  if (!(xx > 0) || !(yy > 0)) return kNaN;
  return cross / (xx * yy);
}

double masked_mean(const std::vector<double>& values, const std::vector<char>& mask) {
  double sum = 0.0;
  int64_t n = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!mask[i]) continue;
    sum += values[i];
    n += 1;
  }
  return n == 0 ? kNaN : sum / static_cast<double>(n);
}

}  // namespace runner::eval
