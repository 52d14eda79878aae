// Intervals, paired and unpaired tests, Holm adjustment and verdicts for the tables (stats.h).
#include "sweep/stats.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "core/error.h"

namespace runner::sweep::stats {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Relative tolerance under which a permuted statistic counts as a tie with the observed one.
constexpr double kTieTolerance = 1e-12;

std::string str(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Throws ConfigError naming `where` unless 0 < level < 1.
void check_level(double level, const char* where) {
  if (!(level > 0.0 && level < 1.0))
    throw ConfigError(std::string("stats::") + where + ": level must lie in (0, 1), got " + str(level));
}

std::vector<double> drop_nan(const std::vector<double>& x) {
  std::vector<double> out;
  out.reserve(x.size());
  for (double v : x)
    if (!std::isnan(v)) out.push_back(v);
  return out;
}

// Mean of a non-empty x, shifted by x[0] so that equal values give that value exactly.
double mean_of(const std::vector<double>& x) {
  double s = 0.0;
  for (double v : x) s += v - x[0];
  return x[0] + s / static_cast<double>(x.size());
}

// Sample variance (n - 1) of x, n >= 2, around its mean m.
double variance_of(const std::vector<double>& x, double m) {
  double s = 0.0;
  for (double v : x) s += (v - m) * (v - m);
  return s / static_cast<double>(x.size() - 1);
}

// The upper (1 - level) / 2 quantile of Student's t with df degrees of freedom.
double t_quantile(double df, double level) {
  boost::math::students_t dist(df);
  return boost::math::quantile(boost::math::complement(dist, (1.0 - level) / 2.0));
}

// Two-sided p-value of t under Student's t with df degrees of freedom; 0 for infinite t, NaN for
// NaN t.
double t_p_value(double t, double df) {
  if (std::isnan(t) || std::isnan(df)) return kNaN;
  if (std::isinf(t)) return 0.0;
  boost::math::students_t dist(df);
  return std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(t))));
}

// Whether |s| counts as at least the observed statistic.
bool at_least(double s, double threshold) { return std::fabs(s) >= threshold; }

// Sign-flip permutation p-value of the differences d (non-empty, finite), exact or Monte Carlo.
void sign_flip(const std::vector<double>& d, int64_t draws, uint64_t seed, PairedTest& out) {
  const size_t n = d.size();
  double observed = 0.0;
  for (double v : d) observed += v;
  // Comparing |sum| is comparing |mean|: n is the same for every pattern.
  const double threshold = std::fabs(observed) * (1.0 - kTieTolerance);
  if (static_cast<int64_t>(n) <= kMaxExactPairs) {
    // Flipping every sign negates each partial sum exactly, so pattern and complement tie: count
    // the patterns that keep the last sign and halve the total.
    const uint64_t patterns = uint64_t{1} << (n - 1);
    uint64_t count = 0;
    for (uint64_t mask = 0; mask < patterns; ++mask) {
      double s = 0.0;
      for (size_t i = 0; i < n; ++i) s += ((mask >> i) & 1u) ? -d[i] : d[i];
      if (at_least(s, threshold)) ++count;
    }
    out.p_perm = static_cast<double>(count) / static_cast<double>(patterns);
    out.exact = true;
    out.draws = 0;
    return;
  }
  std::mt19937_64 gen(seed);
  int64_t count = 0;
  for (int64_t k = 0; k < draws; ++k) {
    double s = 0.0;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i % 64 == 0) bits = gen();
      s += ((bits >> (i % 64)) & 1u) ? -d[i] : d[i];
    }
    if (at_least(s, threshold)) ++count;
  }
  out.p_perm = static_cast<double>(1 + count) / static_cast<double>(1 + draws);
  out.exact = false;
  out.draws = draws;
}

}  // namespace

double Interval::half() const {
  if (std::isnan(lo) || std::isnan(hi)) return kNaN;
  return (hi - lo) / 2.0;
}

Interval mean_interval(const std::vector<double>& x, double level) {
  check_level(level, "mean_interval");
  const std::vector<double> v = drop_nan(x);
  Interval r;
  r.n = static_cast<int64_t>(v.size());
  if (v.empty()) return r;
  r.mean = mean_of(v);
  if (v.size() < 2) return r;
  r.sd = std::sqrt(variance_of(v, r.mean));
  if (r.sd == 0.0) {
    r.lo = r.hi = r.mean;
    return r;
  }
  const double half = t_quantile(static_cast<double>(r.n - 1), level) * r.sd / std::sqrt(static_cast<double>(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double level, int64_t draws,
                       uint64_t seed) {
  if (a.size() != b.size())
    throw ConfigError("stats::paired_test: the two sides must pair up, got " + std::to_string(a.size()) + " and " +
                      std::to_string(b.size()) + " values");
  check_level(level, "paired_test");
  std::vector<double> d;
  d.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (!std::isnan(a[i]) && !std::isnan(b[i])) d.push_back(a[i] - b[i]);
  const int64_t n = static_cast<int64_t>(d.size());
  if (n > kMaxExactPairs && draws < 1)
    throw ConfigError("stats::paired_test: " + std::to_string(n) +
                      " pairs need random sign patterns, but draws is " + std::to_string(draws));

  PairedTest r;
  r.n = n;
  r.diff = mean_interval(d, level);
  if (n == 0) return r;
  const bool finite = std::all_of(d.begin(), d.end(), [](double v) { return std::isfinite(v); });
  if (finite) sign_flip(d, draws, seed, r);
  if (n < 2) return r;
  if (r.diff.sd == 0.0) {
    r.t = r.diff.mean == 0.0 ? 0.0 : std::copysign(kInf, r.diff.mean);
    r.p_t = r.diff.mean == 0.0 ? 1.0 : 0.0;
    return r;
  }
  r.t = r.diff.mean / (r.diff.sd / std::sqrt(static_cast<double>(n)));
  r.p_t = t_p_value(r.t, static_cast<double>(n - 1));
  return r;
}

WelchTest welch_test(const std::vector<double>& a, const std::vector<double>& b, double level) {
  check_level(level, "welch_test");
  const std::vector<double> va = drop_nan(a), vb = drop_nan(b);
  WelchTest r;
  r.na = static_cast<int64_t>(va.size());
  r.nb = static_cast<int64_t>(vb.size());
  if (va.empty() || vb.empty()) return r;
  const double ma = mean_of(va), mb = mean_of(vb);
  r.diff = ma - mb;
  if (va.size() < 2 || vb.size() < 2) return r;
  // Squared standard errors of the two means.
  const double sa = variance_of(va, ma) / static_cast<double>(r.na);
  const double sb = variance_of(vb, mb) / static_cast<double>(r.nb);
  const double se2 = sa + sb;
  if (se2 == 0.0) {
    r.lo = r.hi = r.diff;
    r.t = r.diff == 0.0 ? 0.0 : std::copysign(kInf, r.diff);
    r.p = r.diff == 0.0 ? 1.0 : 0.0;
    return r;
  }
  if (!std::isfinite(se2) || !std::isfinite(r.diff)) return r;
  // Welch-Satterthwaite df = se2^2 / (sa^2 / (na - 1) + sb^2 / (nb - 1)), in shares of se2 so
  // that tiny variances do not underflow.
  const double qa = sa / se2, qb = sb / se2;
  r.df = 1.0 / (qa * qa / static_cast<double>(r.na - 1) + qb * qb / static_cast<double>(r.nb - 1));
  const double se = std::sqrt(se2);
  r.t = r.diff / se;
  r.p = t_p_value(r.t, r.df);
  const double half = t_quantile(r.df, level) * se;
  r.lo = r.diff - half;
  r.hi = r.diff + half;
  return r;
}

std::vector<double> holm(const std::vector<double>& p) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p.size(); ++i) {
    if (std::isnan(p[i])) continue;
    if (p[i] < 0.0 || p[i] > 1.0)
      throw ConfigError("stats::holm: p-value " + std::to_string(i) + " is " + str(p[i]) +
                        ", expected a value in [0, 1]");
    order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  std::vector<double> out(p.size(), kNaN);
  const size_t m = order.size();
  double running = 0.0;  // adjusted values never decrease along the sorted order
  for (size_t j = 0; j < m; ++j) {
    const double adjusted = std::min(1.0, static_cast<double>(m - j) * p[order[j]]);
    running = std::max(running, adjusted);
    out[order[j]] = running;
  }
  return out;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kSupported:
      return "supported";
    case Verdict::kContradicted:
      return "contradicted";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "unknown";
}

Verdict verdict(double lo, double hi, double threshold, bool expect_below) {
  if (std::isnan(lo) || std::isnan(hi) || std::isnan(threshold)) return Verdict::kInconclusive;
  const bool below = hi < threshold;
  const bool above = lo > threshold;
  if (expect_below ? below : above) return Verdict::kSupported;
  if (expect_below ? above : below) return Verdict::kContradicted;
  return Verdict::kInconclusive;
}

}  // namespace runner::sweep::stats
