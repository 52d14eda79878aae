// The statistics behind the tables of `hac collect`: t intervals of a mean, paired tests (t and
// sign-flip permutation), Welch tests, Holm adjustment and verdicts. Expected
// values are worked out by hand in the comments; t quantiles and cdfs for df 2 and 4 have closed
// forms (df 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)), quantile (2p - 1) / sqrt(2p(1 - p)); df 4:
// quantile 2 sqrt(q - 1) with q = cos(acos(sqrt(a)) / 3) / sqrt(a), a = 4p(1 - p)), and the values
// for other df were checked with a 30-digit incomplete-beta evaluation of the t cdf.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "sweep/stats.h"

namespace runner::sweep::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTol = 1e-12;

// 25 integer differences (rounded draws of a normal with mean 6, sd 30). Their sum is 191, mean
// 7.64, sd 30.99042862992809, t = 7.64 / (sd / 5) = 1.2326386464725912, two-sided paired-t p with
// 24 df 0.22964941159704703. The exact sign-flip p, from the distribution of sum s_i d_i built up
// one pair at a time over the integers, is 7706014 / 2^25 = 0.2296571135520935.
const std::vector<double> kDiff25 = {43, 35, -35, -52, 3,  29, 2,   -38, -9, 49, -35, 37, 22,
                                     20, 29, -10, 2,   60, -6, -7, -36, -8, 28, 43,  25};

// --- mean_interval --------------------------------------------------------------------------

TEST(StatsMeanInterval, FiveValues) {
  // {1..5}: mean 3, squared deviations 4+1+0+1+4 = 10, sd = sqrt(10 / 4) = sqrt(2.5);
  // t_{0.975,4} = 2.7764451051977943 (df 4 closed form), half = t * sqrt(2.5) / sqrt(5)
  // = 2.7764451051977943 * 0.7071067811865476 = 1.9632431614775577.
  const Interval r = mean_interval({1, 2, 3, 4, 5});
  EXPECT_EQ(r.n, 5);
  EXPECT_DOUBLE_EQ(r.mean, 3.0);
  EXPECT_NEAR(r.sd, std::sqrt(2.5), kTol);
  EXPECT_NEAR(r.half(), 1.9632431614775577, kTol);
  EXPECT_NEAR(r.lo, 1.0367568385224423, kTol);
  EXPECT_NEAR(r.hi, 4.9632431614775577, kTol);
}

TEST(StatsMeanInterval, OtherLevel) {
  // 90%: t_{0.95,4} = 2.1318467863266503 (df 4 closed form with p = 0.95), half = t * sqrt(0.5).
  const Interval r = mean_interval({1, 2, 3, 4, 5}, 0.90);
  EXPECT_NEAR(r.half(), 2.1318467863266503 * std::sqrt(0.5), kTol);
}

TEST(StatsMeanInterval, DropsNaN) {
  const Interval r = mean_interval({kNaN, 1, 2, kNaN, 3, 4, 5, kNaN});
  EXPECT_EQ(r.n, 5);
  EXPECT_DOUBLE_EQ(r.mean, 3.0);
  EXPECT_NEAR(r.half(), 1.9632431614775577, kTol);
}

TEST(StatsMeanInterval, OneValue) {
  const Interval r = mean_interval({kNaN, 7.5});
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(r.mean, 7.5);
  EXPECT_TRUE(std::isnan(r.lo));
  EXPECT_TRUE(std::isnan(r.hi));
  EXPECT_TRUE(std::isnan(r.sd));
  EXPECT_TRUE(std::isnan(r.half()));
}

TEST(StatsMeanInterval, NoValues) {
  for (const std::vector<double>& x : {std::vector<double>{}, std::vector<double>{kNaN, kNaN}}) {
    const Interval r = mean_interval(x);
    EXPECT_EQ(r.n, 0);
    EXPECT_TRUE(std::isnan(r.mean));
    EXPECT_TRUE(std::isnan(r.lo));
    EXPECT_TRUE(std::isnan(r.hi));
    EXPECT_TRUE(std::isnan(r.sd));
  }
}

TEST(StatsMeanInterval, AllEqual) {
  // 0.1 + 0.1 + 0.1 is not 0.3 in doubles; the mean must still be exactly 0.1 and sd exactly 0.
  const Interval r = mean_interval({0.1, 0.1, 0.1});
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.mean, 0.1);
  EXPECT_EQ(r.sd, 0.0);
  EXPECT_EQ(r.lo, 0.1);
  EXPECT_EQ(r.hi, 0.1);
  EXPECT_EQ(r.half(), 0.0);
}

TEST(StatsMeanInterval, BadLevelThrows) {
  EXPECT_THROW(mean_interval({1, 2}, 0.0), ConfigError);
  EXPECT_THROW(mean_interval({1, 2}, 1.0), ConfigError);
  EXPECT_THROW(mean_interval({1, 2}, 95.0), ConfigError);
  EXPECT_THROW(mean_interval({1, 2}, kNaN), ConfigError);
}

TEST(StatsInterval, Half) {
  Interval r;
  EXPECT_TRUE(std::isnan(r.half()));
  r.lo = 1.0;
  r.hi = 4.0;
  EXPECT_DOUBLE_EQ(r.half(), 1.5);
}

// --- paired_test ----------------------------------------------------------------------------

TEST(StatsPairedTest, ThreePairs) {
  // d = a - b = {1, 2, 3}: mean 2, sd 1, t = 2 / (1 / sqrt(3)) = 2 sqrt(3) = 3.4641016151377546.
  // df 2: p = 1 - t / sqrt(2 + t^2) = 1 - 2 sqrt(3) / sqrt(14) = 0.07417990022744854.
  // t_{0.975,2} = 0.95 / sqrt(2 * 0.975 * 0.025) = 4.302652729749464, half = that / sqrt(3)
  // = 2.484137711750331.
  // Sign flips, sum s.d: +++ 6, ++- 0, +-+ 2, -++ 4, +-- -4, -+- -2, --+ 0, --- -6; |sum| >= 6
  // for +++ and --- only: p = 2 / 8 = 0.25.
  const PairedTest r = paired_test({2, 4, 6}, {1, 2, 3});
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.diff.n, 3);
  EXPECT_DOUBLE_EQ(r.diff.mean, 2.0);
  EXPECT_NEAR(r.diff.sd, 1.0, kTol);
  EXPECT_NEAR(r.t, 3.4641016151377546, kTol);
  EXPECT_NEAR(r.p_t, 0.07417990022744854, kTol);
  EXPECT_NEAR(r.diff.half(), 2.484137711750331, kTol);
  EXPECT_NEAR(r.diff.lo, -0.484137711750331, kTol);
  EXPECT_NEAR(r.diff.hi, 4.484137711750331, kTol);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.draws, 0);
  EXPECT_DOUBLE_EQ(r.p_perm, 0.25);
}

TEST(StatsPairedTest, DropsPairsWithNaN) {
  // Pairs 2 (a NaN) and 4 (b NaN) go; the rest is d = {1, 2, 3} as above.
  const PairedTest r = paired_test({2, kNaN, 4, 9, 6}, {1, 1, 2, kNaN, 3});
  EXPECT_EQ(r.n, 3);
  EXPECT_DOUBLE_EQ(r.diff.mean, 2.0);
  EXPECT_NEAR(r.p_t, 0.07417990022744854, kTol);
  EXPECT_DOUBLE_EQ(r.p_perm, 0.25);
}

TEST(StatsPairedTest, TiesWithinTolerance) {
  // d = {0.1, 0.2, 0.3, -0.3}: sum 0.3 in exact arithmetic. The last two contribute 0 (2 sign
  // patterns of 4) or +-0.6 (2); the first two +-0.3 or +-0.1. |sum| >= 0.3: with 0 from the last
  // two only when the first two give +-0.3 (2 x 2 = 4 patterns); with +-0.6 always (2 x 4 = 8).
  // p = 12 / 16 = 0.75. In doubles 0.1 + 0.2 != 0.3, and without the tie tolerance p is 0.5.
  const PairedTest r = paired_test({0.1, 0.2, 0.3, -0.3}, {0, 0, 0, 0});
  EXPECT_TRUE(r.exact);
  EXPECT_DOUBLE_EQ(r.p_perm, 0.75);
}

TEST(StatsPairedTest, OnePair) {
  // n = 1: both sign patterns give |d| = observed, p_perm = 1; no t.
  const PairedTest r = paired_test({5}, {3});
  EXPECT_EQ(r.n, 1);
  EXPECT_DOUBLE_EQ(r.diff.mean, 2.0);
  EXPECT_TRUE(std::isnan(r.diff.lo));
  EXPECT_TRUE(std::isnan(r.t));
  EXPECT_TRUE(std::isnan(r.p_t));
  EXPECT_DOUBLE_EQ(r.p_perm, 1.0);
}

TEST(StatsPairedTest, NoPairs) {
  const PairedTest r = paired_test({kNaN, 1}, {2, kNaN});
  EXPECT_EQ(r.n, 0);
  EXPECT_TRUE(std::isnan(r.diff.mean));
  EXPECT_TRUE(std::isnan(r.t));
  EXPECT_TRUE(std::isnan(r.p_t));
  EXPECT_TRUE(std::isnan(r.p_perm));
}

TEST(StatsPairedTest, AllDifferencesZero) {
  // Every pattern ties with the observed 0: p_perm = 1; t = 0, p_t = 1; interval [0, 0].
  const PairedTest r = paired_test({1, 2, 3}, {1, 2, 3});
  EXPECT_EQ(r.t, 0.0);
  EXPECT_EQ(r.p_t, 1.0);
  EXPECT_EQ(r.p_perm, 1.0);
  EXPECT_EQ(r.diff.lo, 0.0);
  EXPECT_EQ(r.diff.hi, 0.0);
}

TEST(StatsPairedTest, ConstantNonzeroDifference) {
  // d = {1, 1, 1}: sd 0, mean 1 -> t = +inf, p_t = 0, interval [1, 1]. Sign flips: |sum| = 3
  // only for +++ and ---: p_perm = 2 / 8.
  const PairedTest r = paired_test({2, 3, 4}, {1, 2, 3});
  EXPECT_EQ(r.t, kInf);
  EXPECT_EQ(r.p_t, 0.0);
  EXPECT_EQ(r.diff.lo, 1.0);
  EXPECT_EQ(r.diff.hi, 1.0);
  EXPECT_DOUBLE_EQ(r.p_perm, 0.25);
  const PairedTest neg = paired_test({1, 2, 3}, {2, 3, 4});
  EXPECT_EQ(neg.t, -kInf);
  EXPECT_EQ(neg.p_t, 0.0);
}

TEST(StatsPairedTest, MismatchedSizesThrow) {
  EXPECT_THROW(paired_test({1, 2, 3}, {1, 2}), ConfigError);
  EXPECT_THROW(paired_test({}, {1}), ConfigError);
}

TEST(StatsPairedTest, BadArgumentsThrow) {
  EXPECT_THROW(paired_test({1, 2}, {0, 0}, 1.5), ConfigError);
  // 25 pairs need random patterns: draws must be positive. 3 pairs are exact: draws unused.
  std::vector<double> zeros(kDiff25.size(), 0.0);
  EXPECT_THROW(paired_test(kDiff25, zeros, 0.95, 0), ConfigError);
  EXPECT_NO_THROW(paired_test({1, 2, 3}, {0, 0, 0}, 0.95, 0));
}

TEST(StatsPairedTest, ExactUpToTwentyPairs) {
  // The first 20 of kDiff25 (sum 139): exact sign-flip p = 352936 / 2^20 = 0.33658599853515625,
  // counted over the integers as for kDiff25.
  const std::vector<double> d(kDiff25.begin(), kDiff25.begin() + 20);
  const PairedTest r = paired_test(d, std::vector<double>(d.size(), 0.0));
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.draws, 0);
  EXPECT_DOUBLE_EQ(r.p_perm, 0.33658599853515625);
}

TEST(StatsPairedTest, MonteCarloBeyondTwenty) {
  // a[i] = i + d[i], b[i] = i (integers, so a - b is exactly d).
  std::vector<double> a, b;
  for (size_t i = 0; i < kDiff25.size(); ++i) {
    a.push_back(static_cast<double>(i) + kDiff25[i]);
    b.push_back(static_cast<double>(i));
  }
  const PairedTest r = paired_test(a, b);  // defaults: 20000 draws, seed 0
  EXPECT_EQ(r.n, 25);
  EXPECT_FALSE(r.exact);
  EXPECT_EQ(r.draws, 20000);
  EXPECT_NEAR(r.diff.mean, 7.64, kTol);
  EXPECT_NEAR(r.t, 1.2326386464725912, 1e-10);
  EXPECT_NEAR(r.p_t, 0.22964941159704703, 1e-10);
  // The Monte Carlo p is close to the paired-t p and to the exact sign-flip p (its standard error
  // with 20000 draws is about 0.003).
  EXPECT_NEAR(r.p_perm, r.p_t, 0.02);
  EXPECT_NEAR(r.p_perm, 0.2296571135520935, 0.012);
  // p = (1 + count) / (1 + draws): (1 + draws) p is a whole number >= 1.
  const double count1 = r.p_perm * 20001.0;
  EXPECT_NEAR(count1, std::round(count1), 1e-6);
  EXPECT_GE(count1, 1.0);
  // Reproducible for a seed; another seed gives another, equally close, estimate.
  const PairedTest again = paired_test(a, b, 0.95, 20000, 0);
  EXPECT_EQ(again.p_perm, r.p_perm);
  const PairedTest other = paired_test(a, b, 0.95, 20000, 1);
  EXPECT_NE(other.p_perm, r.p_perm);
  EXPECT_NEAR(other.p_perm, 0.2296571135520935, 0.012);
}

// --- welch_test -----------------------------------------------------------------------------

TEST(StatsWelchTest, EqualVariances) {
  // a = {1, 2, 3}, b = {4, 5, 6}: diff -3, variances 1 and 1, se^2 = 1/3 + 1/3 = 2/3.
  // df = (2/3)^2 / ((1/3)^2 / 2 + (1/3)^2 / 2) = (4/9) / (1/9) = 4. t = -3 / sqrt(2/3)
  // = -3.6742346141747673; df 4 cdf P(T > x) = 1/2 - (3/8) u (1 - x^2 / (12 (1 + x^2 / 4))) with
  // u = x / sqrt(1 + x^2 / 4) gives p = 2 * 0.010655820564378 = 0.021311641128756726.
  // half = t_{0.975,4} sqrt(2/3) = 2.7764451051977943 * 0.816496580927726 = 2.2669579355275197.
  const WelchTest r = welch_test({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(r.na, 3);
  EXPECT_EQ(r.nb, 3);
  EXPECT_DOUBLE_EQ(r.diff, -3.0);
  EXPECT_NEAR(r.df, 4.0, kTol);
  EXPECT_NEAR(r.t, -3.6742346141747673, kTol);
  EXPECT_NEAR(r.p, 0.021311641128756726, kTol);
  EXPECT_NEAR(r.lo, -5.2669579355275197, kTol);
  EXPECT_NEAR(r.hi, -0.7330420644724803, kTol);
}

TEST(StatsWelchTest, UnequalSizesAndVariances) {
  // a = {1, 2, 3} (mean 2, var 1), b = {4, 5, 6, 7, 8} (mean 6, var 10/4 = 2.5): diff -4,
  // se^2 = 1/3 + 2.5/5 = 5/6. df = (5/6)^2 / ((1/3)^2 / 2 + (1/2)^2 / 4) = (25/36) / (17/144)
  // = 100/17 = 5.882352941176471. t = -4 / sqrt(5/6) = -4.381780460041329.
  // With df 100/17 (incomplete-beta check): p = 0.004882634939494183,
  // t_{0.975,100/17} sqrt(5/6) = 2.2445886845512614.
  const WelchTest r = welch_test({1, 2, 3}, {4, 5, 6, 7, 8});
  EXPECT_DOUBLE_EQ(r.diff, -4.0);
  EXPECT_NEAR(r.df, 100.0 / 17.0, kTol);
  EXPECT_NEAR(r.t, -4.381780460041329, kTol);
  EXPECT_NEAR(r.p, 0.004882634939494183, kTol);
  EXPECT_NEAR(r.lo, -6.2445886845512614, 1e-10);
  EXPECT_NEAR(r.hi, -1.7554113154487386, 1e-10);
}

TEST(StatsWelchTest, DropsNaNAndSmallSides) {
  const WelchTest r = welch_test({kNaN, 1, 2, 3}, {4, kNaN, 5, 6});
  EXPECT_EQ(r.na, 3);
  EXPECT_EQ(r.nb, 3);
  EXPECT_NEAR(r.p, 0.021311641128756726, kTol);
  // One value on a side: diff only.
  const WelchTest one = welch_test({1}, {2, 3});
  EXPECT_DOUBLE_EQ(one.diff, -1.5);
  EXPECT_TRUE(std::isnan(one.lo));
  EXPECT_TRUE(std::isnan(one.df));
  EXPECT_TRUE(std::isnan(one.p));
  // No value on a side: nothing.
  const WelchTest none = welch_test({kNaN}, {2, 3});
  EXPECT_EQ(none.na, 0);
  EXPECT_TRUE(std::isnan(none.diff));
}

TEST(StatsWelchTest, ZeroVariances) {
  const WelchTest r = welch_test({1, 1}, {2, 2, 2});
  EXPECT_DOUBLE_EQ(r.diff, -1.0);
  EXPECT_EQ(r.lo, -1.0);
  EXPECT_EQ(r.hi, -1.0);
  EXPECT_EQ(r.t, -kInf);
  EXPECT_EQ(r.p, 0.0);
  EXPECT_TRUE(std::isnan(r.df));
  const WelchTest same = welch_test({2, 2}, {2, 2});
  EXPECT_EQ(same.t, 0.0);
  EXPECT_EQ(same.p, 1.0);
}

// --- holm -----------------------------------------------------------------------------------

TEST(StatsHolm, Example) {
  // Sorted 0.01, 0.03, 0.04 with m = 3: 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(1 * 0.04, 0.06)
  // = 0.06; back in the given order {0.03, 0.06, 0.06}.
  const std::vector<double> r = holm({0.01, 0.04, 0.03});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_DOUBLE_EQ(r[0], 0.03);
  EXPECT_DOUBLE_EQ(r[1], 0.06);
  EXPECT_DOUBLE_EQ(r[2], 0.06);
}

TEST(StatsHolm, NaNNotCounted) {
  // m = 3, not 4: same as above with NaN kept in place.
  const std::vector<double> r = holm({0.01, kNaN, 0.04, 0.03});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_DOUBLE_EQ(r[0], 0.03);
  EXPECT_TRUE(std::isnan(r[1]));
  EXPECT_DOUBLE_EQ(r[2], 0.06);
  EXPECT_DOUBLE_EQ(r[3], 0.06);
}

TEST(StatsHolm, CappedAndEdgeCases) {
  // {0.5, 0.6}: 2 * 0.5 = 1, max(0.6, 1) = 1.
  const std::vector<double> r = holm({0.6, 0.5});
  EXPECT_DOUBLE_EQ(r[0], 1.0);
  EXPECT_DOUBLE_EQ(r[1], 1.0);
  EXPECT_TRUE(holm({}).empty());
  EXPECT_DOUBLE_EQ(holm({0.2})[0], 0.2);
  EXPECT_THROW(holm({0.1, 1.5}), ConfigError);
  EXPECT_THROW(holm({-0.1}), ConfigError);
}

// --- verdict --------------------------------------------------------------------------------

TEST(StatsVerdict, Below) {
  EXPECT_EQ(verdict(-2, -1, 0, true), Verdict::kSupported);
  EXPECT_EQ(verdict(1, 2, 0, true), Verdict::kContradicted);
  EXPECT_EQ(verdict(-1, 1, 0, true), Verdict::kInconclusive);
  EXPECT_EQ(verdict(-1, 0, 0, true), Verdict::kInconclusive);  // touching the threshold
  EXPECT_EQ(verdict(0, 1, 0, true), Verdict::kInconclusive);
  EXPECT_EQ(verdict(0.5, 0.5, 1, true), Verdict::kSupported);  // a zero-width interval
}

TEST(StatsVerdict, Above) {
  EXPECT_EQ(verdict(1, 2, 0, false), Verdict::kSupported);
  EXPECT_EQ(verdict(-2, -1, 0, false), Verdict::kContradicted);
  EXPECT_EQ(verdict(-1, 1, 0, false), Verdict::kInconclusive);
  EXPECT_EQ(verdict(0, 1, 0, false), Verdict::kInconclusive);
}

TEST(StatsVerdict, NaNIsInconclusive) {
  for (bool below : {true, false}) {
    EXPECT_EQ(verdict(kNaN, -1, 0, below), Verdict::kInconclusive);
    EXPECT_EQ(verdict(1, kNaN, 0, below), Verdict::kInconclusive);
    EXPECT_EQ(verdict(kNaN, kNaN, 0, below), Verdict::kInconclusive);
    EXPECT_EQ(verdict(1, 2, kNaN, below), Verdict::kInconclusive);
  }
  // The interval of a single value is NaN: inconclusive.
  const Interval one = mean_interval({3});
  EXPECT_EQ(verdict(one.lo, one.hi, 0, false), Verdict::kInconclusive);
}

TEST(StatsVerdict, Names) {
  EXPECT_STREQ(verdict_name(Verdict::kSupported), "supported");
  EXPECT_STREQ(verdict_name(Verdict::kContradicted), "contradicted");
  EXPECT_STREQ(verdict_name(Verdict::kInconclusive), "inconclusive");
}

}  // namespace
}  // namespace runner::sweep::stats
