// Small statistics for the tables `hac collect` writes (docs/results.md): a table cell of the
// unlearning study is a mean over seeds or units with its two-sided t interval (mean_interval);
// methods are compared by paired differences on matched units (paired_test: t interval, paired-t
// and sign-flip permutation p-values), or unpaired when units do not match (welch_test); p-values
// of several comparisons are adjusted together (holm); a claim about a difference is judged from
// its interval (verdict).
//
// NaN inputs are ignored everywhere: NaN values are dropped (in paired_test, a pair is dropped
// when either side is NaN), and `n` counts the values actually used. Infinite values are kept and
// propagate. Quantiles and cdfs come from Boost.Math. No torch here.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace runner::sweep::stats {

// A mean with its two-sided interval at some level.
struct Interval {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  // sample sd (n - 1)
  int64_t n = 0;                                         // values used (NaN dropped)

  // (hi - lo) / 2; NaN when lo or hi is NaN.
  double half() const;
};

// Student-t interval of the mean at `level` (two-sided, e.g. 0.95). n = 1: mean set, lo/hi/sd NaN.
// n = 0: all NaN. All values equal (sd 0): lo = hi = mean. Throws ConfigError unless
// 0 < level < 1.
Interval mean_interval(const std::vector<double>& x, double level = 0.95);

// A paired comparison of two methods on matched units.
struct PairedTest {
  Interval diff;  // mean of the differences a - b with its t interval
  // t statistic mean / (sd / sqrt(n)). NaN when n < 2. sd = 0: 0 when every difference is 0,
  // +-inf otherwise.
  double t = std::numeric_limits<double>::quiet_NaN();
  // Two-sided paired-t p-value. NaN when n < 2; sd = 0: 1 when every difference is 0, else 0.
  double p_t = std::numeric_limits<double>::quiet_NaN();
  // Two-sided sign-flip permutation p-value of the mean difference; NaN when n = 0 or a
  // difference is infinite.
  double p_perm = std::numeric_limits<double>::quiet_NaN();
  bool exact = false;  // p_perm counted over all 2^n sign patterns (n <= 20)
  int64_t draws = 0;   // random sign patterns behind p_perm when not exact, else 0
  int64_t n = 0;       // pairs used
};

// Paired test of the differences a[i] - b[i]; a pair is dropped when either side is NaN.
// Sign-flip test: statistic |mean(s_i d_i)| over signs s_i = +-1; p = share of sign patterns whose
// statistic is >= the observed one (ties within a relative 1e-12), the identity pattern included.
// Exact over all 2^n patterns for n <= kMaxExactPairs; beyond, Monte Carlo with `draws` random
// patterns, p = (1 + count) / (1 + draws). The random patterns come from std::mt19937_64 seeded
// with `seed`: each draw takes ceil(n / 64) outputs and flips pair i when bit i % 64 (lowest bit
// first) of output i / 64 is 1, so a seed gives the same p on every platform.
// Throws ConfigError when a and b differ in size, unless 0 < level < 1, or when the Monte Carlo
// path is needed and draws < 1.
constexpr int64_t kMaxExactPairs = 20;
PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double level = 0.95,
                       int64_t draws = 20000, uint64_t seed = 0);

// An unpaired comparison: diff = mean(a) - mean(b) with the Welch-Satterthwaite interval [lo, hi],
// degrees of freedom df, t statistic and two-sided p.
struct WelchTest {
  double diff = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  double df = std::numeric_limits<double>::quiet_NaN();
  double t = std::numeric_limits<double>::quiet_NaN();
  double p = std::numeric_limits<double>::quiet_NaN();
  int64_t na = 0, nb = 0;  // values used from a and from b (NaN dropped)
};

// Welch test of mean(a) - mean(b). diff is set when both sides have a value; the rest needs at
// least 2 values on each side. Both sds 0: lo = hi = diff, df NaN, and t, p as in PairedTest
// (0 and 1 when diff is 0, else +-inf and 0). Throws ConfigError unless 0 < level < 1.
WelchTest welch_test(const std::vector<double>& a, const std::vector<double>& b, double level = 0.95);

// Holm-Bonferroni adjusted p-values, in the order given; NaN stays NaN and is not counted in the
// number of tests m. Adjusted values are capped at 1. Throws ConfigError for a p outside [0, 1].
std::vector<double> holm(const std::vector<double>& p);

enum class Verdict { kSupported, kContradicted, kInconclusive };

// "supported", "contradicted", "inconclusive".
const char* verdict_name(Verdict v);

// The verdict on the claim "the difference is below `threshold`" (expect_below) or "above" it
// (!expect_below), from the difference's interval [lo, hi]: supported when the whole interval lies
// strictly on the claimed side, contradicted when it lies strictly on the other side, inconclusive
// otherwise or when lo, hi or threshold is NaN.
Verdict verdict(double lo, double hi, double threshold, bool expect_below);

}  // namespace runner::sweep::stats
