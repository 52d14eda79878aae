// The training loop of `hac train` and `hac unlearn`: data-parallel steps over a Loader, AdamW,
// checkpoints and resume, preemption, the non-finite guard and result.json.
#include "train/loop.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/build_info.h"
#include "core/duration.h"
#include "core/error.h"
#include "core/files.h"
#include "core/lock.h"
#include "core/sha256.h"
#include "core/log.h"
#include "data/loader.h"
#include "geometry/lorentz.h"
#include "train/checkpoint_files.h"
#include "train/result_file.h"
#include "train/session.h"
#include "train/signals.h"
#include "train/step.h"

namespace runner::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::ordered_json;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Distinct host names of the ranks, in rank order of first appearance.
std::vector<std::string> gather_hosts(const comm::CommPtr& comm) {
  constexpr int64_t kLen = 64;
  at::Tensor mine = at::zeros({kLen}, at::kByte);
  const std::string& h = core::host_name();
  std::memcpy(mine.data_ptr<uint8_t>(), h.data(), std::min<size_t>(h.size(), kLen - 1));
  const at::Tensor all = comm->all_gather(mine).reshape({-1, kLen}).contiguous();
  std::vector<std::string> hosts;
  for (int64_t r = 0; r < all.size(0); ++r) {
    std::string name(reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>()));
    if (std::find(hosts.begin(), hosts.end(), name) == hosts.end()) hosts.push_back(name);
  }
  return hosts;
}

class Run {
 public:
  Run(const config::Config& cfg, comm::CommPtr comm, const RunInfo& info, bool unlearning)
      : cfg_(cfg), comm_(std::move(comm)), info_(info), unlearning_(unlearning),
        dir_(config::run_dir(cfg)), ckpt_dir_((fs::path(dir_) / "checkpoints").string()),
        result_((fs::path(dir_) / "result.json").string()), hash_(config::semantic_hash(cfg)) {
    cfg_.output.dir = dir_;  // config.yaml and result.json name the directory actually used
  }

  int run();
  // Writes FAILED with the first line of `what` (never throws: the original error matters).
  void fail(const std::string& what) noexcept;

 private:
  bool rank0() const { return comm_->rank() == 0; }
  void write_result(RunStatus status, const std::string& error = "");
  void start_result();
  int64_t resume(AdamW& opt);
  models::Checkpoint checkpoint_of(int64_t step, const AdamW* opt) const;
  void save_checkpoint(int64_t step, const AdamW& opt);
  void save_final();
  void evaluate();
  unlearn::Features features(const data::Batch& b);
  void log_step(int64_t step, double lr, const std::vector<std::string>& names, const std::vector<double>& values,
                double step_s);
  void open_loss_log(int64_t resumed_step);
  void write_forget_rows() const;
  json input_digests() const;
  void preflight_evaluation() const;

  config::Config cfg_;
  comm::CommPtr comm_;
  RunInfo info_;
  bool unlearning_;
  std::string dir_, ckpt_dir_;
  ResultFile result_;
  std::string hash_;
  Session s_;
  std::vector<char> is_forget_;
  std::ofstream loss_log_;
  bool loss_header_ = false;
  core::DirLock lock_;  // rank 0: this process is the run directory's one writer
  Clock::time_point start_ = Clock::now();
  double elapsed_before_ = 0.0;  // wall time of earlier (preempted) invocations
  json first_, last_;
  int64_t timed_steps_ = 0;
  double timed_s_ = 0.0;
  bool started_ = false;
};

void Run::write_result(RunStatus status, const std::string& error) {
  if (!rank0()) return;
  const double wall = elapsed_before_ + seconds_since(start_);
  json cost;
  cost["wall_s"] = wall;
  cost["samples_per_s"] = timed_s_ > 0 ? static_cast<double>(timed_steps_ * cfg_.data.batch_size *
                                                             comm_->world_size()) / timed_s_
                                       : 0.0;
  cost["step_s"] = timed_steps_ > 0 ? timed_s_ / static_cast<double>(timed_steps_) : 0.0;
  cost["peak_rss_mb"] = peak_rss_mb();
  result_.set_json("cost", cost.dump());
  json losses;
  losses["first"] = first_.is_null() ? json::object() : first_;
  losses["last"] = last_.is_null() ? json::object() : last_;
  result_.set_json("losses", losses.dump());
  if (status != RunStatus::kRunning) result_.set_string("ended_at", core::utc_now_iso8601());
  result_.write(status, error);
}

void Run::fail(const std::string& what) noexcept {
  try {
    if (started_) write_result(RunStatus::kFailed, what.substr(0, what.find('\n')));
  } catch (const std::exception& e) {
    core::log_warn("could not record FAILED in {}: {}", result_.path(), e.what());
  }
}

void Run::start_result() {
  started_ = true;
  result_.set_string("started_at", core::utc_now_iso8601());
  result_.set_string("kind", unlearning_ ? "unlearn" : "train");
  result_.set_string("run_id", hash_);
  result_.set_string("method", unlearning_ ? cfg_.unlearn.method : "pretrain");
  result_.set_string("config", config::to_yaml(cfg_));
  json prov;
  prov["git_commit"] = core::git_commit();
  if (const std::string diff = core::git_diff(); !diff.empty()) {
    // A dirty build: what differed from the commit, beside result.json.
    if (rank0()) core::write_file_atomically((fs::path(dir_) / "git.diff").string(), diff);
    prov["git_diff"] = "git.diff";
  }
  prov["sha256"] = input_digests();
  prov["command"] = info_.command;
  prov["versions"] = info_.versions;
  prov["world_size"] = comm_->world_size();
  prov["backend"] = comm_->backend();
  prov["device"] = cfg_.dist.device;
  prov["device_model"] = device_model(cfg_.dist.device, s_.device.has_index() ? s_.device.index() : 0);
  prov["threads_per_rank"] = at::get_num_threads();
  prov["hosts"] = gather_hosts(comm_);
  prov["slurm"] = json::parse(slurm_json());
  result_.set_json("provenance", prov.dump());
  result_.set_json("metrics", "{}");
  if (!info_.labels.empty()) result_.set_json("labels", json(info_.labels).dump());
}

// SHA-256 of the files the run reads its data and weights from, comparable with `sha256sum`
// (rank 0 only; cached per file version, core::sha256_file).
json Run::input_digests() const {
  json out = json::object();
  if (!rank0()) return out;
  auto add = [&](const char* key, const std::string& path) {
    if (path.empty()) return;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec && size > (1ull << 30)) core::log_info("hashing {} ({:.1f} GB) for provenance", path, size / 1e9);
    out[key] = {{"path", path}, {"sha256", core::sha256_file(path)}};
  };
  add("data.file", cfg_.data.file);
  if (unlearning_) add("unlearn.original", cfg_.unlearn.original);
  else add("model.init", cfg_.model.init);
  return out;
}

// A CSV field in double quotes, inner quotes doubled (RFC 4180).
std::string csv_quoted(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

// forget_rows.csv: every forget row of the train split (positions as the run sees the split), its
// concept and whether its caption matched unlearn.forget_captions.
void Run::write_forget_rows() const {
  const auto& concepts = s_.file->concepts("train");
  const auto captions = s_.file->read("train", s_.forget_rows, /*with_images=*/false).captions;
  std::string out = "row,concept,caption_match,caption\n";
  for (size_t i = 0; i < s_.forget_rows.size(); ++i) {
    const int64_t r = s_.forget_rows[i];
    const int32_t c = concepts[static_cast<size_t>(r)];
    const bool match = std::binary_search(s_.caption_rows.begin(), s_.caption_rows.end(), r);
    const std::string name = c < 0 ? std::string() : s_.file->info().concept_names[static_cast<size_t>(c)];
    out += fmt::format("{},{},{},{}\n", r, csv_quoted(name), match ? 1 : 0, csv_quoted(captions[i]));
  }
  core::write_file_atomically((fs::path(dir_) / "forget_rows.csv").string(), out);
}

models::Checkpoint Run::checkpoint_of(int64_t step, const AdamW* opt) const {
  models::Checkpoint c;
  // On the host, whatever the device: the checkpoint writer reads storages directly.
  for (auto& [name, t] : models::named_state(*s_.model)) c.model.emplace_back(name, t.cpu());
  if (opt != nullptr) {
    for (auto& [name, t] : opt->state()) c.optimizer.emplace_back(name, t.cpu());
  }
  c.step = step;
  c.config_yaml = config::to_yaml(cfg_);
  c.extras = models::model_extras(s_.model->options());
  if (!s_.tokenizer_text.empty()) c.extras["tokenizer"] = s_.tokenizer_text;
  c.extras["semantic_hash"] = hash_;
  c.extras["kind"] = unlearning_ ? "unlearn" : "train";
  c.extras["elapsed_s"] = fmt::format("{}", elapsed_before_ + seconds_since(start_));
  return c;
}

void Run::save_checkpoint(int64_t step, const AdamW& opt) {
  if (rank0()) {
    models::save_checkpoint(checkpoint_path(ckpt_dir_, step), checkpoint_of(step, &opt));
    prune_checkpoints(ckpt_dir_, cfg_.train.keep_checkpoints);
    if (loss_log_.is_open()) loss_log_.flush();
  }
  comm_->barrier();  // every rank knows the checkpoint exists before it goes on (or exits)
}

void Run::save_final() {
  if (rank0()) models::save_checkpoint((fs::path(dir_) / "model.pt").string(), checkpoint_of(s_.steps, nullptr));
  comm_->barrier();
}

void Run::evaluate() {
  if (!info_.evaluate || !cfg_.eval.enabled) return;
  Trained t;
  t.cfg = &cfg_;
  t.comm = comm_;
  t.model = s_.model.ptr();
  t.tokenizer = s_.tokenizer;
  t.context_length = s_.context_length;
  t.file = s_.file;
  t.original = unlearning_ ? cfg_.unlearn.original : "";
  t.dir = dir_;
  result_.set_json("metrics", info_.evaluate(t));
}

int64_t Run::resume(AdamW& opt) {
  if (!cfg_.output.resume) return 0;
  for (const std::string& path : list_checkpoints(ckpt_dir_)) {
    models::Checkpoint c;
    try {
      c = models::load_checkpoint(path);
    } catch (const IoError& e) {
      core::log_warn("skipping unreadable checkpoint: {}", e.what());
      continue;
    }
    const auto h = c.extras.find("semantic_hash");
    if (h == c.extras.end() || h->second != hash_) {
      throw ConfigError(fmt::format("{}: this checkpoint belongs to another config (run id {} vs {}); use another "
                                    "output.dir or output.resume=false",
                                    path, h == c.extras.end() ? "none" : h->second, hash_));
    }
    models::load_state_dict(*s_.model, c.model, path);
    opt.load_state(c.optimizer, path);
    if (auto e = c.extras.find("elapsed_s"); e != c.extras.end()) elapsed_before_ = std::stod(e->second);
    core::log_info("resuming from {} (step {}/{})", path, c.step, s_.steps);
    return c.step;
  }
  return 0;
}

// What only the evaluation reads, checked before the first step, so that a run never trains for
// hours to stop in its evaluation: the evaluated split's concepts, the retrain reference.
void Run::preflight_evaluation() const {
  if (!info_.evaluate || !cfg_.eval.enabled) return;
  const std::string& split = cfg_.eval.split;
  std::set<int32_t> present;
  int64_t with_concept = 0;
  for (int32_t c : s_.file->concepts(split)) {
    if (c >= 0) present.insert(c), ++with_concept;
  }
  RUNNER_CHECK(present.size() >= 2, ConfigError,
               fmt::format("eval.split: {}/{} has {} row(s) with a concept in {} concept(s); the evaluation's "
                           "zero-shot needs at least 2 concepts. Found before training: nothing was trained",
                           cfg_.data.file, split, with_concept, present.size()));
  if (!cfg_.eval.retrain.empty()) {
    RUNNER_CHECK(fs::is_regular_file(cfg_.eval.retrain), ConfigError,
                 fmt::format("eval.retrain: {} is not a file (the retrain reference's model.pt); found before "
                             "training", cfg_.eval.retrain));
  }
}

void Run::open_loss_log(int64_t resumed_step) {
  if (!rank0()) return;
  const std::string path = (fs::path(dir_) / "losses.csv").string();
  std::vector<std::string> keep;
  if (resumed_step > 0 && fs::exists(path)) {
    const std::string text = core::read_text_file(path);
    std::istringstream in(text);
    std::string line;
    size_t fields = 0, read = 0;
    while (std::getline(in, line)) {
      read += line.size() + 1;
      // A line the writer did not finish (no newline: the process was killed mid-row) is dropped.
      if (read > text.size()) break;
      const size_t n = static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1;
      if (keep.empty()) {
        fields = n;
        keep.push_back(line);
        continue;
      }
      // Rows are labelled with the steps done: keep whole rows up to the checkpoint.
      char* end = nullptr;
      const long long step = std::strtoll(line.c_str(), &end, 10);
      if (n == fields && end != line.c_str() && *end == ',' && step <= resumed_step) keep.push_back(line);
    }
  }
  std::ostringstream text;
  for (const auto& l : keep) text << l << "\n";
  core::write_file_atomically(path, text.str());
  loss_header_ = !keep.empty();
  loss_log_.open(path, std::ios::app);
}

unlearn::Features Run::features(const data::Batch& b) {
  unlearn::Features f;
  const at::Device dev = s_.device;
  const int64_t n = b.images.size(0);
  std::vector<int64_t> forget_pos;
  at::Tensor forget = at::zeros({n}, at::kBool);
  auto* fp = forget.data_ptr<bool>();
  const auto* rows = b.rows.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    fp[i] = is_forget_[static_cast<size_t>(rows[i])] != 0;
    if (fp[i]) forget_pos.push_back(i);
  }
  f.forget = forget.to(dev);
  // The loader hands pinned host batches when the device is a GPU: these copies do not block.
  const at::Tensor images = b.images.to(dev, /*non_blocking=*/true);
  // Encoders under bfloat16 autocast on a GPU; lift() and everything after in float32.
  models::EncoderAutocast autocast(dev, dev.is_cuda());
  at::Tensor own_tokens;
  if (s_.method->needs().partners) {
    std::vector<std::string> texts = b.captions;
    for (int64_t i : forget_pos) {
      texts.push_back(s_.partner_captions.at(s_.partner_of[static_cast<size_t>(rows[i])]));
    }
    const at::Tensor tokens = models::tokenize(*s_.tokenizer, texts, s_.context_length).to(dev);
    const at::Tensor all = s_.model->encode_text(tokens);
    own_tokens = tokens.slice(0, 0, n);
    f.text_own = all.slice(0, 0, n);
    f.text = forget_pos.empty()
                 ? f.text_own
                 : f.text_own.index_copy(0, at::tensor(forget_pos, at::kLong).to(dev), all.slice(0, n));
  } else {
    own_tokens = b.tokens.to(dev, /*non_blocking=*/true);
    f.text_own = s_.model->encode_text(own_tokens);
    f.text = f.text_own;
  }
  f.image = s_.model->encode_image(images);
  f.logit_scale = s_.model->logit_scale;
  if (s_.model->is_meru()) f.curv = s_.model->curvature();
  if (s_.method->needs().reference) {
    torch::NoGradGuard no_grad;
    unlearn::set_reference(s_.reference->geometry(), s_.reference->encode_image(images),
                           s_.reference->encode_text(own_tokens),
                           s_.reference->is_meru() ? s_.reference->curvature() : at::Tensor(), f);
  }
  for (auto& p : s_.model->parameters()) {
    if (p.requires_grad()) f.params.push_back(p);
  }
  return f;
}

void Run::log_step(int64_t step, double lr, const std::vector<std::string>& names, const std::vector<double>& values,
                   double step_s) {
  std::vector<std::pair<std::string, double>> cols;
  for (size_t i = 0; i < names.size(); ++i) cols.emplace_back(names[i], values[i]);
  const double curv = s_.model->is_meru() ? s_.model->curvature().item<double>() : 0.0;
  if (s_.model->is_meru()) cols.emplace_back("curv", curv);
  const double scale = s_.model->logit_scale.exp().item<double>();
  cols.emplace_back("logit_scale", scale);
  json row;
  row["step"] = step + 1;
  for (const auto& [k, v] : cols) row[k] = v;
  if (first_.is_null()) first_ = row;
  last_ = row;
  if (!rank0()) return;
  if (!loss_header_) {
    loss_log_ << "step,lr";
    for (const auto& c : cols) loss_log_ << "," << c.first;
    loss_log_ << "\n";
    loss_header_ = true;
  }
  loss_log_ << step + 1 << "," << fmt::format("{:.6g}", lr);
  for (const auto& c : cols) loss_log_ << "," << fmt::format("{:.8g}", c.second);
  loss_log_ << "\n";
  loss_log_.flush();  // whole rows reach the file as they are made: a kill leaves at most a torn last line
  const bool last = step + 1 == s_.steps;
  if ((step + 1) % cfg_.train.log_every != 0 && !last && step != 0) return;
  std::string parts;
  for (size_t i = 1; i < names.size(); ++i) parts += fmt::format(" {} {:.4g}", names[i], values[i]);
  const double sps = static_cast<double>(cfg_.data.batch_size * comm_->world_size()) / step_s;
  const double eta = timed_steps_ > 0 ? timed_s_ / static_cast<double>(timed_steps_) *
                                            static_cast<double>(s_.steps - step - 1)
                                      : 0.0;
  core::log_info("{} step {}/{} ({:.0f}%) loss {:.4f}{} lr {:.3g}{} scale {:.2f} | {:.0f} samples/s ETA {}",
                 s_.method->name(), step + 1, s_.steps, 100.0 * static_cast<double>(step + 1) / s_.steps,
                 values[0], parts, lr, s_.model->is_meru() ? fmt::format(" c {:.4g}", curv) : std::string(), scale,
                 sps, core::duration_text(eta));
}

int Run::run() {
  // One writer per run directory: a second process on it stops here, before writing anything.
  if (rank0()) lock_ = core::DirLock::acquire(dir_, "run");
  watch_parent_process();
  if (rank0()) fs::create_directories(ckpt_dir_);
  // The run's log in its directory too (rank 0, appended across resumes, UTC times).
  if (rank0()) core::log_to_file((fs::path(dir_) / "run.log").string());
  comm_->barrier();
  const std::string result_path = result_.path();
  if (cfg_.output.resume && ResultFile::read_status(result_path) == RunStatus::kCompleted &&
      fs::exists(fs::path(dir_) / "model.pt")) {
    core::log_info("{}: already COMPLETED; nothing to do (output.resume=false runs it again)", result_path);
    return 0;
  }
  start_result();
  write_result(RunStatus::kRunning);
  s_ = make_session(cfg_, comm_, unlearning_);
  preflight_evaluation();
  if (rank0()) core::write_file_atomically((fs::path(dir_) / "config.yaml").string(), config::to_yaml(cfg_));
  is_forget_.assign(static_cast<size_t>(s_.file->info().splits.at("train").size), 0);
  for (int64_t r : s_.forget_rows) is_forget_[static_cast<size_t>(r)] = 1;
  {
    // The rows this run trains on: the train split less the validation split, if any.
    const data::DatasetInfo& di = s_.file->info();
    json split;
    split["train_rows"] = di.splits.at("train").size;
    split["val_fraction"] = di.holdout.fraction;
    if (di.holdout.fraction > 0.0) {
      split["val_seed"] = di.holdout.seed;
      split["val_rows"] = di.splits.at("val").size;
      split["val_fingerprint"] = di.val_fingerprint;
    }
    result_.set_json("split", split.dump());
  }
  if (unlearning_) {
    json forget;
    forget["concepts"] = cfg_.unlearn.forget;
    forget["resolved"] = s_.forget_concepts;
    forget["forget_rows"] = s_.forget_size;
    forget["retain_rows"] = s_.retain_size;
    forget["beta_eff"] = s_.ctx.beta_eff;
    if (!cfg_.unlearn.forget_captions.empty()) {
      // The rows the keywords chose, for anyone who checks the forget set: forget_rows.csv.
      forget["captions"] = cfg_.unlearn.forget_captions;
      forget["caption_rows"] = s_.caption_rows.size();
      forget["caption_only_rows"] = s_.caption_only_rows;
      forget["rows_file"] = "forget_rows.csv";
      if (rank0()) write_forget_rows();
    }
    if (!s_.partners_used.empty()) {
      forget["partners"] = s_.partners_used;
      forget["partner_same_caption"] = s_.partner_same_caption;
    }
    result_.set_json("forget", forget.dump());
  }
  core::log_info("{} {}: {} on {} ({} rank(s), batch {} per rank, {} steps) -> {}", unlearning_ ? "unlearn" : "train",
                 hash_, s_.method->name(), cfg_.data.file, comm_->world_size(), cfg_.data.batch_size, s_.steps, dir_);

  if (!s_.method->trains()) {
    save_final();
    evaluate();
    write_result(RunStatus::kCompleted);
    comm_->barrier();  // result.json is final before any rank returns
    return 0;
  }

  TrainStep stepper(*s_.model, *s_.method, s_.ctx, s_.adamw);
  AdamW& opt = stepper.optimizer();
  const int64_t start_step = resume(opt);
  open_loss_log(start_step);

  data::LoaderOptions lo;
  lo.subset = s_.subset;
  lo.batch_size = cfg_.data.batch_size;
  lo.seed = s_.seed;
  lo.tail = cfg_.data.tail == "pad" ? data::TailPolicy::kPad : data::TailPolicy::kDrop;
  lo.prefetch = static_cast<int>(cfg_.data.prefetch);
  lo.pin_memory = s_.device.is_cuda();
  lo.augment = cfg_.data.augment == "random_resized_crop";
  lo.decode_threads = data::decode_threads_for(cfg_.data.decode_threads, comm_->local_size());
  if (!s_.method->needs().partners) {
    auto tok = s_.tokenizer;
    const int64_t ctx_len = s_.context_length;
    lo.tokenize = [tok, ctx_len](const std::vector<std::string>& t) { return models::tokenize(*tok, t, ctx_len); };
  }
  data::Loader loader(s_.file, lo, comm_->rank(), comm_->world_size());
  const int64_t per_epoch = loader.batches_per_epoch();
  loader.start_epoch(start_step / per_epoch, start_step % per_epoch);
  install_preemption_handlers();
  s_.model->train();

  for (int64_t step = start_step; step < s_.steps; ++step) {
    const auto t0 = Clock::now();
    std::optional<data::Batch> batch = loader.next();
    if (!batch) {
      loader.start_epoch(step / per_epoch, 0);
      batch = loader.next();
    }
    const bool stop_here = info_.stop_after_steps > 0 && step >= info_.stop_after_steps;
    const double lr = lr_at(step, s_.steps, s_.warmup, s_.lr);
    const StepOutcome out = stepper.run([&] { return features(*batch); }, lr, preemption_signal() != 0 || stop_here,
                                        step + 1);
    const std::vector<std::string>& names = out.names;
    const std::vector<double>& values = out.values;
    if (out.stopped) {
      core::log_info("preemption signal: checkpointing at step {}/{}", step, s_.steps);
      save_checkpoint(step, opt);
      write_result(RunStatus::kPreempted, fmt::format("preempted at step {} (signal); rerun the command to resume", step));
      comm_->barrier();
      return kExitPreempted;
    }
    const double step_s = seconds_since(t0);
    if (step > start_step) timed_steps_ += 1, timed_s_ += step_s;  // the first step warms caches up
    log_step(step, lr, names, values, step_s);
    const bool last = step + 1 == s_.steps;
    if (!last && cfg_.train.checkpoint_every > 0 && (step + 1) % cfg_.train.checkpoint_every == 0) {
      save_checkpoint(step + 1, opt);
    }
  }
  save_checkpoint(s_.steps, opt);
  save_final();
  if (loss_log_.is_open()) loss_log_.close();
  evaluate();
  write_result(RunStatus::kCompleted);
  comm_->barrier();  // result.json is final before any rank returns
  return 0;
}

// Runs `run`, recording FAILED with the first line of the error before rethrowing it.
int run_recording_failure(Run& run) {
  try {
    return run.run();
  } catch (const std::exception& e) {
    run.fail(e.what());
    throw;
  }
}

}  // namespace

int run_pretrain(const config::Config& cfg, const comm::CommPtr& comm, const RunInfo& info) {
  Run run(cfg, comm, info, /*unlearning=*/false);
  return run_recording_failure(run);
}

int run_unlearn(const config::Config& cfg, const comm::CommPtr& comm, const RunInfo& info) {
  Run run(cfg, comm, info, /*unlearning=*/true);
  return run_recording_failure(run);
}

}  // namespace runner::train
