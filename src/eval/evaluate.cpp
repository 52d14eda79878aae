// The evaluation of a model (evaluate.h): distributed encoding in fixed chunks, then one function
// per stage (the evaluated rows; zero-shot, pair scores and hierarchy per model; retrieval; k-NN;
// the membership audit; the original and CKA; metrics; side files), called in order by evaluate.
#include "eval/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "eval/metrics.h"
#include "eval/samples.h"
#include "geometry/lorentz.h"
#include "geometry/pair.h"
#include "models/pretrained.h"

namespace runner::eval {

namespace fs = std::filesystem;

namespace {

// What the encoders give for a set of rows, identical on every rank.
struct Encoded {
  at::Tensor feat;                    // [n, W] image encoder features (CLS), for k-NN and CKA
  at::Tensor image, text;             // [n, E] embeddings
  at::Tensor image_norm, text_norm;   // [n] norms of the projected features (CLIP's dist0 analogue)
  int64_t size() const { return feat.defined() ? feat.size(0) : 0; }
  Encoded take(const at::Tensor& idx) const {
    return {feat.index_select(0, idx), image.index_select(0, idx), text.index_select(0, idx),
            image_norm.index_select(0, idx), text_norm.index_select(0, idx)};
  }
};

at::Tensor positions(const std::vector<int64_t>& p) { return at::tensor(p, at::kLong); }

// Where a model's weights are: its encoders run there; everything after the encoding runs on the
// host (the gathered embeddings are host tensors).
at::Device device_of(const torch::nn::Module& m) {
  const auto params = m.parameters();
  return params.empty() ? at::Device(at::kCPU) : params.front().device();
}

// Encodes `rows` of `split` in chunks of `batch` rows; chunk c is encoded by rank c % world, and
// every chunk holds the same rows at any world size, so the values do not depend on it.
Encoded encode_rows(models::ContrastiveModelImpl& m, const Request& r, const std::string& split,
                    const std::vector<int64_t>& rows, const std::string& what) {
  torch::NoGradGuard no_grad;
  m.eval();
  const auto n = static_cast<int64_t>(rows.size());
  const int64_t batch = r.cfg.eval.batch_size, world = r.comm->world_size(), rank = r.comm->rank();
  const int64_t chunks = (n + batch - 1) / batch, per_rank = (chunks + world - 1) / world;
  const int64_t width = m.options().vision.width, embed = m.options().embed_dim;
  const int64_t cols = width + 2 * embed + 2;
  Encoded out;
  if (n == 0) return out;
  at::Tensor mine = at::zeros({per_rank * batch, cols}, at::kFloat);  // on the host: gathered over MPI
  const at::Device dev = device_of(m);
  const int threads = data::decode_threads_for(r.cfg.data.decode_threads, r.comm->local_size());  // JPEG rows
  int64_t done = 0, next_report = 0;
  for (int64_t c = rank, slot = 0; c < chunks; c += world, ++slot) {
    const std::vector<int64_t> part(rows.begin() + c * batch, rows.begin() + std::min(n, (c + 1) * batch));
    const data::Rows rd = r.file->read(split, part, /*with_images=*/true, threads);
    const at::Tensor pixels =
        rd.images.permute({0, 3, 1, 2}).contiguous().to(dev, at::kFloat).div_(255.0);
    const at::Tensor feat = m.encode_image(pixels, /*project=*/false);
    const at::Tensor pi = m.visual_proj(feat);
    const at::Tensor tokens = models::tokenize(*r.tokenizer, rd.captions, r.context_length).to(dev);
    const at::Tensor pt = m.textual_proj(m.encode_text(tokens, /*project=*/false));
    const at::Tensor packed = at::cat({feat.to(at::kFloat), m.lift(pi, true).to(at::kFloat),
                                       m.lift(pt, false).to(at::kFloat), pi.norm(2, {1}, true).to(at::kFloat),
                                       pt.norm(2, {1}, true).to(at::kFloat)}, 1);
    mine.slice(0, slot * batch, slot * batch + packed.size(0)).copy_(packed);
    done += static_cast<int64_t>(part.size());
    if (rank == 0 && done >= next_report) {
      core::log_info("eval: {} {} rows {}/{} (rank 0's share)", what, split, done, (n + world - 1) / world);
      next_report = done + std::max<int64_t>(batch, n / world / 4);
    }
  }
  const at::Tensor all = r.comm->all_gather(mine).reshape({world, per_rank, batch, cols});
  std::vector<at::Tensor> ordered;
  for (int64_t c = 0; c < chunks; ++c) {
    ordered.push_back(all[c % world][c / world].slice(0, 0, std::min(batch, n - c * batch)));
  }
  const at::Tensor t = at::cat(ordered, 0);
  // Non-finite embeddings would turn every metric into NaN (written as null) without a word: an error
  // on every rank (the gathered tensor is the same everywhere).
  if (!at::isfinite(t).all().item<bool>()) {
    const at::Tensor bad = (~at::isfinite(t)).any(1).nonzero();
    throw Error(fmt::format("eval: {} rows of split '{}' give non-finite embeddings (first: row {}); the model's "
                            "weights or the inputs are damaged", bad.size(0), split,
                            rows[static_cast<size_t>(bad[0][0].item<int64_t>())]));
  }
  out.feat = t.slice(1, 0, width);
  out.image = t.slice(1, width, width + embed);
  out.text = t.slice(1, width + embed, width + 2 * embed);
  out.image_norm = t.select(1, width + 2 * embed);
  out.text_norm = t.select(1, width + 2 * embed + 1);
  return out;
}

// One zero-shot classifier embedding per name (MERU's protocol, arXiv 2304.09172): projected prompt
// features averaged (MERU: in the tangent space, then lifted; CLIP: normalized, averaged, normalized).
at::Tensor class_embeddings(models::ContrastiveModelImpl& m, const Request& r, const std::vector<std::string>& names) {
  torch::NoGradGuard no_grad;
  m.eval();
  const auto& templates = r.cfg.eval.templates;
  std::vector<std::string> prompts;
  for (const auto& name : names) {
    for (const auto& t : templates) {
      const auto at = t.find("{}");
      prompts.push_back(t.substr(0, at) + name + t.substr(at + 2));
    }
  }
  std::vector<at::Tensor> parts;
  for (size_t b = 0; b < prompts.size(); b += static_cast<size_t>(r.cfg.eval.batch_size)) {
    const std::vector<std::string> chunk(prompts.begin() + static_cast<std::ptrdiff_t>(b),
                                         prompts.begin() + static_cast<std::ptrdiff_t>(std::min(
                                             prompts.size(), b + static_cast<size_t>(r.cfg.eval.batch_size))));
    const at::Tensor tokens = models::tokenize(*r.tokenizer, chunk, r.context_length).to(device_of(m));
    parts.push_back(m.textual_proj(m.encode_text(tokens, /*project=*/false)).to(at::kFloat));
  }
  at::Tensor proj = at::cat(parts, 0).reshape({static_cast<int64_t>(names.size()),
                                               static_cast<int64_t>(templates.size()), -1});
  if (!m.is_meru()) proj = proj / proj.norm(2, {2}, true).clamp_min(1e-12);
  return m.lift(proj.mean(1), /*image=*/false).cpu();
}

// Alignment of each row's own pair: CLIP cosine, MERU -d_c.
at::Tensor pair_scores(models::ContrastiveModelImpl& m, const Encoded& e) {
  torch::NoGradGuard no_grad;
  return geometry::pair_score(m.geometry(), e.image, e.text, m.curvature().cpu());
}

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous();
  return {d.data_ptr<double>(), d.data_ptr<double>() + d.numel()};
}

std::vector<int32_t> to_flags(const at::Tensor& inside, const std::vector<char>& applicable) {
  const at::Tensor b = inside.to(at::kInt).contiguous();
  std::vector<int32_t> out(b.data_ptr<int32_t>(), b.data_ptr<int32_t>() + b.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!applicable[i]) out[i] = -1;
  }
  return out;
}

std::vector<int32_t> concepts_of(const data::DatasetFile& f, const std::string& split, const std::vector<int64_t>& rows) {
  const auto& all = f.concepts(split);
  std::vector<int32_t> out;
  for (int64_t r : rows) out.push_back(all[static_cast<size_t>(r)]);
  return out;
}

// Positions 0 .. n-1 of the evaluated rows: the pool of the CKA and embedding samples.
std::vector<int64_t> all_positions(size_t n) {
  std::vector<int64_t> out(n);
  std::iota(out.begin(), out.end(), 0);
  return out;
}

// ---- The evaluated rows ---------------------------------------------------------------------

// What the stages share about the evaluated rows (the same on every rank).
struct Context {
  std::string split;                      // eval.split
  std::vector<std::string> names;
  std::vector<std::string> prompt_names;  // what the zero-shot prompts say (data::prompt_names)
  std::vector<int32_t> parent;            // per concept, -1 = none
  std::set<int32_t> forget;               // the forget concepts
  std::vector<int32_t> candidates;        // concepts with rows in the split: the zero-shot classes
  std::vector<int32_t> concept_of_row;    // per evaluated row
  std::vector<int64_t> caption_group;     // per evaluated row: id of its caption text
  std::vector<int64_t> group_first;       // per group: position of its first row
};

// unlearn.forget, with the descendants when unlearn.forget_descendants (as in training).
std::vector<int32_t> forget_concepts(const Request& r, const data::DatasetInfo& info) {
  if (r.cfg.unlearn.forget.empty()) return {};
  return data::forget_concept_ids(r.cfg.unlearn.forget, r.cfg.unlearn.forget_descendants, info.concept_names,
                                  info.concept_parent);
}

// Whether row i of a split is a forget row: its concept is forgotten or its caption matched.
bool is_forget_row(const Context& ctx, const std::vector<int32_t>& concepts, const std::vector<char>& by_caption,
                   size_t i) {
  return ctx.forget.count(concepts[i]) > 0 || (!by_caption.empty() && by_caption[i] != 0);
}

// The evaluated rows (every row of eval.split with a concept, or a seeded sample of them) into
// s.row, s.concept and s.forget; their caption groups and the zero-shot candidates into the context.
Context evaluated_rows(const Request& r, Samples& s) {
  const config::EvalConfig& ec = r.cfg.eval;
  const data::DatasetInfo& info = r.file->info();
  Context ctx;
  ctx.split = ec.split;
  ctx.names = info.concept_names;
  ctx.prompt_names = data::prompt_names(info.concept_names, info.display_names, ec.display_names);
  ctx.parent = info.concept_parent.empty() ? std::vector<int32_t>(ctx.names.size(), -1) : info.concept_parent;
  const std::vector<int32_t> forget_ids = forget_concepts(r, info);
  ctx.forget.insert(forget_ids.begin(), forget_ids.end());
  const auto& split_concepts = r.file->concepts(ctx.split);
  const std::set<int32_t> present(split_concepts.begin(), split_concepts.end());
  ctx.candidates.assign(present.begin(), present.end());
  ctx.candidates.erase(std::remove(ctx.candidates.begin(), ctx.candidates.end(), -1), ctx.candidates.end());
  RUNNER_CHECK(ctx.candidates.size() >= 2, ConfigError,
               fmt::format("eval.split: {}/{} has {} concept(s) with rows; zero-shot needs at least 2", info.path,
                           ctx.split, ctx.candidates.size()));
  std::vector<int64_t> pool;
  for (size_t i = 0; i < split_concepts.size(); ++i) {
    if (split_concepts[i] >= 0) pool.push_back(static_cast<int64_t>(i));
  }
  s.row = data::seeded_sample(pool, ec.max_rows, static_cast<uint64_t>(ec.seed));
  s.concept = concepts_of(*r.file, ctx.split, s.row);
  ctx.concept_of_row = s.concept;
  const std::vector<char> by_caption = data::caption_match_flags(*r.file, ctx.split, r.cfg.unlearn.forget_captions);
  for (size_t i = 0; i < s.row.size(); ++i) {
    const bool caption = !by_caption.empty() && by_caption[static_cast<size_t>(s.row[i])] != 0;
    s.forget.push_back(static_cast<char>(ctx.forget.count(s.concept[i]) > 0 || caption));
  }
  std::map<std::string, int64_t> group_of;
  const auto captions = r.file->read(ctx.split, s.row, /*with_images=*/false).captions;
  for (size_t i = 0; i < captions.size(); ++i) {
    auto [it, added] = group_of.emplace(captions[i], static_cast<int64_t>(ctx.group_first.size()));
    if (added) ctx.group_first.push_back(static_cast<int64_t>(i));
    ctx.caption_group.push_back(it->second);
  }
  core::log_info("eval: {} rows of {} ({} classes, {} forget; {} distinct captions), {} rank(s)", s.row.size(),
                 ctx.split, ctx.candidates.size(), forget_ids.size(), ctx.group_first.size(), r.comm->world_size());
  return ctx;
}

// ---- Stages: zero-shot and hierarchy (per model), retrieval -------------------------------

// Each row's zero-shot prediction: the candidate class embedding scoring highest against its
// image (MERU: Lorentz inner product; CLIP: dot product).
std::vector<int32_t> zero_shot(models::ContrastiveModelImpl& m, const Context& ctx, const Encoded& e,
                               const at::Tensor& classes, const at::Tensor& curv) {
  const at::Tensor cand = classes.index_select(0, at::tensor(ctx.candidates, at::kInt).to(at::kLong));
  const at::Tensor zs = m.is_meru() ? geometry::pairwise_inner(e.image, cand, curv) : at::matmul(e.image, cand.t());
  std::vector<int32_t> pred;
  for (int32_t i : argmax_rows(zs)) pred.push_back(ctx.candidates[static_cast<size_t>(i)]);
  return pred;
}

// dist0 of every image and caption (CLIP: the norms before normalization) and, for MERU, whether
// each image lies in its own caption's cone and in the cone of its parent concept's class embedding.
void hierarchy(models::ContrastiveModelImpl& m, const Context& ctx, const Encoded& e, const at::Tensor& classes,
               const at::Tensor& curv, ModelValues& v) {
  const size_t n = ctx.concept_of_row.size();
  if (!m.is_meru()) {
    v.image_dist0 = to_doubles(e.image_norm);
    v.text_dist0 = to_doubles(e.text_norm);
    v.own_cone.assign(n, -1);
    v.parent_cone.assign(n, -1);
    v.cone_margin.assign(n, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  v.image_dist0 = to_doubles(geometry::dist0(e.image, curv));
  v.text_dist0 = to_doubles(geometry::dist0(e.text, curv));
  const std::vector<char> all(n, 1);
  const at::Tensor margin = geometry::oxy_angle(e.text, e.image, curv) - geometry::half_aperture(e.text, curv);
  v.own_cone = to_flags(margin.le(0.0), all);
  v.cone_margin = to_doubles(margin);
  std::vector<int64_t> parent_pos(n, 0);
  std::vector<char> has_parent(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int32_t c = ctx.concept_of_row[i];
    const int32_t p = c >= 0 && static_cast<size_t>(c) < ctx.parent.size() ? ctx.parent[static_cast<size_t>(c)] : -1;
    has_parent[i] = p >= 0;
    parent_pos[i] = std::max(p, 0);
  }
  const at::Tensor pe = classes.index_select(0, positions(parent_pos));
  v.parent_cone = to_flags(geometry::oxy_angle(pe, e.image, curv).le(geometry::half_aperture(pe, curv)), has_parent);
}

// One model's values on the evaluated rows: zero-shot predictions, pair scores, hierarchy.
ModelValues model_values(models::ContrastiveModelImpl& m, const Request& r, const Context& ctx, const Encoded& e) {
  torch::NoGradGuard no_grad;
  ModelValues v;
  const at::Tensor classes = class_embeddings(m, r, ctx.prompt_names);
  const at::Tensor curv = m.curvature().cpu();
  v.zs_pred = zero_shot(m, ctx, e, classes, curv);
  v.score = to_doubles(pair_scores(m, e));
  hierarchy(m, ctx, e, classes, curv, v);
  return v;
}

// Image->text and text->image ranks of every evaluated row over the whole evaluated set, with
// captions of equal text as one gallery item (i2t) / equivalent targets (t2i).
void retrieval_ranks(models::ContrastiveModelImpl& m, const Context& ctx, const Encoded& e, Samples& s) {
  torch::NoGradGuard no_grad;
  const at::Tensor gallery = e.text.index_select(0, positions(ctx.group_first));
  const auto groups = static_cast<int64_t>(ctx.group_first.size());
  std::vector<int64_t> ids(static_cast<size_t>(groups));
  std::iota(ids.begin(), ids.end(), 0);
  constexpr int64_t kChunk = 2048;
  const int64_t n = e.size();
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t end = std::min(n, b + kChunk);
    const std::vector<int64_t> q(ctx.caption_group.begin() + b, ctx.caption_group.begin() + end);
    const auto ranks = group_ranks(m.similarity(e.image.slice(0, b, end), gallery), q, ids);
    s.i2t_rank.insert(s.i2t_rank.end(), ranks.begin(), ranks.end());
  }
  std::vector<int64_t> per_group;
  for (int64_t b = 0; b < groups; b += kChunk) {
    const int64_t end = std::min(groups, b + kChunk);
    const std::vector<int64_t> q(ids.begin() + b, ids.begin() + end);
    const auto ranks = group_ranks(m.similarity(gallery.slice(0, b, end), e.image), q, ctx.caption_group);
    per_group.insert(per_group.end(), ranks.begin(), ranks.end());
  }
  for (int64_t g : ctx.caption_group) s.t2i_rank.push_back(per_group[static_cast<size_t>(g)]);
}

// ---- Stages: train-split rows, k-NN, audit, the original (CKA) ----------------------------

// The train-split rows of the k-NN bank and of the audit's members and forget pairs, encoded
// once as their sorted union.
struct TrainRows {
  std::vector<int64_t> bank, members, forget_pairs;
  std::vector<int64_t> rows;  // the sorted union, in the order encoded
  Encoded enc;                // the evaluated model's encoding of rows
  // Positions of `wanted` (some of rows) in rows.
  at::Tensor where(const std::vector<int64_t>& wanted) const {
    std::vector<int64_t> p;
    for (int64_t w : wanted) p.push_back(std::lower_bound(rows.begin(), rows.end(), w) - rows.begin());
    return positions(p);
  }
};

TrainRows encode_train_rows(models::ContrastiveModelImpl& m, const Request& r, const Context& ctx) {
  const config::EvalConfig& ec = r.cfg.eval;
  const auto& train_concepts = r.file->concepts("train");
  const std::vector<char> by_caption = data::caption_match_flags(*r.file, "train", r.cfg.unlearn.forget_captions);
  std::vector<int64_t> all, retain, forget;
  for (size_t i = 0; i < train_concepts.size(); ++i) {
    if (train_concepts[i] < 0) continue;
    all.push_back(static_cast<int64_t>(i));
    (is_forget_row(ctx, train_concepts, by_caption, i) ? forget : retain).push_back(static_cast<int64_t>(i));
  }
  const uint64_t seed = static_cast<uint64_t>(ec.seed);
  TrainRows t;
  t.bank = data::seeded_sample(all, ec.knn_bank_rows, seed + 1);
  t.members = data::seeded_sample(retain, ec.audit_rows, seed + 2);
  t.forget_pairs = data::seeded_sample(forget, ec.audit_rows, seed + 3);
  t.rows = t.bank;
  t.rows.insert(t.rows.end(), t.members.begin(), t.members.end());
  t.rows.insert(t.rows.end(), t.forget_pairs.begin(), t.forget_pairs.end());
  std::sort(t.rows.begin(), t.rows.end());
  t.rows.erase(std::unique(t.rows.begin(), t.rows.end()), t.rows.end());
  t.enc = encode_rows(m, r, "train", t.rows, "k-NN bank and audit");
  return t;
}

// k-NN on the image encoder's frozen features: each evaluated row against the bank.
std::vector<int32_t> knn_predictions(const Request& r, const TrainRows& train, const Encoded& after) {
  const Encoded bank = train.enc.take(train.where(train.bank));
  return knn_predict(bank.feat, concepts_of(*r.file, "train", train.bank), after.feat, r.cfg.eval.knn_k);
}

// Where the audit's non-members come from: the validation split when evaluating on it (selection
// never touches test), else the test split.
std::string nonmember_split(const Context& ctx) { return ctx.split == "val" ? "val" : "test"; }

// The audit's non-members: a seeded sample of the retain rows of the held-out split.
std::vector<int64_t> audit_nonmembers(const Request& r, const Context& ctx) {
  const auto& test_concepts = r.file->concepts(nonmember_split(ctx));
  const std::vector<char> by_caption = data::caption_match_flags(*r.file, nonmember_split(ctx), r.cfg.unlearn.forget_captions);
  std::vector<int64_t> test_retain;
  for (size_t i = 0; i < test_concepts.size(); ++i) {
    if (test_concepts[i] >= 0 && !is_forget_row(ctx, test_concepts, by_caption, i)) {
      test_retain.push_back(static_cast<int64_t>(i));
    }
  }
  return data::seeded_sample(test_retain, r.cfg.eval.audit_rows, static_cast<uint64_t>(r.cfg.eval.seed) + 4);
}

void append_audit(AuditRows& audit, const Request& r, const char* set, const std::vector<int64_t>& rows,
                  const std::string& split, const at::Tensor& scores) {
  const auto values = to_doubles(scores);
  const auto concepts = concepts_of(*r.file, split, rows);
  for (size_t i = 0; i < rows.size(); ++i) {
    audit.set.emplace_back(set);
    audit.row.push_back(rows[i]);
    audit.concept.push_back(concepts[i]);
    audit.score.push_back(values[i]);
  }
}

// Membership audit: the pair scores of retain-train pairs (members), held-out retain pairs
// (non-members) and forget-train pairs.
AuditRows membership_audit(models::ContrastiveModelImpl& m, const Request& r, const TrainRows& train,
                           const std::vector<int64_t>& nonmembers, const std::string& held_split) {
  const Encoded held_out = encode_rows(m, r, held_split, nonmembers, "audit held-out");
  AuditRows audit;
  append_audit(audit, r, "member", train.members, "train", pair_scores(m, train.enc.take(train.where(train.members))));
  append_audit(audit, r, "nonmember", nonmembers, held_split, pair_scores(m, held_out));
  append_audit(audit, r, "forget", train.forget_pairs, "train",
               pair_scores(m, train.enc.take(train.where(train.forget_pairs))));
  return audit;
}

// The retrain reference (eval.retrain): its scores on the same pairs, in the same order.
void add_retrain_reference(const Request& r, const TrainRows& train, const std::vector<int64_t>& nonmembers,
                           const std::string& held_split, AuditRows& audit) {
  models::ContrastiveModel retrain = models::load_model(r.cfg.eval.retrain);
  retrain->to(device_of(*r.model));
  const Encoded rt_train = encode_rows(*retrain, r, "train", train.rows, "retrain reference");
  const Encoded rt_test = encode_rows(*retrain, r, held_split, nonmembers, "retrain reference held-out");
  for (const auto& t : {pair_scores(*retrain, rt_train.take(train.where(train.members))),
                        pair_scores(*retrain, rt_test),
                        pair_scores(*retrain, rt_train.take(train.where(train.forget_pairs)))}) {
    const auto v = to_doubles(t);
    audit.retrain_score.insert(audit.retrain_score.end(), v.begin(), v.end());
  }
}

// The original (before unlearning): its values on the evaluated rows into s.before, its
// encoding into `before`, and linear CKA of the image features on a fixed sample of the rows
// (and on its forget and retain rows).
json compare_with_original(const Request& r, const Context& ctx, const Encoded& after, Samples& s, Encoded& before) {
  models::ContrastiveModel original = models::load_model(r.original);
  original->to(device_of(*r.model));
  before = encode_rows(*original, r, ctx.split, s.row, "original");
  s.before = model_values(*original, r, ctx, before);
  const auto sample_pos =
      data::seeded_sample(all_positions(s.size()), r.cfg.eval.cka_rows, static_cast<uint64_t>(r.cfg.eval.seed) + 5);
  std::vector<int64_t> f_pos, r_pos;
  for (int64_t p : sample_pos) (s.forget[static_cast<size_t>(p)] ? f_pos : r_pos).push_back(p);
  auto cka_of = [&](const std::vector<int64_t>& p) {
    if (p.size() < 2) return std::numeric_limits<double>::quiet_NaN();
    return linear_cka(after.feat.index_select(0, positions(p)), before.feat.index_select(0, positions(p)));
  };
  json cka = json::object();
  cka["cka"] = cka_of(sample_pos);
  cka["cka_forget"] = cka_of(f_pos);
  cka["cka_retain"] = cka_of(r_pos);
  cka["cka_rows"] = static_cast<int64_t>(sample_pos.size());
  return cka;
}

// ---- Metrics and side files -------------------------------------------------------------------

// The metrics object: the side files' aggregates, then the representation's settings and CKA,
// and the facts of the evaluation.
json assemble_metrics(models::ContrastiveModelImpl& m, const Request& r, const Context& ctx, const Samples& s,
                      const AuditRows& audit, int64_t bank_rows, const json& cka,
                      std::chrono::steady_clock::time_point t0) {
  json metrics = aggregate_samples(s, ctx.names);
  metrics["audit"] = aggregate_audit(audit);
  metrics["representation"]["knn_k"] = r.cfg.eval.knn_k;
  metrics["representation"]["knn_bank_rows"] = bank_rows;
  for (const auto& [k, v] : cka.items()) metrics["representation"][k] = v;
  metrics["split"] = ctx.split;
  if (!r.file->info().val_fingerprint.empty()) metrics["val_fingerprint"] = r.file->info().val_fingerprint;
  metrics["templates"] = static_cast<int64_t>(r.cfg.eval.templates.size());
  metrics["curvature"] = m.is_meru() ? m.curvature().item<double>() : std::numeric_limits<double>::quiet_NaN();
  metrics["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return metrics;
}

std::string embeddings_csv(const std::vector<int64_t>& rows, const std::vector<int32_t>& concepts,
                           const std::vector<char>& forget, const std::vector<std::pair<std::string, const Encoded*>>& models) {
  std::string out = "row,concept,forget,model,modality";
  const int64_t dims = models.front().second->image.size(1);
  for (int64_t d = 0; d < dims; ++d) out += fmt::format(",e{}", d);
  out += "\n";
  for (const auto& [label, enc] : models) {
    for (const auto& [modality, t] : {std::pair<const char*, at::Tensor>{"image", enc->image}, {"text", enc->text}}) {
      const at::Tensor c = t.to(at::kDouble).contiguous();
      for (size_t i = 0; i < rows.size(); ++i) {
        out += fmt::format("{},{},{},{},{}", rows[i], concepts[i], forget[i] ? 1 : 0, label, modality);
        const double* p = c.data_ptr<double>() + static_cast<int64_t>(i) * dims;
        for (int64_t d = 0; d < dims; ++d) out += fmt::format(",{:.7g}", p[d]);
        out += "\n";
      }
    }
  }
  return out;
}

// embeddings.csv: the model's (and the original's) embeddings of a fixed sample of
// eval.embedding_rows evaluated rows; no file for an empty sample.
void write_embeddings(const fs::path& dir, const Request& r, const Samples& s, const Encoded& after,
                      const Encoded& before) {
  const auto emb_pos = data::seeded_sample(all_positions(s.size()), r.cfg.eval.embedding_rows,
                                           static_cast<uint64_t>(r.cfg.eval.seed) + 6);
  if (emb_pos.empty()) return;
  std::vector<int64_t> er;
  std::vector<int32_t> ec_concepts;
  std::vector<char> ef;
  for (int64_t p : emb_pos) {
    er.push_back(s.row[static_cast<size_t>(p)]);
    ec_concepts.push_back(s.concept[static_cast<size_t>(p)]);
    ef.push_back(s.forget[static_cast<size_t>(p)]);
  }
  const Encoded a = after.take(positions(emb_pos));
  std::vector<std::pair<std::string, const Encoded*>> models{{"after", &a}};
  Encoded b;
  if (before.size() > 0) {
    b = before.take(positions(emb_pos));
    models.emplace_back("before", &b);
  }
  core::write_file_atomically((dir / "embeddings.csv").string(), embeddings_csv(er, ec_concepts, ef, models));
}

// Rank 0's side files in out_dir/eval/, each written atomically.
void write_side_files(const Request& r, const Context& ctx, const Samples& s, const AuditRows& audit,
                      const Encoded& after, const Encoded& before, const json& metrics) {
  const fs::path dir = fs::path(r.out_dir) / "eval";
  fs::create_directories(dir);
  core::write_file_atomically((dir / "samples.csv").string(), to_csv(s));
  core::write_file_atomically((dir / "audit.csv").string(), to_csv(audit));
  core::write_file_atomically((dir / "classes.csv").string(), per_concept_csv(s, ctx.names));
  write_embeddings(dir, r, s, after, before);
  core::write_file_atomically((dir / "metrics.json").string(), metrics.dump(2) + "\n");
}

void log_summary(const json& metrics) {
  const auto fmt_pct = [](const json& v) {
    return v.is_number() && !std::isnan(v.get<double>()) ? fmt::format("{:.1f}%", v.get<double>()) : std::string("n/a");
  };
  core::log_info("eval: zero-shot forget {} retain {} | audit forget called non-member {} | {:.1f}s",
                 fmt_pct(metrics["zero_shot"]["forget_top1"]), fmt_pct(metrics["zero_shot"]["retain_top1"]),
                 fmt_pct(metrics["audit"]["forget_nonmember"]), metrics["seconds"].get<double>());
}

}  // namespace

std::string evaluate(const Request& r) {
  const auto t0 = std::chrono::steady_clock::now();
  models::ContrastiveModelImpl& m = *r.model.ptr();
  Samples s;
  const Context ctx = evaluated_rows(r, s);
  // Each encode_rows gathers over the ranks: the stages run in this order on every rank.
  const Encoded after = encode_rows(m, r, ctx.split, s.row, "model");
  s.after = model_values(m, r, ctx, after);  // zero-shot, pair scores, hierarchy
  retrieval_ranks(m, ctx, after, s);
  const TrainRows train = encode_train_rows(m, r, ctx);
  s.knn_pred = knn_predictions(r, train, after);
  const std::vector<int64_t> nonmembers = audit_nonmembers(r, ctx);
  AuditRows audit = membership_audit(m, r, train, nonmembers, nonmember_split(ctx));
  if (!r.cfg.eval.retrain.empty()) add_retrain_reference(r, train, nonmembers, nonmember_split(ctx), audit);
  Encoded before;
  const json cka = r.original.empty() ? json::object() : compare_with_original(r, ctx, after, s, before);
  const json metrics = assemble_metrics(m, r, ctx, s, audit, static_cast<int64_t>(train.bank.size()), cka, t0);
  if (r.comm->rank() == 0) write_side_files(r, ctx, s, audit, after, before, metrics);
  r.comm->barrier();
  log_summary(metrics);
  return metrics.dump();
}

}  // namespace runner::eval
