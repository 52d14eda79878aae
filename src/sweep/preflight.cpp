// The sweep preflight (preflight.h): each file once, every problem collected, then the cost.
#include "sweep/preflight.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "geometry/pair.h"
#include "models/pretrained.h"
#include "sweep/status.h"

namespace runner::sweep {

namespace fs = std::filesystem;

namespace {

// The first line of an error message: enough to say what is wrong.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

struct Dataset {
  std::shared_ptr<data::DatasetFile> file;
  std::string error;
};

struct Checkpoint {
  bool ok = false;
  models::ModelOptions options;
  bool has_tokenizer = false;  // a hac checkpoint carries its word tokenizer
  std::string error;
};

class Checker {
 public:
  explicit Checker(const Grid& g) : g_(g) {}

  void job(const Job& j) {
    const config::Config& c = j.cfg;
    try {
      config::check_device_supported(c);
    } catch (const ConfigError& e) {
      add(first_line(e.what()));
    }
    // The model that reads the data: the original's preset for pretraining and for points whose
    // original the sweep trains, else the checkpoint the point starts from.
    std::optional<std::pair<int64_t, int64_t>> image;  // size, channels
    bool tokenizer_in_checkpoint = false;
    bool released = false;  // a loaded checkpoint without hac's tokenizer: CLIP's BPE it is
    std::string model_name;
    if (j.original || j.needs >= 0) {
      const config::Config& oc = j.original ? c : g_.originals.at(static_cast<size_t>(j.needs)).cfg;
      if (!oc.model.init.empty()) {
        const Checkpoint& k = checkpoint(oc.model.init, "model.init");
        if (k.ok) image = {{k.options.vision.image_size, k.options.vision.channels}};
      } else {
        try {
          const auto o = models::model_preset(oc.model.preset, geometry::parse_model_kind(oc.model.kind));
          image = {{o.vision.image_size, o.vision.channels}};
        } catch (const std::exception& e) {
          add(first_line(e.what()));
        }
      }
      model_name = fmt::format("model.preset {}", oc.model.preset);
      tokenizer_in_checkpoint = !j.original;  // the original the sweep trains records its tokenizer
    } else if (!c.unlearn.original.empty()) {
      const Checkpoint& k = checkpoint(c.unlearn.original, "unlearn.original");
      if (k.ok) image = {{k.options.vision.image_size, k.options.vision.channels}};
      tokenizer_in_checkpoint = k.has_tokenizer;
      released = k.ok && !k.has_tokenizer;
      model_name = c.unlearn.original;
    } else {
      add("unlearn.original: a point has no original (set unlearn.original, or give the sweep an originals block)");
    }
    const bool needs_bpe = c.data.tokenizer == "clip_bpe" && !tokenizer_in_checkpoint;
    if (needs_bpe || released) {
      if (c.data.vocab_file.empty()) {
        add(fmt::format("data.vocab_file: not set, and {} needs CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz "
                        "from the openai/CLIP repository)",
                        released ? "a released checkpoint" : "data.tokenizer clip_bpe"));
      } else if (!fs::is_regular_file(c.data.vocab_file)) {
        add(fmt::format("data.vocab_file: {} does not exist (CLIP's BPE vocabulary, bpe_simple_vocab_16e6.txt.gz "
                        "from the openai/CLIP repository)", c.data.vocab_file));
      }
    }
    if (c.data.file.empty()) {
      add("data.file: no dataset given");
      return;
    }
    const Dataset& d = dataset(c.data.file);
    if (!d.file) return;
    const data::DatasetInfo& info = d.file->info();
    if (image) {
      try {
        data::check_image_shape(info.path, info.splits.at("train").image, image->first, image->second, model_name);
      } catch (const ConfigError& e) {
        add(first_line(e.what()));
      }
    }
    if (!j.original && !c.unlearn.forget.empty()) {
      try {
        data::forget_concept_ids(c.unlearn.forget, c.unlearn.forget_descendants, info.concept_names,
                                 info.concept_parent);
      } catch (const ConfigError& e) {
        add(fmt::format("unlearn.forget: {} in {}", first_line(e.what()), info.path));
      }
    }
  }

  void root() {
    std::error_code ec;
    fs::create_directories(g_.dir, ec);
    const fs::path probe = fs::path(g_.dir) / ".hac-preflight";
    std::ofstream out(probe);
    out << "probe\n";
    out.close();
    if (ec || !out) {
      add(fmt::format("the sweep's folder {} is not writable{}", g_.dir, ec ? ": " + ec.message() : ""));
    }
    fs::remove(probe, ec);
  }

  std::vector<std::string> problems() const {
    std::vector<std::string> out;
    for (const auto& [text, jobs] : problems_) {
      out.push_back(fmt::format("{} ({} job{})", text, jobs, jobs == 1 ? "" : "s"));
    }
    return out;
  }

 private:
  void add(const std::string& text) {
    auto [it, added] = problems_.emplace(text, 1);
    if (!added) ++it->second;
  }

  const Dataset& dataset(const std::string& path) {
    auto [it, added] = datasets_.emplace(path, Dataset{});
    if (!added) {
      if (!it->second.error.empty()) add(it->second.error);
      return it->second;
    }
    if (!fs::exists(path)) {
      it->second.error = fmt::format("data.file: {} does not exist", path);
    } else {
      try {
        it->second.file = data::DatasetFile::open(path);
      } catch (const std::exception& e) {
        it->second.error = fmt::format("data.file: {}", first_line(e.what()));
      }
    }
    if (!it->second.error.empty()) add(it->second.error);
    return it->second;
  }

  const Checkpoint& checkpoint(const std::string& path, const char* key) {
    auto [it, added] = checkpoints_.emplace(path, Checkpoint{});
    if (!added) {
      if (!it->second.error.empty()) add(it->second.error);
      return it->second;
    }
    Checkpoint& k = it->second;
    if (!fs::exists(path)) {
      k.error = fmt::format("{}: {} does not exist", key, path);
    } else {
      try {
        std::map<std::string, std::string> extras;
        models::load_model(path, &extras, &k.options);
        k.has_tokenizer = extras.count("tokenizer") > 0;
        k.ok = true;
      } catch (const std::exception& e) {
        k.error = fmt::format("{}: {}", key, first_line(e.what()));
      }
    }
    if (!k.error.empty()) add(k.error);
    return k;
  }

  const Grid& g_;
  std::map<std::string, int64_t> problems_;
  std::map<std::string, Dataset> datasets_;
  std::map<std::string, Checkpoint> checkpoints_;
};

int64_t steps_of(const Job& j) {
  if (j.original || j.cfg.unlearn.method == "retrain") return j.cfg.train.steps;
  return j.cfg.unlearn.steps;
}

// The median samples/s of the COMPLETED runs among `jobs`, 0 without any.
double measured_rate(const std::vector<const Job*>& jobs) {
  std::vector<double> rates;
  for (const Job* j : jobs) {
    if (job_status(*j) != train::RunStatus::kCompleted) continue;
    try {
      std::ifstream in(fs::path(j->dir) / "result.json");
      const auto r = nlohmann::json::parse(in);
      const double v = r.at("cost").at("samples_per_s").get<double>();
      if (v > 0) rates.push_back(v);
    } catch (const std::exception&) {
    }
  }
  if (rates.empty()) return 0.0;
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

std::string cost_table(const Grid& g, const PreflightOptions& o) {
  std::string out =
      "| stage | jobs to run | optimizer steps | samples | rate (samples/s per job) | device-hours |\n"
      "| --- | --- | --- | --- | --- | --- |\n";
  auto stage = [&](const char* name, const std::vector<Job>& jobs) {
    std::vector<const Job*> all, todo;
    for (const Job& j : jobs) {
      all.push_back(&j);
      if (job_status(j) != train::RunStatus::kCompleted) todo.push_back(&j);
    }
    if (all.empty()) return;
    int64_t steps = 0;
    double samples = 0.0, device_seconds = 0.0;
    const double measured = measured_rate(all);
    const double rate = o.samples_per_s > 0 ? o.samples_per_s : measured;
    for (const Job* j : todo) {
      const int64_t s = steps_of(*j);
      const double n = static_cast<double>(s) * static_cast<double>(j->cfg.data.batch_size * j->ranks);
      steps += s;
      samples += n;
      if (rate > 0) device_seconds += n / rate * static_cast<double>(j->ranks);
    }
    const std::string rate_text = rate <= 0 ? "unknown (give --samples-per-s)"
                                  : o.samples_per_s > 0 ? fmt::format("{:.4g} (given)", rate)
                                                        : fmt::format("{:.4g} (median of completed runs)", rate);
    out += fmt::format("| {} | {} of {} | {} | {:.4g} | {} | {} |\n", name, todo.size(), all.size(), steps, samples,
                       rate_text, rate > 0 ? fmt::format("{:.3g}", device_seconds / 3600.0) : "-");
  };
  stage("originals", g.originals);
  if (!g.trials.empty()) stage("selection trials", g.trials);
  if (!g.selecting) stage("points", g.points);
  else out += "| points | (after the selection) | | | | |\n";
  out += "\nDevice-hours: samples / rate x ranks per job, summed (one device per rank); a rate measured on "
         "another machine or model size does not carry over.\n";
  return out;
}

}  // namespace

PreflightReport preflight(const Grid& g, const PreflightOptions& o) {
  Checker c(g);
  auto each = [&](const std::vector<Job>& jobs) {
    for (const Job& j : jobs) {
      if (job_status(j) != train::RunStatus::kCompleted) c.job(j);
    }
  };
  each(g.originals);
  each(g.trials);
  if (!g.selecting) each(g.points);
  c.root();
  return PreflightReport{c.problems(), cost_table(g, o)};
}

size_t print_preflight(const PreflightReport& r) {
  if (r.problems.empty()) {
    fmt::print("preflight: no problem found\n");
  } else {
    fmt::print("preflight: {} problem(s):\n", r.problems.size());
    for (const auto& p : r.problems) fmt::print("  - {}\n", p);
  }
  fmt::print("\ncost:\n{}", r.cost);
  std::fflush(stdout);
  return r.problems.size();
}

}  // namespace runner::sweep
