// `hac eval`: the evaluation of a model (src/eval) on its own, and the hook that runs it at the
// end of `hac train` and `hac unlearn`.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/app.h"
#include "config/config.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "comm/runtime.h"
#include "eval/evaluate.h"
#include "models/pretrained.h"
#include "unlearn/registry.h"

namespace runner::app {

namespace fs = std::filesystem;

namespace {

struct EvalOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string model;     // default: output.dir/model.pt
  std::string original;  // default: unlearn.original
  bool no_original = false;
};

// Replaces "metrics" in an existing result.json (atomically), keeping every other key.
void update_result_metrics(const std::string& path, const std::string& metrics) {
  using json = nlohmann::ordered_json;
  json doc;
  try {
    doc = json::parse(core::read_text_file(path));
  } catch (const json::exception& e) {
    throw IoError(fmt::format("{}: not valid JSON ({}); metrics left in eval/metrics.json only", path, e.what()));
  }
  doc["metrics"] = json::parse(metrics);
  core::write_file_atomically(path, doc.dump(2) + "\n");
}

int run_eval(const EvalOptions& o) {
  config::Config cfg = config::load_config(o.config, o.overrides);
  cfg.output.dir = config::run_dir(cfg);
  unlearn::check_method(cfg);
  check_device(cfg, o.config);
  comm::InitOptions init;
  init.threads = static_cast<int>(cfg.dist.threads);
  auto comm = comm::init_world(init);
  const std::string model_path = o.model.empty() ? (fs::path(cfg.output.dir) / "model.pt").string() : o.model;
  std::map<std::string, std::string> extras;
  models::ModelOptions options;
  eval::Request r;
  r.cfg = cfg;
  r.comm = comm;
  r.model = models::load_model(model_path, &extras, &options);
  r.model->to(train::run_device(cfg, comm));  // the encoders run there; the metrics on the host
  r.tokenizer = models::checkpoint_tokenizer(extras, cfg.data.vocab_file, model_path);
  r.context_length = options.text.context_length;
  RUNNER_CHECK(!cfg.data.file.empty(), ConfigError, "data.file: no dataset given");
  r.file = data::DatasetFile::open(cfg.data.file, data::Holdout{cfg.data.val_fraction, static_cast<uint64_t>(cfg.data.val_seed)});
  data::check_image_shape(cfg.data.file, r.file->info().splits.at(cfg.eval.split).image, options.vision.image_size,
                          options.vision.channels, model_path);
  r.original = o.no_original ? "" : (o.original.empty() ? cfg.unlearn.original : o.original);
  r.out_dir = cfg.output.dir;
  const std::string metrics = eval::evaluate(r);
  const std::string result = (fs::path(cfg.output.dir) / "result.json").string();
  if (comm->rank() == 0 && fs::exists(result)) {
    update_result_metrics(result, metrics);
    core::log_info("eval: metrics written to {} and {}", result, (fs::path(cfg.output.dir) / "eval").string());
  }
  comm->barrier();
  comm::finalize_world();
  return 0;
}

}  // namespace

std::function<std::string(const train::Trained&)> evaluation_hook() {
  return [](const train::Trained& t) {
    eval::Request r;
    r.cfg = *t.cfg;
    r.comm = t.comm;
    r.model = models::ContrastiveModel(t.model);
    r.tokenizer = t.tokenizer;
    r.context_length = t.context_length;
    r.file = t.file;
    r.original = t.original;
    r.out_dir = t.dir;
    return eval::evaluate(r);
  };
}

void add_eval(CLI::App& app, Action& action) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a model: zero-shot, retrieval, membership audit, hierarchy, k-NN and CKA (docs/evaluation.md)");
  cmd->add_option("CONFIG", o->config, "YAML config (data.file, unlearn.forget, eval.*, output.dir)")->required();
  cmd->add_option("--set", o->overrides, "Override a key: --set section.key=value (repeatable)");
  cmd->add_option("--model", o->model, "Checkpoint to evaluate (default: output.dir/model.pt)");
  cmd->add_option("--original", o->original, "The model before unlearning (default: unlearn.original)");
  cmd->add_flag("--no-original", o->no_original, "Skip the before -> after comparison and CKA");
  cmd->callback([&action, o] { action = [o] { return run_eval(*o); }; });
}

}  // namespace runner::app
