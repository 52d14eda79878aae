// "Did you mean": the closest of a list of names to a mistyped one, by edit distance. No torch.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace runner::core {

// Levenshtein distance (insertions, deletions, substitutions, each 1).
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'X'?" for the nearest name within max(2, |typo| / 3) edits, else "".
inline std::string did_you_mean(const std::string& typo, const std::vector<std::string>& names) {
  const size_t limit = std::max<size_t>(2, typo.size() / 3);
  const std::string* best = nullptr;
  size_t best_d = limit + 1;
  for (const auto& n : names) {
    const size_t d = edit_distance(typo, n);
    if (d < best_d) best_d = d, best = &n;
  }
  return best == nullptr ? std::string() : "; did you mean '" + *best + "'?";
}

}  // namespace runner::core
