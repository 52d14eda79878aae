// `hac sweep`: statuses, the manifest, the summary, the local backend (child processes), and one
// job in process (Slurm array tasks).
#include "sweep/sweep.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/build_info.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "train/run_dir.h"

extern char** environ;

namespace runner::sweep {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop(int sig) { g_stop = sig; }

std::string result_path(const Job& j) { return (fs::path(j.dir) / "result.json").string(); }

// The first error line a FAILED job recorded, or the last line of its log.
std::string first_error(const Job& j) {
  try {
    const json r = json::parse(core::read_text_file(result_path(j)));
    if (r.contains("error") && r["error"].is_string()) return r["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  std::ifstream log(fs::path(j.dir) / "sweep_job.log");
  std::string line, last;
  while (std::getline(log, line)) {
    if (line.find("error") != std::string::npos) return line;
    if (!line.empty()) last = line;
  }
  return last.empty() ? "no result.json and no log" : last;
}

std::string executable(const SweepOptions& o) { return o.hac.empty() ? fs::read_symlink("/proc/self/exe").string() : o.hac; }

// Should the job run? COMPLETED: no; FAILED: only with --rerun-failed; else (none yet, RUNNING
// from a killed sweep, PREEMPTED): yes, and the run resumes from its newest checkpoint.
bool wants_run(const Job& j, const SweepOptions& o) {
  const std::string s = job_status(j);
  if (s == "COMPLETED") return false;
  if (s == "FAILED") return o.rerun_failed;
  return true;
}

std::vector<std::string> child_argv(const Job& j, const SweepOptions& o) {
  std::vector<std::string> argv;
  if (j.ranks > 1) {
    argv = {o.mpirun, "-np", std::to_string(j.ranks), "--bind-to", "none", "--oversubscribe"};
  }
  argv.push_back(executable(o));
  argv.push_back(j.original ? "train" : "unlearn");
  argv.push_back(job_config_path(j));
  for (const auto& [k, v] : j.labels) argv.push_back("--label=" + k + "=" + v);
  return argv;
}

void write_job_config(const Job& j) {
  fs::create_directories(j.dir);
  core::write_file_atomically(job_config_path(j), config::to_yaml(j.cfg));
}

pid_t spawn(const Job& j, const SweepOptions& o, int64_t threads) {
  write_job_config(j);
  const std::vector<std::string> args = child_argv(j, o);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    if (kv.rfind("HAC_NUM_THREADS=", 0) != 0) env_text.push_back(kv);
  }
  env_text.push_back(fmt::format("HAC_NUM_THREADS={}", threads));
  // As launch/mpirun.sh: shared-memory single-copy needs ptrace rights containers often lack.
  if (std::getenv("OMPI_MCA_btl_vader_single_copy_mechanism") == nullptr) {
    env_text.emplace_back("OMPI_MCA_btl_vader_single_copy_mechanism=none");
  }
  if (::geteuid() == 0) {
    env_text.emplace_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    env_text.emplace_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
  }
  std::vector<char*> envp;
  for (auto& kv : env_text) envp.push_back(kv.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string log = (fs::path(j.dir) / "sweep_job.log").string();
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclose(&fa, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw IoError(fmt::format("cannot start {}: {}", args[0], std::strerror(rc)));
  return pid;
}

struct Tally {
  int64_t completed = 0, failed = 0, skipped = 0, interrupted = 0;
};

// Runs `jobs` (indices into list) with at most `slots` at once, longest first.
void run_stage(std::vector<Job>& list, const std::vector<size_t>& todo, const SweepOptions& o, int64_t slots,
               int64_t cores, const char* stage, Tally& tally, bool& failed_any) {
  std::vector<size_t> queue = todo;
  std::stable_sort(queue.begin(), queue.end(), [&](size_t a, size_t b) { return list[a].cost > list[b].cost; });
  std::map<pid_t, size_t> running;
  size_t next = 0, done = 0;
  int64_t busy = 0, total_ranks = 0;
  for (size_t i : queue) total_ranks += list[i].ranks;
  // Threads per rank: the cores shared by the ranks that run at once.
  const int64_t threads = std::max<int64_t>(1, cores / std::max<int64_t>(1, std::min(slots, total_ranks)));
  while (next < queue.size() || !running.empty()) {
    const bool stop_new = g_stop != 0 || (o.fail_fast && failed_any);
    while (!stop_new && next < queue.size() && (running.empty() || busy + list[queue[next]].ranks <= slots)) {
      Job& j = list[queue[next++]];
      const pid_t pid = spawn(j, o, threads);
      running[pid] = static_cast<size_t>(&j - list.data());
      busy += j.ranks;
      core::log_info("sweep: {} started {} ({} rank(s))", stage, j.id, j.ranks);
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        for (const auto& [p, idx] : running) ::kill(p, SIGTERM);  // the runs checkpoint (PREEMPTED)
        continue;
      }
      throw IoError(fmt::format("waitpid: {}", std::strerror(errno)));
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    Job& j = list[it->second];
    running.erase(it);
    busy -= j.ranks;
    ++done;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const std::string st = job_status(j);
    if (st == "COMPLETED" && code == 0) {
      ++tally.completed;
    } else if (code == train::kExitPreempted || st == "PREEMPTED") {
      ++tally.interrupted;
    } else {
      ++tally.failed;
      failed_any = true;
      core::log_warn("sweep: {} {} FAILED (exit {}): {}", stage, j.id, code, first_error(j));
    }
    core::log_info("sweep: {} {}/{} done ({} completed, {} failed) | {} running", stage, done, queue.size(),
                   tally.completed, tally.failed, running.size());
  }
  tally.skipped += static_cast<int64_t>(queue.size() - next);
}

void print_grid(const Grid& g) {
  fmt::print("sweep {}: {} original(s), {} point(s) -> {}\n", g.name, g.originals.size(), g.points.size(), g.dir);
  for (const auto& o : g.originals) {
    fmt::print("  original {:<40} {:<10} {}\n", o.id, job_status(o).empty() ? "-" : job_status(o), o.dir);
  }
  for (const auto& p : g.points) {
    std::string a;
    for (const auto& s : p.assignment) a += (a.empty() ? "" : " ") + s;
    fmt::print("  point {:<52} {:<10} ranks {} | {}\n", p.id, job_status(p).empty() ? "-" : job_status(p), p.ranks, a);
  }
}

}  // namespace

std::string job_status(const Job& j) { return train::ResultFile::read_status(result_path(j)); }

int summarize(const Grid& g, int64_t blocked) {
  int64_t completed = 0;
  std::vector<std::string> lines;
  for (const auto* list : {&g.originals, &g.points}) {
    for (const auto& j : *list) {
      const std::string s = job_status(j);
      if (s == "COMPLETED") {
        ++completed;
        continue;
      }
      lines.push_back(fmt::format("  {:<10} {}: {}", s.empty() ? "NOT RUN" : s, j.dir,
                                  s == "FAILED" ? first_error(j) : s.empty() ? "not started" : "rerun to resume"));
    }
  }
  const size_t total = g.originals.size() + g.points.size();
  fmt::print("sweep {}: {}/{} jobs COMPLETED{}\n", g.name, completed, total,
             blocked > 0 ? fmt::format(", {} point(s) waiting for an original that is not COMPLETED", blocked) : "");
  for (const auto& l : lines) fmt::print("{}\n", l);
  std::fflush(stdout);
  return static_cast<size_t>(completed) == total ? 0 : 1;
}

void write_manifest(const Grid& g, const config::SweepSpec& spec, const SweepOptions& o) {
  json m;
  m["name"] = g.name;
  m["spec"] = spec.source;
  m["spec_text"] = core::read_text_file(spec.source);
  m["command"] = o.command;
  m["backend"] = o.backend;
  m["git_commit"] = core::git_commit();
  auto list = [](const std::vector<Job>& jobs) {
    json a = json::array();
    for (const auto& j : jobs) {
      json e;
      e["id"] = j.id;
      e["dir"] = j.dir;
      e["ranks"] = j.ranks;
      e["assignment"] = j.assignment;
      e["labels"] = j.labels;
      if (j.needs >= 0) e["original"] = j.needs;
      const std::string s = job_status(j);
      e["status"] = s.empty() ? "PENDING" : s;
      a.push_back(e);
    }
    return a;
  };
  m["originals"] = list(g.originals);
  m["points"] = list(g.points);
  fs::create_directories(g.dir);
  core::write_file_atomically((fs::path(g.dir) / "sweep.json").string(), m.dump(2) + "\n");
}

int run_sweep(const config::SweepSpec& spec, const SweepOptions& o) {
  Grid g = expand(spec);
  if (o.dry_run) {
    print_grid(g);
    return 0;
  }
  write_manifest(g, spec, o);
  if (o.backend == "slurm") return submit_slurm(g, spec, o);
  const auto cores = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t max_ranks = 1;
  for (const auto& p : g.points) max_ranks = std::max(max_ranks, p.ranks);
  const int64_t slots = o.jobs > 0 ? o.jobs * max_ranks : std::max<int64_t>(max_ranks, cores);
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  Tally tally;
  bool failed_any = false;
  std::vector<size_t> todo;
  for (size_t i = 0; i < g.originals.size(); ++i) {
    if (wants_run(g.originals[i], o)) todo.push_back(i);
  }
  core::log_info("sweep {}: {} original(s) to train of {}", g.name, todo.size(), g.originals.size());
  run_stage(g.originals, todo, o, slots, cores, "original", tally, failed_any);
  todo.clear();
  int64_t blocked = 0;
  for (size_t i = 0; i < g.points.size(); ++i) {
    const Job& p = g.points[i];
    if (!wants_run(p, o)) continue;
    if (p.needs >= 0 && job_status(g.originals[static_cast<size_t>(p.needs)]) != "COMPLETED") {
      ++blocked;
      continue;
    }
    todo.push_back(i);
  }
  core::log_info("sweep {}: {} point(s) to run of {}", g.name, todo.size(), g.points.size());
  if (g_stop == 0 && !(o.fail_fast && failed_any)) run_stage(g.points, todo, o, slots, cores, "point", tally, failed_any);
  write_manifest(g, spec, o);

  const int summary = summarize(g, blocked);
  if (g_stop != 0) {
    fmt::print("sweep {}: interrupted; rerun the same command to resume\n", g.name);
    return train::kExitPreempted;
  }
  return summary;
}

int run_one_job(const config::SweepSpec& spec, const std::string& which, const dist::CommPtr& world,
                const InProcess& run) {
  const Grid g = expand(spec);
  const auto colon = which.find(':');
  const std::string stage = which.substr(0, colon);
  int64_t index = -1;
  try {
    index = std::stoll(which.substr(colon + 1));
  } catch (const std::exception&) {
  }
  const std::vector<Job>* list = stage == "originals" ? &g.originals : stage == "points" ? &g.points : nullptr;
  if (colon == std::string::npos || list == nullptr || index < 0 || index >= static_cast<int64_t>(list->size())) {
    throw UsageError(fmt::format("--job '{}': expected originals:I or points:I with I below {} / {}", which,
                                 g.originals.size(), g.points.size()));
  }
  const Job& j = (*list)[static_cast<size_t>(index)];
  if (job_status(j) == "COMPLETED") {
    if (world->rank() == 0) core::log_info("sweep: {} is COMPLETED; nothing to do", j.id);
    return 0;
  }
  if (world->rank() == 0) write_job_config(j);
  world->barrier();
  return run(j, world);
}

}  // namespace runner::sweep
