// The training loop shared by `hac train` (pretraining) and `hac unlearn` (every method):
// data-parallel steps, checkpoints and resume, preemption, non-finite guards, result.json.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.h"
#include "comm/comm.h"

#include <c10/core/Device.h>

namespace runner::models {
class ContrastiveModelImpl;
class Tokenizer;
}  // namespace runner::models
namespace runner::data {
class DatasetFile;
}

namespace runner::train {

// A finished run's model and what is needed to evaluate it (handed to RunInfo::evaluate).
struct Trained {
  const config::Config* cfg = nullptr;
  comm::CommPtr comm;
  std::shared_ptr<models::ContrastiveModelImpl> model;
  std::shared_ptr<const models::Tokenizer> tokenizer;
  int64_t context_length = 0;
  std::shared_ptr<data::DatasetFile> file;
  std::string original;  // the model before unlearning ("" for pretraining)
  std::string dir;       // the run directory
};

struct RunInfo {
  std::string command;   // the command line, for provenance
  std::string versions;  // `hac --version` text
  // > 0: checkpoint and stop as on a preemption signal once this many steps are done (tests, and
  // jobs cut into time slices). Not part of the config: it does not change the run's results.
  int64_t stop_after_steps = 0;
  // When set and eval.enabled: called on every rank once the model is final, before COMPLETED is
  // written; returns the metrics object (JSON text) stored under "metrics" in result.json. The
  // app wires src/eval here, so that train and eval stay independent libraries.
  std::function<std::string(const Trained&)> evaluate;
  // Written as the "labels" object of result.json (sweeps: the point's axis values, curvature).
  std::map<std::string, std::string> labels;
};

// Runs the config's job in cfg.output.dir: config.yaml, result.json, losses.csv, checkpoints/,
// model.pt (a hac checkpoint with the tokenizer and model extras). Resumes from the newest
// checkpoint when output.resume and one exists for the same semantic config; a run whose
// result.json says COMPLETED is not redone. Returns 0, or kExitPreempted after a SIGTERM/SIGUSR2
// checkpoint. Throws (after writing FAILED) on bad input, a non-finite loss or a failed collective.
// The run's device: CPU for dist.device cpu; for cuda the GPU local_rank mod the visible devices
// (ConfigError naming the rank and host when none is visible).
c10::Device run_device(const config::Config& cfg, const comm::CommPtr& comm);

int run_pretrain(const config::Config& cfg, const comm::CommPtr& comm, const RunInfo& info);
int run_unlearn(const config::Config& cfg, const comm::CommPtr& comm, const RunInfo& info);

}  // namespace runner::train
