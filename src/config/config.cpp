// Run configuration (config.h): one field list per section drives YAML reading and writing,
// `--set` overrides, validation of doubles, the Markdown reference and the semantic hash.
#include "config/config.h"

#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <set>
#include <type_traits>

#include "config/validate.h"
#include "core/error.h"
#include "core/suggest.h"
#include "core/hash.h"

namespace runner::config {
namespace {

// ---- Field lists: each key once, in declaration order, with its meaning --------------------
// Every other function walks these lists, so a new field needs one line here and nothing else
// (its meaning lands in docs/config.md through reference_markdown()).

template <class V>
void visit(V& v, DataConfig& c) {
  v("file", c.file, "HDF5 image-text dataset (docs/data-format.md)");
  v("batch_size", c.batch_size, "rows per rank and step");
  v("prefetch", c.prefetch, "batches read ahead by the loader thread (0 = inline)");
  v("tail", c.tail, "drop | pad: the rows that do not split evenly over ranks");
  v("tokenizer", c.tokenizer, "word (built from the train captions) | clip_bpe");
  v("vocab_file", c.vocab_file, "clip_bpe: bpe_simple_vocab_16e6.txt.gz");
  v("word_min_count", c.word_min_count, "word: a word needs this many occurrences");
  v("val_fraction", c.val_fraction, "share of each concept's train rows held out as the validation split (0 = none)");
  v("val_seed", c.val_seed, "which train rows the validation split holds");
  v("augment", c.augment,
    "training batches: none | random_resized_crop (MERU's: 50-100% of the area, aspect 3/4-4/3); eval never augments");
  v("decode_threads", c.decode_threads,
    "threads per rank that decode JPEG-stored rows and augment (0 = cores / ranks on the node)");
}

template <class V>
void visit(V& v, ModelConfig& c) {
  v("kind", c.kind, "clip | meru");
  v("preset", c.preset, "tiny | vit_s | vit_b | vit_l (models::model_preset)");
  v("init", c.init, "\"\" = random weights; else a checkpoint (released MERU/CLIP .pth or hac)");
  v("curv_init", c.curv_init, "MERU: initial curvature c0 (clamped to [c0/10, 10 c0])");
  v("curv_learn", c.curv_learn, "MERU: curvature learnable during pretraining");
  v("embed_dim", c.embed_dim, "0 = the preset's");
  v("vision_ln_eps", c.vision_ln_eps,
    "ViT LayerNorm eps when built from the preset (MERU's 1e-5); a loaded checkpoint keeps its own");
}

template <class V>
void visit(V& v, TrainConfig& c) {
  v("steps", c.steps, "optimizer steps");
  v("lr", c.lr, "peak learning rate (AdamW)");
  v("weight_decay", c.weight_decay, "not applied to logit_scale, curv, alphas, biases, norms");
  v("beta1", c.beta1, "AdamW beta1");
  v("beta2", c.beta2, "AdamW beta2");
  v("eps", c.eps, "AdamW epsilon");
  v("warmup_steps", c.warmup_steps, "linear warmup, then cosine decay to 0");
  v("entail_weight", c.entail_weight, "MERU: weight of the entailment loss");
  v("seed", c.seed, "weights, sampler, partners");
  v("checkpoint_every", c.checkpoint_every, "steps between checkpoints; 0 = only at the end");
  v("keep_checkpoints", c.keep_checkpoints, "newest checkpoints kept in output.dir/checkpoints");
  v("log_every", c.log_every, "steps between progress lines on rank 0");
}

template <class V>
void visit(V& v, UnlearnConfig& c) {
  v("method", c.method, "the unlearning method: a name from the table in docs/training.md (`hac unlearn --help`)");
  v("original", c.original, "checkpoint of the model to unlearn from");
  v("forget", c.forget, "concept names (one or several)");
  v("forget_captions", c.forget_captions,
    "caption keywords: train rows whose caption contains one (case-insensitive, whole words) are forget rows too");
  v("forget_descendants", c.forget_descendants, "forgetting a parent forgets its children");
  v("steps", c.steps, "optimizer steps of unlearning");
  v("lr", c.lr, "peak learning rate (AdamW)");
  v("weight_decay", c.weight_decay, "AdamW weight decay");
  v("warmup_steps", c.warmup_steps, "linear warmup steps");
  v("curv_learn", c.curv_learn, "MERU: curvature frozen at the original's value by default");
  v("alpha", c.alpha, "AC / HAC negative calibration weight of the forget rows' stand-in captions (unlearn.partners)");
  v("partners", c.partners,
    "other_concept | same_concept | retain_caption: where a forget row's stand-in caption comes from "
    "(other_concept: a forget row of another concept, or a retain row when one concept is forgotten)");
  v("beta", c.beta, "positive calibration weight beta");
  v("beta_scaled", c.beta_scaled, "beta_eff = beta |D_F| / (|D_R| + |D_F|)");
  v("pos_mode", c.pos_mode,
    "neg_dist (CLIP cosine, MERU -d_c) | hinge (max(0, pos_margin - d)) | hinge_ref (max(0, pos_margin_ratio * "
    "d_original - d)) | angle (minus the angle at the origin) | rescaled (MERU: -d_c at the original's radii); d: MERU "
    "d_c, CLIP the angle");
  v("pos_margin", c.pos_margin, "hinge: margin of the positive calibration");
  v("pos_margin_ratio", c.pos_margin_ratio, "hinge_ref: the margin as a multiple of the original's distance of the pair");
  v("entcal", c.entcal, "HAC entailment calibration: forget images out of their caption's cone");
  v("entcal_weight", c.entcal_weight, "weight of the entailment calibration");
  v("entcal_margin", c.entcal_margin, "margin added to the cone in the entailment calibration");
  v("entcal_retain", c.entcal_retain, "plus MERU's entailment loss on retain rows");
  v("entcal_partner", c.entcal_partner, "plus: forget images into their partner caption's cone");
  v("entcal_aperture", c.entcal_aperture,
    "current | original: the cone's half-aperture from the caption now or from the original's (radius growth "
    "cannot narrow it)");
  v("norm", c.norm, "HAC norm regularization");
  v("norm_weight", c.norm_weight, "weight of the norm regularization");
  v("norm_mode", c.norm_mode,
    "origin (mean dist0) | keep ((dist0 - original)^2) | l1 (|dist0 - original|) | grow (max(0, dist0 - original)) | "
    "anchor_retain (keep on retain rows): on forget rows");
  v("norm_retain", c.norm_retain, "keep, l1, grow: the same term on retain rows, added");
  v("norm_scaled", c.norm_scaled, "the norm weight is norm_weight * beta_eff (the scale of the positive term)");
  v("freeze_alphas", c.freeze_alphas, "MERU: visual_alpha and textual_alpha frozen during unlearning");
  v("l1_weight", c.l1_weight, "l1: weight of the L1 penalty on the parameters");
}

template <class V>
void visit(V& v, EvalConfig& c) {
  v("enabled", c.enabled, "evaluate at the end of `hac train` and `hac unlearn`");
  v("split", c.split, "train | val | test: zero-shot, retrieval, hierarchy and k-NN queries come from this split (val: selection)");
  v("max_rows", c.max_rows, "rows of that split (seeded sample); 0 = all");
  v("templates", c.templates, "zero-shot prompts; {} is replaced by the class name, features averaged per class");
  v("display_names", c.display_names,
    "concept=display name items: the name the prompts use (over the dataset's /concept_display_names)");
  v("batch_size", c.batch_size, "rows per encoder call (fixed chunks: equal numbers at any rank count)");
  v("audit_rows", c.audit_rows, "membership audit: at most this many member, non-member and forget pairs");
  v("retrain", c.retrain, "the retrain reference's model.pt: its audit too, and the gap to it");
  v("knn_k", c.knn_k, "k of the k-NN classifier on frozen image features");
  v("knn_bank_rows", c.knn_bank_rows, "train rows forming the k-NN bank");
  v("cka_rows", c.cka_rows, "rows of the fixed sample for linear CKA against the original");
  v("embedding_rows", c.embedding_rows, "rows whose embeddings are written for figures");
  v("seed", c.seed, "seed of the samples above");
}

template <class V>
void visit(V& v, DistConfig& c) {
  v("threads", c.threads, "torch threads per rank; 0 = cores / ranks on the host");
  v("device", c.device, "cpu | cuda (GPU local rank mod visible; needs a CUDA build: docs/cluster.md, \"Devices\")");
}

template <class V>
void visit(V& v, OutputConfig& c) {
  v("dir", c.dir, "run directory: config.yaml, result.json, run.log, checkpoints/, model.pt; \"\" = results/runs/<run id>");
  v("resume", c.resume, "resume from the newest checkpoint in dir/checkpoints");
}

// Calls f(name, about, section) for every section in file order.
template <class F>
void for_each_section(Config& c, F&& f) {
  f("data", "the dataset file, batching and the tokenizer", c.data);
  f("model", "architecture and initial weights", c.model);
  f("train", "pretraining (AdamW, warmup then cosine decay)", c.train);
  f("unlearn", "the unlearning method and its losses", c.unlearn);
  f("eval", "metrics at the end of a run and `hac eval` (not part of the run id)", c.eval);
  f("dist", "threads and device of each rank", c.dist);
  f("output", "where the run writes its files", c.output);
}

// Keys that change how a run is written or logged but not what it computes; the run id
// (the run id) must not change with them.
bool is_semantic(const std::string& section, const std::string& key) {
  if (section == "output" || section == "eval") return false;
  return !((section == "train" && key == "log_every") || (section == "data" && key == "prefetch") ||
           (section == "data" && key == "decode_threads") ||
           (section == "dist" && key == "threads"));
}

// ---- Values as YAML text -------------------------------------------------------------------

bool is_plain_safe(const std::string& s) {
  // Plain only when every YAML reader sees a string: no indicators, numbers, bools or nulls.
  if (s.empty()) return false;
  const char first = s[0];
  if (!(std::isalpha(static_cast<unsigned char>(first)) || first == '_' || first == '/')) return false;
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (!(std::isalnum(u) || ch == '_' || ch == '.' || ch == '/' || ch == '-' || ch == '+')) return false;
  }
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::set<std::string> kWords = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"};
  return kWords.count(lower) == 0;
}

std::string format_value(const std::string& s) {
  if (is_plain_safe(s)) return s;
  std::string out = "\"";
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') out += {'\\', ch};
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);  // other control bytes
    else out += ch;
  }
  return out + "\"";
}
std::string format_value(int64_t v) { return fmt::format("{}", v); }
}  // namespace

std::string format_double(double v) {
  // fmt's shortest representation reads back to the same bits; the ".0" keeps "1" and "1e-08" floats
  // for YAML 1.1 readers too (PyYAML).
  std::string s = fmt::format("{}", v);
  if (s.find_first_not_of("-0123456789") == std::string::npos) s += ".0";
  if (s.find('.') == std::string::npos && s.find('e') != std::string::npos) s.insert(s.find('e'), ".0");
  return s;
}

namespace {

std::string format_value(double v) { return format_double(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + format_value(v[i]);
  return out + "]";
}

const char* type_name(const std::string&) { return "string"; }
const char* type_name(int64_t) { return "int"; }
const char* type_name(double) { return "float"; }
const char* type_name(bool) { return "bool"; }
const char* type_name(const std::vector<std::string>&) { return "list of strings"; }

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// ---- Values from YAML nodes ----------------------------------------------------------------

// How a node looks in a message.
std::string show(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "no value (null)";
    case YAML::NodeType::Scalar: return (n.Tag() == "?" ? "'" : "the quoted string '") + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "nothing";
  }
}

// `where` is "file:line" or "override '...'"; `key` is section.key.
[[noreturn]] void bad_value(const std::string& where, const std::string& key, const YAML::Node& n,
                            const std::string& expected) {
  throw ConfigError(fmt::format("{}: key '{}' must be {}, got {}", where, key, expected, show(n)));
}

// Numbers and bools must be plain scalars: a quoted "5" is a string in YAML.
bool is_plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

void decode(const YAML::Node& n, std::string& out, const std::string& where, const std::string& key) {
  if (!n.IsNull() && !n.IsScalar()) bad_value(where, key, n, "a string");
  out = n.IsNull() ? "" : n.Scalar();  // `init:` with nothing after it means "no file"
}

// Numbers are decimal plain scalars: from_chars alone would also take inf, nan and (for
// doubles) hex digits; unlike strtod it ignores the locale.
template <class T>
void decode_number(const YAML::Node& n, T& out, const std::string& where, const std::string& key,
                   const char* expected, const char* chars) {
  const std::string s = is_plain_scalar(n) ? n.Scalar() : "";
  if (s.empty() || s.find_first_not_of(chars) != std::string::npos) bad_value(where, key, n, expected);
  // from_chars takes no leading '+', which YAML allows ("+5", "+1e-3").
  const char* begin = s.data() + (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+' ? 1 : 0);
  const char* end = s.data() + s.size();
  T v{};
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  constexpr const char* kRange = std::is_same_v<T, double> ? "double" : "int64";
  if (ec == std::errc::result_out_of_range) {
    bad_value(where, key, n, fmt::format("{} in the {} range", expected, kRange));
  }
  if (ec != std::errc() || ptr != end) bad_value(where, key, n, expected);
  out = v;
}

void decode(const YAML::Node& n, int64_t& out, const std::string& where, const std::string& key) {
  decode_number(n, out, where, key, "an integer", "+-0123456789");
}

void decode(const YAML::Node& n, double& out, const std::string& where, const std::string& key) {
  decode_number(n, out, where, key, "a number", "+-.0123456789eE");
}

void decode(const YAML::Node& n, bool& out, const std::string& where, const std::string& key) {
  // yaml-cpp's words (true/false, yes/no, on/off, y/n in three casings); never 0 or 1.
  bool v = false;
  if (!is_plain_scalar(n) || !YAML::convert<bool>::decode(n, v)) bad_value(where, key, n, "true or false");
  out = v;
}

void decode(const YAML::Node& n, std::vector<std::string>& out, const std::string& where,
            const std::string& key) {
  if (n.IsNull()) {
    out.clear();  // `--set unlearn.forget=` clears the list
    return;
  }
  if (!n.IsSequence()) bad_value(where, key, n, "a list of strings such as [a, b]");
  std::vector<std::string> v;
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      throw ConfigError(fmt::format("{}: key '{}' must be a list of strings, but an item is {}", where, key,
                                    show(item)));
    }
    v.push_back(item.Scalar());
  }
  out = std::move(v);
}

// ---- Visitors ------------------------------------------------------------------------------

struct KeyNames {
  std::vector<std::string> names;
  template <class T>
  void operator()(const char* key, T&, const char*) { names.push_back(key); }
};

// Sets the field named `key` from `value`; found stays false when the section has no such key.
struct Assigner {
  const std::string& key;
  const YAML::Node& value;
  const std::string& where;
  const std::string& full_key;
  bool found = false;
  template <class T>
  void operator()(const char* name, T& field, const char*) {
    if (found || key != name) return;
    found = true;
    decode(value, field, where, full_key);
  }
};

template <class S>
void assign(S& section_value, const char* section, const std::string& key, const YAML::Node& value,
            const std::string& where) {
  const std::string full_key = fmt::format("{}.{}", section, key);
  Assigner a{key, value, where, full_key};
  visit(a, section_value);
  if (a.found) return;
  KeyNames known;
  visit(known, section_value);
  throw ConfigError(fmt::format("{}: unknown key '{}'{} (known keys of {}: {})", where, full_key,
                                core::did_you_mean(key, known.names), section, join(known.names, ", ")));
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  Config c;
  for_each_section(c, [&](const char* name, const char*, auto&) { names.push_back(name); });
  return names;
}

// Calls f(section_name, section) for the section called `name`; unknown sections are errors.
template <class F>
void with_section(Config& c, const std::string& name, const std::string& where, F&& f) {
  bool found = false;
  for_each_section(c, [&](const char* sname, const char*, auto& section) {
    if (found || name != sname) return;
    found = true;
    f(sname, section);
  });
  if (!found) {
    // A sweep spec given where a config goes: say so rather than list sections.
    static const char* const kSweepKeys[] = {"name", "axes", "originals", "select", "base", "root", "ranks"};
    const bool sweep = std::find(std::begin(kSweepKeys), std::end(kSweepKeys), name) != std::end(kSweepKeys);
    throw ConfigError(fmt::format("{}: unknown section '{}'{} (known: {}){}", where, name,
                                  core::did_you_mean(name, section_names()), join(section_names(), ", "),
                                  sweep ? "; this looks like a sweep spec: run it with `hac sweep`" : ""));
  }
}

std::string location(const std::string& source, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.line >= 0 ? fmt::format("{}:{}", source, m.line + 1) : source;
}

std::string key_text(const YAML::Node& key, const std::string& source, const char* what) {
  if (!key.IsScalar()) {
    throw ConfigError(fmt::format("{}: a {} name must be a string, got {}", location(source, key), what,
                                  show(key)));
  }
  return key.Scalar();
}

void read_document(const YAML::Node& root, const std::string& source, Config& c) {
  if (root.IsNull()) return;
  if (!root.IsMap()) {
    throw ConfigError(fmt::format("{}: the top level must be a mapping of sections ({}), got {}",
                                  location(source, root), join(section_names(), ", "), show(root)));
  }
  std::set<std::string> seen_sections;
  for (const auto& sec_kv : root) {
    const std::string name = key_text(sec_kv.first, source, "section");
    const std::string sec_where = location(source, sec_kv.first);
    if (!seen_sections.insert(name).second) {
      throw ConfigError(fmt::format("{}: section '{}' appears twice", sec_where, name));
    }
    with_section(c, name, sec_where, [&](const char* sname, auto& section) {
      const YAML::Node& body = sec_kv.second;
      if (body.IsNull()) return;  // a section whose keys are all commented out
      if (!body.IsMap()) {
        throw ConfigError(fmt::format("{}: section '{}' must be a mapping of keys, got {}", sec_where,
                                      sname, show(body)));
      }
      std::set<std::string> seen_keys;
      for (const auto& kv : body) {
        const std::string key = key_text(kv.first, source, "key");
        const std::string where = location(source, kv.first);
        if (!seen_keys.insert(key).second) {
          throw ConfigError(fmt::format("{}: key '{}.{}' appears twice", where, sname, key));
        }
        assign(section, sname, key, kv.second, where);
      }
    });
  }
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

void apply_override(Config& c, const std::string& text) {
  const std::string where = fmt::format("override '{}'", text);
  const size_t eq = text.find('=');
  const std::string path = trim(text.substr(0, eq));
  const size_t dot = path.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == path.size()) {
    throw ConfigError(fmt::format("{}: expected section.key=value, e.g. train.lr=1e-4 or "
                                  "unlearn.forget=[dog, cat]", where));
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: the value is not valid YAML ({}); quote it, "
                                  "e.g. key='\"a: b\"'", where, e.msg));
  }
  // "[dog cat]" is one item "dog cat" to YAML; a list needs commas (a name with a space is quoted).
  const std::string raw = trim(text.substr(eq + 1));
  if (value.IsSequence() && raw.find(',') == std::string::npos && raw.find_first_of("'\"") == std::string::npos) {
    for (const auto& item : value) {
      if (item.IsScalar() && item.Scalar().find_first_of(" \t") != std::string::npos) {
        throw ConfigError(fmt::format("{}: '{}' would be one item '{}'; separate list items with commas, e.g. "
                                      "{}=[a, b], and quote a name that has a space: {}=['ankle boot']",
                                      where, raw, item.Scalar(), path, path));
      }
    }
  }
  with_section(c, path.substr(0, dot), where, [&](const char* sname, auto& section) {
    assign(section, sname, path.substr(dot + 1), value, where);
  });
}

[[noreturn]] void invalid(const std::string& key, const std::string& shown, const std::string& rule) {
  throw ConfigError(fmt::format("invalid value {} for {}: {}", shown, key, rule));
}

// Non-finite doubles would be written as "inf"/"nan", which do not read back.
struct FiniteCheck {
  const char* section;
  template <class T>
  void operator()(const char* key, const T& field, const char*) {
    if constexpr (std::is_same_v<T, double>) {
      if (std::isfinite(field)) return;
      invalid(std::string(section) + "." + key, format_value(field), "must be finite");
    }
  }
};


std::string escape_cell(const std::string& s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  check_yaml_text(yaml_text, source);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", source, e.mark.line + 1,
                                  e.mark.column + 1, yaml_error_text(e)));
  }
  RUNNER_CHECK(docs.size() <= 1, ConfigError,
               fmt::format("{}: {} YAML documents (separated by ---); a config is one document", source,
                           docs.size()));
  Config c;
  try {
    if (!docs.empty()) read_document(docs[0], source, c);
  } catch (const YAML::Exception& e) {  // not expected: every conversion above is checked
    throw ConfigError(fmt::format("{}: {}", source, e.what()));
  }
  for (const std::string& o : overrides) apply_override(c, o);
  try {
    validate(c);
  } catch (const ConfigError& e) {
    const char* with = overrides.empty() ? "" : " (with --set overrides)";
    throw ConfigError(fmt::format("{}{}: {}", source, with, e.what()));
  }
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(read_config_text(path, "config file"), path, overrides);
}

std::string to_yaml(const Config& c) {
  Config copy = c;  // the field lists take mutable sections; writing only reads them
  std::string out;
  for_each_section(copy, [&](const char* name, const char*, auto& section) {
    out += fmt::format("{}:\n", name);
    auto write = [&](const char* key, const auto& field, const char*) {
      out += fmt::format("  {}: {}\n", key, format_value(field));
    };
    visit(write, section);
  });
  return out;
}

void validate(const Config& c) {
  Config copy = c;
  for_each_section(copy, [&](const char* name, const char*, auto& section) {
    FiniteCheck check{name};
    visit(check, section);
  });

  validate_values(c);
}

std::string reference_markdown() {
  Config defaults;
  std::string out;
  for_each_section(defaults, [&](const char* name, const char* about, auto& section) {
    out += fmt::format("### `{}`: {}\n\n", name, about);
    out += "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
    auto row = [&](const char* key, const auto& field, const char* meaning) {
      std::string text = meaning;
      if (!is_semantic(name, key)) text += " (not part of the run id)";
      out += fmt::format("| `{}` | {} | `{}` | {} |\n", key, type_name(field),
                         escape_cell(format_value(field)), escape_cell(text));
    };
    visit(row, section);
    out += "\n";
  });
  out.pop_back();  // one blank line between tables, none after the last
  return out;
}

std::string run_dir(const Config& c) { return c.output.dir.empty() ? "results/runs/" + semantic_hash(c) : c.output.dir; }

std::string semantic_hash(const Config& c) {
  // One "section.key: value" line per semantic key: the same text on every machine, because
  // values are formatted without locale and doubles in their shortest round-trip form.
  Config copy = c;
  std::string text;
  for_each_section(copy, [&](const char* name, const char*, auto& section) {
    auto line = [&](const char* key, const auto& field, const char*) {
      if (is_semantic(name, key)) text += fmt::format("{}.{}: {}\n", name, key, format_value(field));
    };
    visit(line, section);
  });
  return fmt::format("{:016x}", core::fnv1a64(text));
}

}  // namespace runner::config
