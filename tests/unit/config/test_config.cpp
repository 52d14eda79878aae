// Unit tests of src/config: defaults, YAML round trip, key and type errors, --set overrides,
// validation, the semantic hash and docs/config.md kept equal to reference_markdown().
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/sweep_spec.h"
#include "core/error.h"

namespace runner::config {
namespace {

constexpr size_t kFieldCount = 77;  // every field of every section in config.h

bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }  // bits, so -0.0 != 0.0
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}

// Names of the fields where a and b differ; written out by hand (not through config.cpp's field
// lists) so that a field missing from those lists shows up as a round-trip failure.
std::vector<std::string> diff(const Config& a, const Config& b) {
  std::vector<std::string> out;
#define RUNNER_FIELD(sec, name) \
  if (!same(a.sec.name, b.sec.name)) out.push_back(#sec "." #name)
  RUNNER_FIELD(data, file); RUNNER_FIELD(data, batch_size); RUNNER_FIELD(data, prefetch);
  RUNNER_FIELD(data, tail); RUNNER_FIELD(data, tokenizer); RUNNER_FIELD(data, vocab_file);
  RUNNER_FIELD(data, word_min_count); RUNNER_FIELD(data, val_fraction); RUNNER_FIELD(data, val_seed);
  RUNNER_FIELD(data, augment); RUNNER_FIELD(data, decode_threads);
  RUNNER_FIELD(model, kind); RUNNER_FIELD(model, preset); RUNNER_FIELD(model, init);
  RUNNER_FIELD(model, curv_init); RUNNER_FIELD(model, curv_learn); RUNNER_FIELD(model, embed_dim);
  RUNNER_FIELD(model, vision_ln_eps);
  RUNNER_FIELD(train, steps); RUNNER_FIELD(train, lr); RUNNER_FIELD(train, weight_decay);
  RUNNER_FIELD(train, beta1); RUNNER_FIELD(train, beta2); RUNNER_FIELD(train, eps);
  RUNNER_FIELD(train, warmup_steps); RUNNER_FIELD(train, entail_weight); RUNNER_FIELD(train, seed);
  RUNNER_FIELD(train, checkpoint_every); RUNNER_FIELD(train, keep_checkpoints); RUNNER_FIELD(train, log_every);
  RUNNER_FIELD(unlearn, method); RUNNER_FIELD(unlearn, original); RUNNER_FIELD(unlearn, forget); RUNNER_FIELD(unlearn, forget_captions);
  RUNNER_FIELD(unlearn, forget_descendants); RUNNER_FIELD(unlearn, steps); RUNNER_FIELD(unlearn, lr);
  RUNNER_FIELD(unlearn, weight_decay); RUNNER_FIELD(unlearn, warmup_steps); RUNNER_FIELD(unlearn, curv_learn);
  RUNNER_FIELD(unlearn, alpha); RUNNER_FIELD(unlearn, partners); RUNNER_FIELD(unlearn, beta); RUNNER_FIELD(unlearn, beta_scaled);
  RUNNER_FIELD(unlearn, pos_mode); RUNNER_FIELD(unlearn, pos_margin); RUNNER_FIELD(unlearn, entcal);
  RUNNER_FIELD(unlearn, entcal_weight); RUNNER_FIELD(unlearn, entcal_margin);
  RUNNER_FIELD(unlearn, entcal_retain); RUNNER_FIELD(unlearn, entcal_partner); RUNNER_FIELD(unlearn, norm);
  RUNNER_FIELD(unlearn, norm_weight); RUNNER_FIELD(unlearn, norm_mode); RUNNER_FIELD(unlearn, l1_weight);
  RUNNER_FIELD(unlearn, pos_margin_ratio); RUNNER_FIELD(unlearn, entcal_aperture); RUNNER_FIELD(unlearn, norm_retain);
  RUNNER_FIELD(unlearn, norm_scaled); RUNNER_FIELD(unlearn, freeze_alphas);
  RUNNER_FIELD(eval, enabled); RUNNER_FIELD(eval, split); RUNNER_FIELD(eval, max_rows);
  RUNNER_FIELD(eval, templates); RUNNER_FIELD(eval, display_names); RUNNER_FIELD(eval, batch_size); RUNNER_FIELD(eval, audit_rows);
  RUNNER_FIELD(eval, retrain); RUNNER_FIELD(eval, knn_k); RUNNER_FIELD(eval, knn_bank_rows);
  RUNNER_FIELD(eval, cka_rows); RUNNER_FIELD(eval, embedding_rows); RUNNER_FIELD(eval, seed);
  RUNNER_FIELD(dist, threads); RUNNER_FIELD(dist, device);
  RUNNER_FIELD(output, dir); RUNNER_FIELD(output, resume);
#undef RUNNER_FIELD
  return out;
}

// Valid, and different from the default in every field, with strings and doubles that are hard
// to write as YAML.
Config unusual_config() {
  Config c;
  c.data.file = "/data/cc3m \"train\" #1.h5";
  c.data.batch_size = 7;
  c.data.prefetch = 0;
  c.data.tail = "pad";
  c.data.tokenizer = "clip_bpe";
  c.data.vocab_file = "yes";  // a YAML 1.1 bool word as a string
  c.data.word_min_count = 3;
  c.data.val_fraction = 0.125;
  c.data.val_seed = 9;
  c.data.augment = "random_resized_crop";
  c.data.decode_threads = 6;
  c.model.kind = "clip";
  c.model.preset = "vit_b";
  c.model.init = "123";  // a number as a string
  c.model.curv_init = 0.1;
  c.model.curv_learn = false;
  c.model.embed_dim = 512;
  c.model.vision_ln_eps = 1e-6;
  c.train.steps = 12345;
  c.train.lr = 1.0 / 3.0;
  c.train.weight_decay = 0.0;
  c.train.beta1 = 0.95;
  c.train.beta2 = 0.999;
  c.train.eps = std::numeric_limits<double>::denorm_min();
  c.train.warmup_steps = 0;
  c.train.entail_weight = 1e300;
  c.train.seed = -42;
  c.train.checkpoint_every = 50;
  c.train.keep_checkpoints = 5;
  c.train.log_every = 1;
  c.unlearn.method = "ac";
  c.unlearn.original = "C:\\models\\orig: v1.pt";
  c.unlearn.forget = {"dog", "hot dog", "null", "a,b", "[x]", "\xc3\xbcnicode", "tab\there", "~", "-1"};
  c.unlearn.forget_captions = {"hot dog", "cat"};
  c.unlearn.forget_descendants = false;
  c.unlearn.steps = 0;
  c.unlearn.lr = 0.1 + 0.2;  // 0.30000000000000004
  c.unlearn.weight_decay = 1e-3;
  c.unlearn.warmup_steps = 7;
  c.unlearn.curv_learn = true;
  c.unlearn.alpha = 2.5;
  c.unlearn.partners = "retain_caption";
  c.unlearn.beta = 0.0;
  c.unlearn.beta_scaled = false;
  c.unlearn.pos_mode = "hinge";
  c.unlearn.pos_margin = 0.7;
  c.unlearn.entcal = false;
  c.unlearn.entcal_weight = 123456789.0;
  c.unlearn.entcal_margin = 0.05;
  c.unlearn.entcal_retain = false;
  c.unlearn.entcal_partner = true;
  c.unlearn.norm = false;
  c.unlearn.norm_weight = 1e-7;
  c.unlearn.norm_mode = "anchor_retain";
  c.unlearn.l1_weight = 0.0;
  c.unlearn.pos_margin_ratio = 2.25;
  c.unlearn.entcal_aperture = "original";
  c.unlearn.norm_retain = true;
  c.unlearn.norm_scaled = true;
  c.unlearn.freeze_alphas = true;
  c.eval.enabled = false;
  c.eval.split = "train";
  c.eval.max_rows = 77;
  c.eval.templates = {"{}: \"quoted\", #not a comment", "a photo of a {}."};
  c.eval.display_names = {"dog=a dog", "hot dog=sausage in a bun"};
  c.eval.batch_size = 9;
  c.eval.audit_rows = 5;
  c.eval.retrain = "results/x/retrain run/model.pt";
  c.eval.knn_k = 3;
  c.eval.knn_bank_rows = 11;
  c.eval.cka_rows = 2;
  c.eval.embedding_rows = 0;
  c.eval.seed = 4;
  c.dist.threads = 3;
  c.dist.device = "cuda";
  c.output.dir = "results/sweep/run-1";
  c.output.resume = false;
  return c;
}

// The ConfigError message of parsing `text` (with overrides); fails the test when none is thrown.
std::string config_error(const std::string& text, const std::vector<std::string>& overrides = {},
                         const std::string& source = "runs/a.yaml") {
  try {
    parse_config(text, source, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text << "\noverrides: " << overrides.size();
  return "";
}

TEST(ConfigDefaults, EmptyTextCommentsAndEmptySectionsGiveDefaults) {
  EXPECT_TRUE(diff(Config{}, parse_config("", "a.yaml")).empty());
  EXPECT_TRUE(diff(Config{}, parse_config("# nothing set\n", "a.yaml")).empty());
  EXPECT_TRUE(diff(Config{}, parse_config("train:\n  # steps: 5\nunlearn:\n", "a.yaml")).empty());
  const Config c = parse_config("data:\n  batch_size: 16\n", "a.yaml");
  EXPECT_EQ(c.data.batch_size, 16);
  EXPECT_EQ(diff(c, Config{}), std::vector<std::string>{"data.batch_size"});
  EXPECT_EQ(c.model.kind, "meru");
  EXPECT_TRUE(c.unlearn.forget.empty());
  EXPECT_NO_THROW(validate(Config{}));
}

TEST(ConfigYaml, DefaultTextIsPlainAndOrdered) {
  const std::string y = to_yaml(Config{});
  EXPECT_EQ(y.rfind("data:\n  file: \"\"\n  batch_size: 128\n  prefetch: 4\n  tail: drop\n", 0), 0u) << y;
  EXPECT_NE(y.find("\n  lr: 0.0005\n"), std::string::npos) << y;
  EXPECT_NE(y.find("\n  curv_init: 1.0\n"), std::string::npos) << y;
  EXPECT_NE(y.find("\n  eps: 1.0e-08\n"), std::string::npos) << y;  // a float to YAML 1.1 too
  EXPECT_NE(y.find("\n  forget: []\n"), std::string::npos) << y;
  EXPECT_LT(y.find("\nmodel:\n"), y.find("\ntrain:\n"));
  EXPECT_LT(y.find("\nunlearn:\n"), y.find("\ndist:\n"));
  EXPECT_LT(y.find("\ndist:\n"), y.find("\noutput:\n"));
}

TEST(ConfigYaml, RoundTripIsExactForEveryField) {
  const Config c = unusual_config();
  ASSERT_NO_THROW(validate(c));
  ASSERT_EQ(diff(c, Config{}).size(), kFieldCount) << "unusual_config() must change every field";
  const std::string text = to_yaml(c);
  Config back;
  ASSERT_NO_THROW(back = parse_config(text, "resolved.yaml")) << text;
  EXPECT_EQ(diff(back, c), std::vector<std::string>{}) << text;
  EXPECT_EQ(to_yaml(back), text);
  EXPECT_EQ(back.unlearn.forget.size(), 9u);
}

TEST(ConfigYaml, DoublesRoundTripBitForBit) {
  for (double d : {0.1, 1.0 / 3.0, 2.0 / 3.0, 1e-300, 5e-324, 1.7976931348623157e308, 123456789012345678.0,
                   9007199254740993.0, 0.30000000000000004, 1.0, 1e16, 1e-5, -0.0}) {
    Config c;  // every d is >= 0 (-0.0 included), so each is a valid weight
    c.unlearn.alpha = d;
    c.train.weight_decay = d;
    c.model.curv_init = d == 0 ? 1.0 : d;
    const Config back = parse_config(to_yaml(c), "a.yaml");
    EXPECT_TRUE(same(back.unlearn.alpha, d)) << d;
    EXPECT_TRUE(same(back.train.weight_decay, d)) << d;
    EXPECT_TRUE(same(back.model.curv_init, c.model.curv_init)) << d;
  }
  Config neg;
  neg.train.seed = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(parse_config(to_yaml(neg), "a.yaml").train.seed, std::numeric_limits<int64_t>::min());
}

TEST(ConfigYaml, AcceptedSpellings) {
  const Config c = parse_config(
      "model:\n  curv_init: 2\n  curv_learn: no\ntrain:\n  lr: +1e-3\n  seed: -7\n  steps: +5\n"
      "unlearn:\n  forget:\n    - dog\n    - 'cat'\n  norm: False\n  original:\n",
      "a.yaml");
  EXPECT_EQ(c.model.curv_init, 2.0);
  EXPECT_FALSE(c.model.curv_learn);
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.seed, -7);
  EXPECT_EQ(c.train.steps, 5);
  EXPECT_EQ(c.unlearn.forget, (std::vector<std::string>{"dog", "cat"}));
  EXPECT_FALSE(c.unlearn.norm);
  EXPECT_EQ(c.unlearn.original, "");
}

TEST(ConfigErrors, UnknownKeyNamesFileKeyAndKnownKeys) {
  const std::string m = config_error("train:\n  steps: 5\n  lr_max: 1\n");
  EXPECT_NE(m.find("runs/a.yaml:3"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key 'train.lr_max'"), std::string::npos) << m;
  EXPECT_NE(m.find("warmup_steps"), std::string::npos) << m;  // part of the known-key list
}

TEST(ConfigErrors, UnknownSectionNamesFileAndSection) {
  const std::string m = config_error("data:\n  batch_size: 4\nevaluation:\n  k: 5\n");
  EXPECT_NE(m.find("runs/a.yaml:3"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown section 'evaluation'"), std::string::npos) << m;
  EXPECT_NE(m.find("unlearn"), std::string::npos) << m;
}

TEST(ConfigErrors, TypeErrorsNameTheKeyAndValue) {
  struct Case {
    const char* text;
    const char* key;
    const char* value;
  };
  for (const Case& k : std::vector<Case>{
           {"train:\n  steps: many\n", "train.steps", "'many'"},
           {"train:\n  steps: 1.5\n", "train.steps", "'1.5'"},
           {"train:\n  steps: 1e3\n", "train.steps", "'1e3'"},
           {"train:\n  steps: \"5\"\n", "train.steps", "quoted string '5'"},
           {"train:\n  steps: 99999999999999999999\n", "train.steps", "int64"},
           {"train:\n  steps:\n", "train.steps", "null"},
           {"train:\n  lr: fast\n", "train.lr", "'fast'"},
           {"train:\n  lr: .inf\n", "train.lr", "'.inf'"},
           {"train:\n  lr: 1e999\n", "train.lr", "'1e999'"},
           {"model:\n  curv_learn: 1\n", "model.curv_learn", "'1'"},
           {"model:\n  curv_learn: 0\n", "model.curv_learn", "'0'"},
           {"model:\n  curv_learn: \"true\"\n", "model.curv_learn", "quoted"},
           {"data:\n  file: [a.h5, b.h5]\n", "data.file", "a list"},
           {"data:\n  batch_size: {a: 1}\n", "data.batch_size", "a mapping"},
           {"unlearn:\n  forget: dog\n", "unlearn.forget", "'dog'"},
           {"unlearn:\n  forget: [[a]]\n", "unlearn.forget", "a list"},
       }) {
    const std::string m = config_error(k.text);
    EXPECT_NE(m.find("runs/a.yaml:2"), std::string::npos) << k.text << " -> " << m;
    EXPECT_NE(m.find(std::string("'") + k.key + "'"), std::string::npos) << k.text << " -> " << m;
    EXPECT_NE(m.find(k.value), std::string::npos) << k.text << " -> " << m;
  }
}

TEST(ConfigErrors, StructureErrors) {
  EXPECT_NE(config_error("[1, 2]\n").find("top level must be a mapping"), std::string::npos);
  EXPECT_NE(config_error("just text\n").find("top level must be a mapping"), std::string::npos);
  const std::string not_map = config_error("train: 5\n");
  EXPECT_NE(not_map.find("section 'train' must be a mapping"), std::string::npos) << not_map;
  const std::string dup = config_error("train:\n  steps: 5\n  steps: 6\n");
  EXPECT_NE(dup.find("runs/a.yaml:3: key 'train.steps' appears twice"), std::string::npos) << dup;
  const std::string dup_sec = config_error("train:\n  steps: 5\ntrain:\n  lr: 1\n");
  EXPECT_NE(dup_sec.find("section 'train' appears twice"), std::string::npos) << dup_sec;
  const std::string docs = config_error("train:\n  steps: 5\n---\ntrain:\n  steps: 6\n");
  EXPECT_NE(docs.find("2 YAML documents"), std::string::npos) << docs;
}

TEST(ConfigErrors, SyntaxErrorNamesFileAndLine) {
  const std::string m = config_error("data:\n  batch_size: 4\n  file: a: b\n");
  EXPECT_NE(m.find("runs/a.yaml:3:"), std::string::npos) << m;
  EXPECT_NE(m.find("YAML syntax error"), std::string::npos) << m;
  const std::string open = config_error("unlearn:\n  forget: [dog, cat\n\n");
  EXPECT_NE(open.find("runs/a.yaml:"), std::string::npos) << open;
  EXPECT_EQ(open.find("runs/a.yaml:1:"), std::string::npos) << open;  // not the first line
}

TEST(ConfigOverrides, ScalarsListsAndBools) {
  const Config c = parse_config("train:\n  steps: 10\nunlearn:\n  forget: [dog]\n", "a.yaml",
                                {"train.steps=20", "train.lr=1e-4", "output.dir=/tmp/x:y #a YAML comment",
                                 "unlearn.forget=[cat, 'hot dog']", "model.curv_learn=false", "train.steps=30",
                                 " data.tail = pad"});
  EXPECT_EQ(c.train.steps, 30);  // the last override of a key wins, over the file
  EXPECT_EQ(c.train.lr, 1e-4);
  EXPECT_EQ(c.output.dir, "/tmp/x:y");  // YAML: " #" starts a comment, so quote such a value
  EXPECT_EQ(c.unlearn.forget, (std::vector<std::string>{"cat", "hot dog"}));
  EXPECT_FALSE(c.model.curv_learn);
  EXPECT_EQ(c.data.tail, "pad");
  EXPECT_EQ(parse_config("", "a.yaml", {"output.dir=run#1"}).output.dir, "run#1");
  EXPECT_EQ(parse_config("", "a.yaml", {"unlearn.forget=[solo]"}).unlearn.forget,
            std::vector<std::string>{"solo"});
}

TEST(ConfigOverrides, EmptyValueClearsListsAndStrings) {
  const std::string file = "unlearn:\n  forget: [dog, cat]\n  original: orig.pt\n";
  EXPECT_TRUE(parse_config(file, "a.yaml", {"unlearn.forget="}).unlearn.forget.empty());
  EXPECT_TRUE(parse_config(file, "a.yaml", {"unlearn.forget=[]"}).unlearn.forget.empty());
  EXPECT_EQ(parse_config(file, "a.yaml", {"unlearn.original="}).unlearn.original, "");
  EXPECT_EQ(parse_config(file, "a.yaml", {"unlearn.original=\"\""}).unlearn.original, "");
}

TEST(ConfigOverrides, ErrorsNameTheOverride) {
  struct Case {
    const char* override_text;
    const char* expected;
  };
  for (const Case& k : std::vector<Case>{
           {"train.steps", "expected section.key=value"},
           {"steps=5", "expected section.key=value"},
           {"=5", "expected section.key=value"},
           {"train.=5", "expected section.key=value"},
           {".steps=5", "expected section.key=value"},
           {"train.lr_max=1", "unknown key 'train.lr_max'"},
           {"training.steps=1", "unknown section 'training'"},
           {"train.steps=abc", "key 'train.steps' must be an integer"},
           {"model.curv_learn=1", "key 'model.curv_learn' must be true or false"},
           {"unlearn.forget=[dog", "not valid YAML"},
       }) {
    const std::string m = config_error("", {k.override_text});
    EXPECT_NE(m.find(std::string("override '") + k.override_text + "'"), std::string::npos) << m;
    EXPECT_NE(m.find(k.expected), std::string::npos) << k.override_text << " -> " << m;
  }
}

TEST(ConfigValidate, EnumerationsAndRangesNameKeyAndValue) {
  struct Case {
    const char* override_text;
    const char* key;
    const char* shown;
  };
  for (const Case& k : std::vector<Case>{
           {"data.tail=wrap", "data.tail", "'wrap'"},
           {"data.tokenizer=bpe", "data.tokenizer", "'bpe'"},
           {"data.tokenizer=clip_bpe", "data.vocab_file", "clip_bpe"},
           {"model.kind=siglip", "model.kind", "'siglip'"},
           {"model.preset=vit_h", "model.preset", "vit_l"},
           {"unlearn.pos_mode=cos", "unlearn.pos_mode", "'cos'"},
           {"unlearn.norm_mode=fixed", "unlearn.norm_mode", "anchor_retain"},
           {"unlearn.pos_mode=bounded", "unlearn.pos_mode", "rescaled"},
           {"unlearn.entcal_aperture=later", "unlearn.entcal_aperture", "original"},
           {"dist.device=tpu", "dist.device", "'tpu'"},
           {"data.batch_size=0", "data.batch_size", ">= 1"},
           {"data.prefetch=-1", "data.prefetch", "-1"},
           {"data.word_min_count=0", "data.word_min_count", ">= 1"},
           {"data.val_fraction=1", "data.val_fraction", "[0, 1)"},
           {"eval.split=val", "eval.split", "data.val_fraction > 0"},
           {"train.steps=0", "train.steps", ">= 1"},
           {"unlearn.steps=-1", "unlearn.steps", ">= 0"},
           {"train.lr=0", "train.lr", "> 0"},
           {"unlearn.lr=-1e-5", "unlearn.lr", "-1.0e-05"},
           {"train.beta1=1", "train.beta1", "[0, 1)"},
           {"train.beta2=-0.1", "train.beta2", "-0.1"},
           {"train.eps=0", "train.eps", "> 0"},
           {"train.warmup_steps=-1", "train.warmup_steps", ">= 0"},
           {"train.weight_decay=-0.5", "train.weight_decay", ">= 0"},
           {"train.entail_weight=-1", "train.entail_weight", ">= 0"},
           {"unlearn.alpha=-1", "unlearn.alpha", "-1.0"},
           {"unlearn.partners=any", "unlearn.partners", "same_concept"},
           {"unlearn.beta=-2", "unlearn.beta", ">= 0"},
           {"unlearn.entcal_weight=-0.2", "unlearn.entcal_weight", ">= 0"},
           {"unlearn.entcal_margin=-0.1", "unlearn.entcal_margin", ">= 0"},
           {"unlearn.norm_weight=-1", "unlearn.norm_weight", ">= 0"},
           {"unlearn.pos_margin=-1", "unlearn.pos_margin", ">= 0"},
           {"unlearn.pos_margin_ratio=-1", "unlearn.pos_margin_ratio", ">= 0"},
           {"unlearn.l1_weight=-1", "unlearn.l1_weight", ">= 0"},
           {"unlearn.forget=[dog, '']", "unlearn.forget", "empty"},
           {"model.curv_init=0", "model.curv_init", "> 0"},
           {"model.embed_dim=-8", "model.embed_dim", "-8"},
           {"train.checkpoint_every=-1", "train.checkpoint_every", ">= 0"},
           {"train.keep_checkpoints=0", "train.keep_checkpoints", ">= 1"},
           {"train.log_every=0", "train.log_every", ">= 1"},
           {"dist.threads=-2", "dist.threads", ">= 0"},
       }) {
    const std::string m = config_error("", {k.override_text});
    EXPECT_NE(m.find("runs/a.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find(k.key), std::string::npos) << k.override_text << " -> " << m;
    EXPECT_NE(m.find(k.shown), std::string::npos) << k.override_text << " -> " << m;
  }
}

TEST(ConfigValidate, BoundariesThatAreAllowed) {
  EXPECT_NO_THROW(parse_config("", "a.yaml",
                               {"unlearn.steps=0", "data.prefetch=0", "train.beta1=0", "train.beta2=0.9999",
                                "train.warmup_steps=0", "unlearn.alpha=0", "model.embed_dim=0", "dist.threads=0",
                                "train.checkpoint_every=0", "data.tokenizer=clip_bpe",
                                "data.vocab_file=bpe_simple_vocab_16e6.txt.gz", "unlearn.method=none"}));
  Config c;
  c.unlearn.beta = std::nan("");
  EXPECT_THROW(validate(c), ConfigError);  // NaN passes no ">= 0"
  c = Config{};
  c.train.entail_weight = std::numeric_limits<double>::infinity();
  try {
    validate(c);
    FAIL() << "infinite weight accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.entail_weight"), std::string::npos) << e.what();
  }
}

TEST(ConfigHash, PinnedForTheDefaultConfig) {
  // Changes only when a semantic field or its default changes; then update the pin on purpose
  // (every run id changes with it).
  EXPECT_EQ(semantic_hash(Config{}), "aa6761c79aa04d4d");  // since data.augment
}

// Without output.dir a run writes to results/runs/<run id>: hand-launched runs never share a folder.
TEST(ConfigDefaults, RunDirectoryIsPerRunId) {
  Config c;
  EXPECT_EQ(c.output.dir, "");
  EXPECT_EQ(run_dir(c), "results/runs/" + semantic_hash(c));
  c.unlearn.steps = 7;
  EXPECT_EQ(run_dir(c), "results/runs/" + semantic_hash(c));
  EXPECT_NE(run_dir(c), run_dir(Config{}));
  c.output.dir = "mine";
  EXPECT_EQ(run_dir(c), "mine");
}

TEST(ConfigValues, KeywordsAndDisplayNamesAreChecked) {
  EXPECT_NE(config_error("unlearn:\n  forget_captions: [cat, \" \"]\n").find("unlearn.forget_captions"),
            std::string::npos);
  EXPECT_NE(config_error("eval:\n  display_names: [dogpictures]\n").find("concept=display name"), std::string::npos);
  EXPECT_NE(config_error("eval:\n  display_names: [=dog]\n").find("eval.display_names"), std::string::npos);
  const Config c = parse_config("", "a.yaml", {"eval.display_names=[dogpictures=dog, cats=a cat]",
                                                "unlearn.forget_captions=['hot dog']"});
  EXPECT_EQ(c.eval.display_names, (std::vector<std::string>{"dogpictures=dog", "cats=a cat"}));
  EXPECT_EQ(c.unlearn.forget_captions, (std::vector<std::string>{"hot dog"}));
}

TEST(ConfigHash, IgnoresOutputAndLoggingKeys) {
  const Config base = unusual_config();
  Config c = base;
  c.output.dir = "elsewhere";
  c.output.resume = !c.output.resume;
  c.train.log_every = 1000;
  c.dist.threads = 64;
  c.data.prefetch = 17;
  c.data.decode_threads = 1;  // how many threads decode, not what they produce
  c.eval = EvalConfig{};  // `hac eval` re-evaluates a run without changing its id
  EXPECT_EQ(semantic_hash(c), semantic_hash(base));
  const std::string h = semantic_hash(base);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
}

TEST(ConfigHash, ChangesWithSemanticKeys) {
  const Config base;
  const std::string h = semantic_hash(base);
  Config c = base;
  c.unlearn.alpha = 0.5;
  EXPECT_NE(semantic_hash(c), h);
  c = base;
  c.data.augment = "random_resized_crop";
  EXPECT_NE(semantic_hash(c), h);
  c = base;
  c.unlearn.forget = {"dog"};
  EXPECT_NE(semantic_hash(c), h);
  c.unlearn.forget = {"dog", "cat"};
  EXPECT_NE(semantic_hash(c), semantic_hash(parse_config("", "a.yaml", {"unlearn.forget=[dog]"})));
  c = base;
  c.train.lr = 5e-4 + 1e-19;  // the next double counts
  EXPECT_NE(c.train.lr, base.train.lr);
  EXPECT_NE(semantic_hash(c), h);
  c = base;
  c.dist.device = "cuda";
  EXPECT_NE(semantic_hash(c), h);
  Config a = base, b = base;  // the same text under different keys
  a.data.file = "x";
  b.model.init = "x";
  EXPECT_NE(semantic_hash(a), semantic_hash(b));
}

// Keys listed by to_yaml, as "section.key".
std::vector<std::string> all_keys() {
  std::vector<std::string> keys;
  std::istringstream in(to_yaml(Config{}));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.rfind("  ", 0) == 0) {
      keys.push_back(section + "." + line.substr(2, line.find(':') - 2));
    } else {
      section = line.substr(0, line.find(':'));
    }
  }
  return keys;
}

TEST(ConfigReference, MentionsEveryKeyInItsSection) {
  const std::string ref = reference_markdown();
  const std::vector<std::string> keys = all_keys();
  ASSERT_EQ(keys.size(), kFieldCount);
  for (const std::string& k : keys) {
    const std::string section = k.substr(0, k.find('.'));
    const size_t start = ref.find("### `" + section + "`");
    ASSERT_NE(start, std::string::npos) << section;
    const size_t next = ref.find("### ", start + 1);
    const size_t row = ref.find("\n| `" + k.substr(k.find('.') + 1) + "` |", start);
    EXPECT_TRUE(row != std::string::npos && row < next) << k << " is not in the table of " << section;
  }
  EXPECT_NE(ref.find("| `batch_size` | int | `128` | rows per rank and step |"), std::string::npos) << ref;
  EXPECT_NE(ref.find("| `tail` | string | `drop` | drop \\| pad:"), std::string::npos) << ref;
  EXPECT_NE(ref.find("| `forget` | list of strings | `[]` |"), std::string::npos) << ref;
  EXPECT_NE(ref.find("`log_every` | int | `10` | steps between progress lines on rank 0 (not part of the run id)"),
            std::string::npos) << ref;
}

TEST(ConfigDocs, ReferenceInDocsMatchesTheStructs) {
  // To regenerate: put the output of `hac config --reference` between the markers.
  const std::string path = std::string(RUNNER_SOURCE_DIR) + "/docs/config.md";
  const std::string begin = "<!-- reference:begin -->\n", end = "<!-- reference:end -->";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream buf;
  buf << in.rdbuf();
  std::string doc = buf.str();
  const size_t b = doc.find(begin);
  const size_t e = doc.find(end);
  ASSERT_TRUE(b != std::string::npos && e != std::string::npos && b < e) << path << " lacks the markers";
  const std::string expected = reference_markdown() + "\n";
  EXPECT_TRUE(doc.substr(b + begin.size(), e - b - begin.size()) == expected)
      << path << " is out of date; put the output of `hac config --reference` between the markers:\n"
      << expected;
}

TEST(ConfigLoad, ReadsFilesAndNamesThemInErrors) {
  const std::string dir = ::testing::TempDir();
  const std::string good = dir + "/hac_config_good.yaml";
  std::ofstream(good) << "train:\n  steps: 9\n";
  const Config c = load_config(good, {"train.seed=4"});
  EXPECT_EQ(c.train.steps, 9);
  EXPECT_EQ(c.train.seed, 4);
  const std::string bad = dir + "/hac_config_bad.yaml";
  std::ofstream(bad) << "train:\n  stepz: 9\n";
  try {
    load_config(bad);
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":2"), std::string::npos) << e.what();
  }
  // A missing file and a directory are config errors (exit 2) naming the path.
  const std::string missing = dir + "/hac_config_missing.yaml";
  try {
    load_config(missing);
    FAIL() << "missing file accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  try {
    load_config(dir);
    FAIL() << "a directory accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("it is a directory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_sweep_spec(dir), ConfigError);
}

// Damaged text: a NUL byte and nesting beyond the reader's limit are named as what they are.
TEST(ConfigErrors, NulBytesAndDeepNestingAreNamed) {
  try {
    parse_config(std::string("train:\n  steps: 5\0\n", 20), "nul.yaml");
    FAIL() << "a NUL byte accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nul.yaml:2: contains a NUL byte"), std::string::npos) << e.what();
  }
  const std::string deep = "a: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  for (int spec = 0; spec < 2; ++spec) {
    try {
      if (spec) {
        parse_sweep_spec(deep, "deep.yaml");
      } else {
        parse_config(deep, "deep.yaml");
      }
      FAIL() << "nesting beyond the limit accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("nested deeper than the YAML reader allows"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("bad file"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_sweep_spec(std::string("name: x\0", 8), "s.yaml"), ConfigError);
}

}  // namespace
}  // namespace runner::config
