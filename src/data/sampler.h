// Pure data partitioning: rank shards, the epoch-seeded distributed sampler, forget/retain sets
// and the random other-forget partners of Alignment Calibration (arXiv 2406.03603). No I/O, no torch, no MPI: rank and world are
// plain ints, so every rank computes the same answer on its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace runner::data {

// Half-open range [begin, end) of sample indices.
struct ShardRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// Contiguous shard of [0, n) for `rank` of `world`. Shards of all ranks are disjoint, cover
// [0, n) in rank order, and their sizes differ by at most one: the first n % world ranks get one
// more. Ranks beyond n (n < world) get an empty range at n.
// Throws ConfigError on world < 1, rank outside [0, world) or n < 0.
ShardRange shard_range(int64_t n, int rank, int world);

// What a distributed sampler does with the n % world samples that do not split evenly.
enum class TailPolicy {
  kDrop,  // each rank takes n / world; the permutation's last n % world are left out this epoch
  kPad,   // each rank takes ceil(n / world); the permutation is extended by its own first elements
};

// Epoch-seeded distributed sampler over n samples.
//
// Every epoch the sampler draws a permutation of [0, n) from (seed, epoch) alone, so every rank
// computes the same one without communicating. The generator is pinned so that a run can be
// reproduced on any machine and standard library: std::mt19937_64 seeded through std::seed_seq
// (both specified bit-exactly by the standard), a rejection-sampled bounded draw and a
// Fisher-Yates shuffle written here (std::shuffle and std::uniform_int_distribution are
// implementation-defined). Shuffle off gives the identity order.
//
// The permutation is cut or padded to per_rank() * world positions (TailPolicy), and rank r
// takes positions r, r + world, r + 2 world, ...: strided rather than contiguous, so that the
// global batch made of every rank's batch b is positions [b * B * world, (b + 1) * B * world) of
// the permutation, the same rows a single process with batch B * world would see.
//
// Batches of `batch_size` per rank; a last partial batch is dropped so that every rank runs the
// same number of steps (a rank that runs one step fewer would hang the others in a collective).
class DistributedSampler {
 public:
  // Throws ConfigError on n < 0, world < 1, rank outside [0, world) or batch_size < 1.
  DistributedSampler(int64_t n, int rank, int world, int64_t batch_size, uint64_t seed,
                     bool shuffle = true, TailPolicy tail = TailPolicy::kDrop);

  int64_t size() const { return n_; }
  int rank() const { return rank_; }
  int world() const { return world_; }
  int64_t batch_size() const { return batch_size_; }
  // Samples this rank takes per epoch, the same on every rank: n / world (kDrop) or
  // ceil(n / world) (kPad).
  int64_t per_rank() const { return per_rank_; }
  // Full batches per rank and epoch: per_rank() / batch_size.
  int64_t num_batches() const { return per_rank_ / batch_size_; }

  // The permutation of [0, n) for `epoch` that every rank shares (identity with shuffle off).
  // Throws ConfigError on epoch < 0.
  std::vector<int64_t> permutation(int64_t epoch) const;
  // This rank's per_rank() sample indices for `epoch`, in the order it visits them.
  // Throws ConfigError on epoch < 0.
  std::vector<int64_t> epoch_indices(int64_t epoch) const;
  // The batch_size indices of batch b of this rank in `epoch`: epoch_indices(epoch)[b * B, (b+1) * B).
  // Keeps the last epoch's indices, so a loop over b costs one permutation per epoch, not one per
  // batch; safe to call from several threads. Throws ConfigError on epoch < 0 or b outside
  // [0, num_batches()).
  std::vector<int64_t> batch(int64_t epoch, int64_t b) const;

 private:
  struct EpochCache {
    int64_t epoch;
    std::vector<int64_t> indices;
  };

  int64_t n_;
  int rank_;
  int world_;
  int64_t batch_size_;
  uint64_t seed_;
  bool shuffle_;
  TailPolicy tail_;
  int64_t per_rank_;
  // Immutable once published; swapped with std::atomic_load/atomic_store so const calls from
  // several threads stay safe and copies of the sampler may share it.
  mutable std::shared_ptr<const EpochCache> cache_;
};

// Sample indices of the forget and the retain set, each ascending.
struct ForgetRetain {
  std::vector<int64_t> forget, retain;
};

// Splits samples by concept: sample i is forget iff concepts[i] is in `forget`; every other
// sample, including those with concept -1 (none), is retain. `concepts` is the per-sample
// concept index [N] int32 in [-1, num_concepts); `forget` one or several concept indices
// (duplicates allowed). Throws ConfigError on an empty `forget`, a forget concept outside
// [0, num_concepts) or num_concepts < 0; IoError on a sample concept outside [-1, num_concepts)
// (the dataset's concept column does not match its concept names).
ForgetRetain split_forget_retain(const std::vector<int32_t>& concepts,
                                 const std::vector<int32_t>& forget, int32_t num_concepts);

// The same with rows forgotten whatever their concept: sample i is also forget when
// also_forget[i] != 0 (caption keywords, unlearn.forget_captions). `forget` may then be empty as
// long as some row is flagged. also_forget has one entry per sample.
ForgetRetain split_forget_retain(const std::vector<int32_t>& concepts, const std::vector<int32_t>& forget,
                                 int32_t num_concepts, const std::vector<char>& also_forget);

// Whether `caption` contains one of `keywords` as whole words: ASCII letters compared without case,
// a keyword (a word or a phrase, surrounding blanks ignored) must not be preceded or followed by a
// letter, digit or non-ASCII byte. "cat" matches "A cat." and "CAT-like", not "catalog" or "bobcat".
bool caption_matches(const std::string& caption, const std::vector<std::string>& keywords);

class DatasetFile;
// caption_matches for every row of `split` (captions read in pieces, no images): one flag per
// row; empty when no keyword is given.
std::vector<char> caption_match_flags(const DatasetFile& file, const std::string& split,
                                      const std::vector<std::string>& keywords);

// Concept indices of `names` in `concept_names`, in the order first named; duplicates collapse.
// Names match exactly (case-sensitive). Throws ConfigError naming an unknown name, listing the
// known ones and pointing out a match that differs only in case; ConfigError when a requested
// name occurs more than once in `concept_names` (ambiguous).
std::vector<int32_t> resolve_concepts(const std::vector<std::string>& names,
                                      const std::vector<std::string>& concept_names);

// The roots plus every concept whose parent chain reaches one of them, ascending without
// duplicates: forgetting "footwear" forgets "boot" and "sandal" too. `concept_parent` [K] gives
// each concept's parent index, -1 for a root. Throws ConfigError on a root outside [0, K), a
// parent outside [-1, K), or a cycle anywhere in `concept_parent` (the message lists it).
std::vector<int32_t> with_descendants(const std::vector<int32_t>& roots,
                                      const std::vector<int32_t>& concept_parent);

// The forget concepts of a run: resolve_concepts(names), plus their descendants when
// `descendants` and the dataset has a hierarchy. Training and evaluation both use it.
std::vector<int32_t> forget_concept_ids(const std::vector<std::string>& names, bool descendants,
                                        const std::vector<std::string>& concept_names,
                                        const std::vector<int32_t>& concept_parent);

// The names zero-shot prompts use for `concept_names`: the dataset's display names (empty = none,
// else one per concept), then each "concept=display" item of `overrides` (eval.display_names) on
// top. ConfigError for an item without '=' or naming no concept of the dataset.
std::vector<std::string> prompt_names(const std::vector<std::string>& concept_names,
                                      const std::vector<std::string>& display_names,
                                      const std::vector<std::string>& overrides);

// A seeded sample of min(k, |pool|) elements of `pool` without replacement, ascending; k <= 0
// keeps the whole pool. Drawn with the generator of DistributedSampler (std::mt19937_64 through
// std::seed_seq, own bounded draw): the same rows with every standard library and machine.
std::vector<int64_t> seeded_sample(std::vector<int64_t> pool, int64_t k, uint64_t seed);

// The validation rows of a train split whose row i has concept concepts[i] (-1 = none): from each
// concept's rows (those with -1 as one more group), round(fraction x count) drawn without
// replacement from a stream of (seed, concept) alone, with the generator of DistributedSampler;
// ascending. Stratified, so every concept keeps its share in both parts; the same rows on every
// machine. fraction 0 gives none. Throws ConfigError unless 0 <= fraction < 1.
std::vector<int64_t> holdout_rows(const std::vector<int32_t>& concepts, double fraction, uint64_t seed);

// Partner positions for AC's negative calibration (arXiv 2406.03603): for forget sample i (a position in
// [0, m) of the forget list) the position of a random *other* forget sample, whose caption stands
// in for i's own. The result is a uniformly drawn derangement of [0, m): never i itself, and
// every forget sample is some sample's partner exactly once. Drawn from `seed` alone with the
// generator of DistributedSampler (std::mt19937_64, own bounded draw), so identical on every
// machine, thread count and rank. m = 0 gives an empty result.
// Throws ConfigError on m = 1 (no other forget sample exists) or m < 0.
std::vector<int64_t> forget_partners(int64_t m, uint64_t seed);

// As above, but when `concepts_of_forget` [m] (the concept of each forget sample) holds more than
// one concept, partners are restricted to forget samples of a *different* concept, so that the
// stand-in caption never names the same concept. Each sample then draws its partner uniformly
// from those of other concepts, independently: the result is no longer a permutation, since none
// exists when one concept holds more than half of the forget samples. With a single concept
// present this is exactly forget_partners(m, seed). AC pairs any other forget sample, which stays
// the default (the overload without concepts).
// Throws ConfigError as above, and when concepts_of_forget.size() != m.
std::vector<int64_t> forget_partners(int64_t m, uint64_t seed,
                                     const std::vector<int32_t>& concepts_of_forget);

// For each of m forget samples, an index into a retain set of `retain_count` samples, drawn
// uniformly and independently (with replacement) from its own seeded stream; the same on every
// machine and rank. ConfigError when m > 0 and the retain set is empty.
std::vector<int64_t> retain_partners(int64_t m, int64_t retain_count, uint64_t seed);

}  // namespace runner::data
