// Rank shards, the epoch-seeded distributed sampler, forget/retain sets and forget partners.
#include "data/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <atomic>
#include <cctype>
#include <numeric>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "data/dataset.h"

namespace runner::data {
namespace {

// Separates the random streams of the sampler and of the partners, so that the same user seed
// does not give correlated draws in the two.
constexpr uint32_t kPermutationStream = 0x5e4d9a11u;
constexpr uint32_t kPartnerStream = 0x7a2b3c01u;
constexpr uint32_t kSampleStream = 0x3c6ef372u;
constexpr uint32_t kRetainPartnerStream = 0x1b873593u;
constexpr uint32_t kHoldoutStream = 0x5bd1e995u;
// Known concept names listed in full up to this many; a 1000-class dataset would drown the error.
constexpr size_t kMaxNamesListed = 40;

// std::seed_seq and std::mt19937_64 are specified bit-exactly by the standard, so this engine
// gives the same numbers with every standard library.
std::mt19937_64 make_engine(uint32_t stream, uint64_t seed, uint64_t sub) {
  std::seed_seq seq{stream,
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(sub), static_cast<uint32_t>(sub >> 32)};
  return std::mt19937_64(seq);
}

// Uniform in [0, bound), bound >= 1. Rejects the 2^64 mod bound lowest raw values, so the
// remaining range is a multiple of bound and the modulo is unbiased.
uint64_t uniform_below(std::mt19937_64& gen, uint64_t bound) {
  const uint64_t threshold = (uint64_t{0} - bound) % bound;
  for (;;) {
    const uint64_t x = gen();
    if (x >= threshold) return x % bound;
  }
}

// Fisher-Yates from the back: every permutation equally likely given a uniform bounded draw.
void shuffle_in_place(std::vector<int64_t>& v, std::mt19937_64& gen) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(gen, i));
    std::swap(v[i - 1], v[j]);
  }
}

std::vector<int64_t> iota_vector(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min(names.size(), kMaxNamesListed);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > shown) out += fmt::format(", ... ({} more)", names.size() - shown);
  return out;
}

void check_partner_count(int64_t m) {
  RUNNER_CHECK(m >= 0, ConfigError, fmt::format("forget_partners: m = {} is negative", m));
  RUNNER_CHECK(m != 1, ConfigError,
               "forget_partners: only one forget sample, so no *other* forget sample exists to "
               "take its caption from; forget more samples (or concepts), or turn negative "
               "calibration off");
}

}  // namespace

ShardRange shard_range(int64_t n, int rank, int world) {
  RUNNER_CHECK(world >= 1, ConfigError,
               fmt::format("shard_range: world size {} must be at least 1", world));
  RUNNER_CHECK(rank >= 0 && rank < world, ConfigError,
               fmt::format("shard_range: rank {} is outside [0, {})", rank, world));
  RUNNER_CHECK(n >= 0, ConfigError, fmt::format("shard_range: sample count {} is negative", n));
  const int64_t base = n / world, extra = n % world;
  ShardRange r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

DistributedSampler::DistributedSampler(int64_t n, int rank, int world, int64_t batch_size,
                                       uint64_t seed, bool shuffle, TailPolicy tail)
    : n_(n), rank_(rank), world_(world), batch_size_(batch_size), seed_(seed), shuffle_(shuffle),
      tail_(tail), per_rank_(0) {
  RUNNER_CHECK(n >= 0, ConfigError, fmt::format("sampler: sample count {} is negative", n));
  RUNNER_CHECK(world >= 1, ConfigError,
               fmt::format("sampler: world size {} must be at least 1", world));
  RUNNER_CHECK(rank >= 0 && rank < world, ConfigError,
               fmt::format("sampler: rank {} is outside [0, {})", rank, world));
  RUNNER_CHECK(batch_size >= 1, ConfigError,
               fmt::format("sampler: batch size per rank {} must be at least 1 (hint: the global "
                           "batch must be at least the number of ranks, {})",
                           batch_size, world));
  per_rank_ = tail == TailPolicy::kDrop ? n / world : (n + world - 1) / world;
}

std::vector<int64_t> DistributedSampler::permutation(int64_t epoch) const {
  RUNNER_CHECK(epoch >= 0, ConfigError, fmt::format("sampler: epoch {} is negative", epoch));
  std::vector<int64_t> perm = iota_vector(n_);
  if (shuffle_) {
    auto gen = make_engine(kPermutationStream, seed_, static_cast<uint64_t>(epoch));
    shuffle_in_place(perm, gen);
  }
  return perm;
}

std::vector<int64_t> DistributedSampler::epoch_indices(int64_t epoch) const {
  const std::vector<int64_t> perm = permutation(epoch);
  std::vector<int64_t> out(static_cast<size_t>(per_rank_));
  for (int64_t k = 0; k < per_rank_; ++k) {
    // Below n for kDrop; for kPad the positions past the end wrap to the permutation's start
    // (more than once when n < world).
    const int64_t pos = rank_ + k * world_;
    out[static_cast<size_t>(k)] = perm[static_cast<size_t>(pos % n_)];
  }
  return out;
}

std::vector<int64_t> DistributedSampler::batch(int64_t epoch, int64_t b) const {
  RUNNER_CHECK(b >= 0 && b < num_batches(), ConfigError,
               fmt::format("sampler: batch {} is outside [0, {}) ({} samples per rank, batch size "
                           "{})",
                           b, num_batches(), per_rank_, batch_size_));
  auto cache = std::atomic_load(&cache_);
  if (!cache || cache->epoch != epoch) {
    cache = std::make_shared<const EpochCache>(EpochCache{epoch, epoch_indices(epoch)});
    std::atomic_store(&cache_, cache);
  }
  const auto first = cache->indices.begin() + b * batch_size_;
  return std::vector<int64_t>(first, first + batch_size_);
}

ForgetRetain split_forget_retain(const std::vector<int32_t>& concepts,
                                 const std::vector<int32_t>& forget, int32_t num_concepts) {
  return split_forget_retain(concepts, forget, num_concepts, {});
}

ForgetRetain split_forget_retain(const std::vector<int32_t>& concepts, const std::vector<int32_t>& forget,
                                 int32_t num_concepts, const std::vector<char>& also_forget) {
  RUNNER_CHECK(num_concepts >= 0, ConfigError,
               fmt::format("split_forget_retain: concept count {} is negative", num_concepts));
  RUNNER_CHECK(also_forget.empty() || also_forget.size() == concepts.size(), ConfigError,
               fmt::format("split_forget_retain: {} row flags for {} samples", also_forget.size(), concepts.size()));
  const bool flagged = std::any_of(also_forget.begin(), also_forget.end(), [](char f) { return f != 0; });
  RUNNER_CHECK(!forget.empty() || flagged, ConfigError,
               "split_forget_retain: no forget concept given (hint: set unlearn.forget to one or more concept "
               "names, or unlearn.forget_captions to caption keywords)");
  std::vector<char> is_forget(static_cast<size_t>(num_concepts), 0);
  for (int32_t c : forget) {
    RUNNER_CHECK(c >= 0 && c < num_concepts, ConfigError,
                 fmt::format("split_forget_retain: forget concept {} is outside [0, {})", c,
                             num_concepts));
    is_forget[static_cast<size_t>(c)] = 1;
  }
  ForgetRetain out;
  for (size_t i = 0; i < concepts.size(); ++i) {
    const int32_t c = concepts[i];
    RUNNER_CHECK(c >= -1 && c < num_concepts, IoError,
                 fmt::format("split_forget_retain: sample {} has concept {}, outside [-1, {}) "
                             "(hint: the dataset's concept column does not match its {} concept "
                             "names)",
                             i, c, num_concepts, num_concepts));
    const bool f = (c >= 0 && is_forget[static_cast<size_t>(c)]) || (!also_forget.empty() && also_forget[i] != 0);
    (f ? out.forget : out.retain).push_back(static_cast<int64_t>(i));
  }
  return out;
}

namespace {

bool word_byte(unsigned char ch) { return std::isalnum(ch) != 0 || ch >= 0x80; }

std::string ascii_lower(std::string s) {
  for (char& ch : s) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return s;
}

std::string trim_blanks(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

}  // namespace

bool caption_matches(const std::string& caption, const std::vector<std::string>& keywords) {
  const std::string text = ascii_lower(caption);
  for (const std::string& raw : keywords) {
    const std::string k = ascii_lower(trim_blanks(raw));
    if (k.empty()) continue;
    for (size_t at = text.find(k); at != std::string::npos; at = text.find(k, at + 1)) {
      const bool left = at == 0 || !word_byte(static_cast<unsigned char>(text[at - 1]));
      const size_t end = at + k.size();
      const bool right = end == text.size() || !word_byte(static_cast<unsigned char>(text[end]));
      if (left && right) return true;
    }
  }
  return false;
}

std::vector<char> caption_match_flags(const DatasetFile& file, const std::string& split,
                                      const std::vector<std::string>& keywords) {
  if (keywords.empty()) return {};
  const int64_t n = static_cast<int64_t>(file.concepts(split).size());
  std::vector<char> flags(static_cast<size_t>(n), 0);
  constexpr int64_t kPiece = 65536;
  for (int64_t b = 0; b < n; b += kPiece) {
    std::vector<int64_t> piece(static_cast<size_t>(std::min(n, b + kPiece) - b));
    std::iota(piece.begin(), piece.end(), b);
    const Rows rows = file.read(split, piece, /*with_images=*/false);
    for (size_t i = 0; i < rows.captions.size(); ++i) {
      flags[static_cast<size_t>(b) + i] = caption_matches(rows.captions[i], keywords) ? 1 : 0;
    }
  }
  return flags;
}

std::vector<std::string> prompt_names(const std::vector<std::string>& concept_names,
                                      const std::vector<std::string>& display_names,
                                      const std::vector<std::string>& overrides) {
  std::vector<std::string> out = display_names.empty() ? concept_names : display_names;
  RUNNER_CHECK(out.size() == concept_names.size(), ConfigError,
               fmt::format("{} display names for {} concepts", out.size(), concept_names.size()));
  for (const std::string& item : overrides) {
    const size_t eq = item.find('=');
    RUNNER_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), ConfigError,
                 fmt::format("eval.display_names: '{}' is not concept=display name", item));
    const std::string concept_name = item.substr(0, eq);
    const auto it = std::find(concept_names.begin(), concept_names.end(), concept_name);
    RUNNER_CHECK(it != concept_names.end(), ConfigError,
                 fmt::format("eval.display_names: '{}' names no concept of the dataset; its {} concepts are: {}",
                             concept_name, concept_names.size(), list_names(concept_names)));
    out[static_cast<size_t>(it - concept_names.begin())] = item.substr(eq + 1);
  }
  return out;
}

std::vector<int32_t> resolve_concepts(const std::vector<std::string>& names,
                                      const std::vector<std::string>& concept_names) {
  std::unordered_map<std::string, std::vector<int32_t>> index;
  for (size_t k = 0; k < concept_names.size(); ++k) {
    index[concept_names[k]].push_back(static_cast<int32_t>(k));
  }
  std::vector<int32_t> out;
  std::unordered_set<int32_t> seen;
  for (const std::string& name : names) {
    auto it = index.find(name);
    if (it == index.end()) {
      std::string hint = "names match exactly, case included";
      for (const std::string& known : concept_names) {
        if (lower(known) == lower(name)) {
          hint = fmt::format("names are case-sensitive: did you mean '{}'?", known);
          break;
        }
      }
      throw ConfigError(fmt::format("unknown concept '{}' ({}); the dataset's {} concepts are: {}",
                                    name, hint, concept_names.size(), list_names(concept_names)));
    }
    RUNNER_CHECK(it->second.size() == 1, ConfigError,
                 fmt::format("concept '{}' is ambiguous: it occurs {} times in the dataset's "
                             "concept names (indices {}); rename the duplicates in the dataset",
                             name, it->second.size(), fmt::join(it->second, ", ")));
    if (seen.insert(it->second.front()).second) out.push_back(it->second.front());
  }
  return out;
}

std::vector<int32_t> forget_concept_ids(const std::vector<std::string>& names, bool descendants,
                                        const std::vector<std::string>& concept_names,
                                        const std::vector<int32_t>& concept_parent) {
  std::vector<int32_t> ids = resolve_concepts(names, concept_names);
  if (descendants && !concept_parent.empty()) ids = with_descendants(ids, concept_parent);
  return ids;
}

std::vector<int32_t> with_descendants(const std::vector<int32_t>& roots,
                                      const std::vector<int32_t>& concept_parent) {
  const int64_t k = static_cast<int64_t>(concept_parent.size());
  for (int64_t c = 0; c < k; ++c) {
    const int32_t p = concept_parent[static_cast<size_t>(c)];
    RUNNER_CHECK(p >= -1 && p < k, ConfigError,
                 fmt::format("with_descendants: concept {} has parent {}, outside [-1, {})", c, p,
                             k));
  }
  std::vector<char> selected(static_cast<size_t>(k), 0);
  for (int32_t r : roots) {
    RUNNER_CHECK(r >= 0 && r < k, ConfigError,
                 fmt::format("with_descendants: concept {} is outside [0, {})", r, k));
    selected[static_cast<size_t>(r)] = 1;
  }
  // Each concept is walked once: the chain up to the first concept already settled (or the top)
  // is settled from its top down, so the whole pass is linear in K. A chain that comes back to
  // itself is a cycle, wherever it lies, even away from the requested roots.
  enum : char { kUnseen, kOnChain, kSettled };
  std::vector<char> state(static_cast<size_t>(k), kUnseen);
  std::vector<int32_t> chain;
  for (int32_t c = 0; c < k; ++c) {
    chain.clear();
    int32_t cur = c;
    while (cur != -1 && state[static_cast<size_t>(cur)] == kUnseen) {
      state[static_cast<size_t>(cur)] = kOnChain;
      chain.push_back(cur);
      cur = concept_parent[static_cast<size_t>(cur)];
    }
    if (cur != -1 && state[static_cast<size_t>(cur)] == kOnChain) {
      std::string cycle = std::to_string(cur);
      for (int32_t x = concept_parent[static_cast<size_t>(cur)]; x != cur;
           x = concept_parent[static_cast<size_t>(x)]) {
        cycle += " -> " + std::to_string(x);
      }
      cycle += " -> " + std::to_string(cur);
      throw ConfigError(fmt::format(
          "with_descendants: the concept hierarchy has a cycle ({}); every parent chain must end "
          "at a root (parent -1): fix the dataset's concept_parent",
          cycle));
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const int32_t p = concept_parent[static_cast<size_t>(*it)];
      if (p != -1 && selected[static_cast<size_t>(p)]) selected[static_cast<size_t>(*it)] = 1;
      state[static_cast<size_t>(*it)] = kSettled;
    }
  }
  std::vector<int32_t> out;
  for (int32_t c = 0; c < k; ++c) {
    if (selected[static_cast<size_t>(c)]) out.push_back(c);
  }
  return out;
}

namespace {

// k of pool's elements without replacement, ascending: a partial Fisher-Yates (position i takes
// a uniform draw from positions [i, n)) from `gen`. k >= n keeps the whole pool.
std::vector<int64_t> sample_sorted(std::vector<int64_t> pool, uint64_t k, std::mt19937_64& gen) {
  const auto n = static_cast<uint64_t>(pool.size());
  if (n > k) {
    for (uint64_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + uniform_below(gen, n - i)]);
    pool.resize(static_cast<size_t>(k));
  }
  std::sort(pool.begin(), pool.end());
  return pool;
}

}  // namespace

std::vector<int64_t> seeded_sample(std::vector<int64_t> pool, int64_t k, uint64_t seed) {
  if (k <= 0) {
    std::sort(pool.begin(), pool.end());
    return pool;
  }
  auto gen = make_engine(kSampleStream, seed, 0);
  return sample_sorted(std::move(pool), static_cast<uint64_t>(k), gen);
}

std::vector<int64_t> holdout_rows(const std::vector<int32_t>& concepts, double fraction, uint64_t seed) {
  RUNNER_CHECK(fraction >= 0.0 && fraction < 1.0, ConfigError,
               fmt::format("data.val_fraction: {} must be in [0, 1)", fraction));
  std::map<int32_t, std::vector<int64_t>> groups;  // concept (-1 = none) -> its rows, ascending
  for (size_t i = 0; i < concepts.size(); ++i) groups[concepts[i]].push_back(static_cast<int64_t>(i));
  std::vector<int64_t> out;
  for (auto& [concept_id, rows] : groups) {
    const auto k = static_cast<int64_t>(std::floor(fraction * static_cast<double>(rows.size()) + 0.5));
    if (k <= 0) continue;
    // From the concept's own stream: adding rows of one concept does not move the held-out rows
    // of another.
    auto gen = make_engine(kHoldoutStream, seed, static_cast<uint64_t>(static_cast<int64_t>(concept_id) + 1));
    const std::vector<int64_t> held = sample_sorted(rows, static_cast<uint64_t>(k), gen);
    out.insert(out.end(), held.begin(), held.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> forget_partners(int64_t m, uint64_t seed) {
  check_partner_count(m);
  std::vector<int64_t> p = iota_vector(m);
  if (m == 0) return p;
  // Rejection: a uniform permutation is a derangement with probability about 1/e, so this takes
  // e shuffles on average, and the accepted one is uniform among derangements.
  auto gen = make_engine(kPartnerStream, seed, static_cast<uint64_t>(m));
  for (;;) {
    std::iota(p.begin(), p.end(), int64_t{0});
    shuffle_in_place(p, gen);
    bool fixed_point = false;
    for (int64_t i = 0; i < m && !fixed_point; ++i) fixed_point = p[static_cast<size_t>(i)] == i;
    if (!fixed_point) return p;
  }
}

std::vector<int64_t> forget_partners(int64_t m, uint64_t seed,
                                     const std::vector<int32_t>& concepts_of_forget) {
  check_partner_count(m);
  RUNNER_CHECK(static_cast<int64_t>(concepts_of_forget.size()) == m, ConfigError,
               fmt::format("forget_partners: {} concepts given for {} forget samples",
                           concepts_of_forget.size(), m));
  if (m == 0) return {};
  // Forget positions ordered by concept: the samples of one concept form one run
  // [start, start + count), so "the j-th sample of another concept" is an index arithmetic.
  std::vector<int64_t> by_concept = iota_vector(m);
  std::stable_sort(by_concept.begin(), by_concept.end(), [&](int64_t a, int64_t b) {
    return concepts_of_forget[static_cast<size_t>(a)] < concepts_of_forget[static_cast<size_t>(b)];
  });
  std::unordered_map<int32_t, std::pair<int64_t, int64_t>> run;  // concept -> (start, count)
  for (int64_t j = 0; j < m; ++j) {
    auto& r = run.try_emplace(concepts_of_forget[static_cast<size_t>(by_concept[static_cast<size_t>(j)])],
                              j, 0).first->second;
    ++r.second;
  }
  if (run.size() == 1) return forget_partners(m, seed);
  auto gen = make_engine(kPartnerStream, seed, static_cast<uint64_t>(m));
  std::vector<int64_t> p(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    const auto [start, count] = run.at(concepts_of_forget[static_cast<size_t>(i)]);
    const int64_t j = static_cast<int64_t>(uniform_below(gen, static_cast<uint64_t>(m - count)));
    p[static_cast<size_t>(i)] = by_concept[static_cast<size_t>(j < start ? j : j + count)];
  }
  return p;
}

std::vector<int64_t> retain_partners(int64_t m, int64_t retain_count, uint64_t seed) {
  RUNNER_CHECK(m >= 0, ConfigError, fmt::format("retain_partners: m = {} is negative", m));
  if (m == 0) return {};
  RUNNER_CHECK(retain_count > 0, ConfigError,
               "retain_partners: the retain set is empty, so no retain caption can stand in for a forget caption");
  auto gen = make_engine(kRetainPartnerStream, seed, static_cast<uint64_t>(m));
  std::vector<int64_t> p(static_cast<size_t>(m));
  for (auto& v : p) v = static_cast<int64_t>(uniform_below(gen, static_cast<uint64_t>(retain_count)));
  return p;
}

}  // namespace runner::data
