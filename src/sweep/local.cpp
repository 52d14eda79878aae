// The local backend (backend.h): the grid's jobs as child processes on this machine, originals
// first, then the points whose original is COMPLETED, longest first, with the cores divided among
// the running ranks.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "core/duration.h"
#include "core/error.h"
#include "core/lock.h"
#include "core/log.h"
#include "sweep/backend.h"
#include "sweep/report.h"
#include "sweep/shell.h"
#include "sweep/status.h"
#include "train/signals.h"

extern char** environ;

namespace runner::sweep {

namespace fs = std::filesystem;
using train::RunStatus;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop(int sig) { g_stop = sig; }

std::vector<std::string> child_argv(const Job& j, const SweepOptions& o, const LocalOptions& l) {
  std::vector<std::string> argv;
  if (j.ranks > 1) {
    argv = {l.mpirun, "-np", std::to_string(j.ranks), "--bind-to", "none", "--oversubscribe"};
  }
  argv.push_back(hac_executable(o.hac));
  argv.push_back(j.original ? "train" : "unlearn");
  argv.push_back(job_config_path(j));
  for (const auto& [k, v] : j.labels) argv.push_back("--label=" + k + "=" + v);
  return argv;
}

pid_t spawn(const Job& j, const SweepOptions& o, const LocalOptions& l, int64_t threads) {
  write_job_config(j);
  const std::vector<std::string> args = child_argv(j, o, l);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    if (kv.rfind("HAC_NUM_THREADS=", 0) != 0 && kv.rfind(std::string(train::kParentPidEnv) + "=", 0) != 0) {
      env_text.push_back(kv);
    }
  }
  env_text.push_back(fmt::format("HAC_NUM_THREADS={}", threads));
  // The run watches this process and stops (checkpoint, PREEMPTED) if the coordinator dies.
  env_text.push_back(fmt::format("{}={}", train::kParentPidEnv, static_cast<long>(::getpid())));
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
  int64_t completed = 0, failed = 0, skipped = 0, interrupted = 0, elsewhere = 0;
};

// Runs `todo` (indices into list) with at most `slots` ranks at once, longest first.
void run_stage(const std::vector<Job>& list, const std::vector<size_t>& todo, const SweepOptions& o,
               const LocalOptions& l, int64_t slots, int64_t cores, const char* stage, Tally& tally,
               bool& failed_any) {
  std::vector<size_t> queue = todo;
  std::stable_sort(queue.begin(), queue.end(), [&](size_t a, size_t b) { return list[a].cost > list[b].cost; });
  std::map<pid_t, size_t> running;
  size_t next = 0, done = 0;
  const auto started = std::chrono::steady_clock::now();
  int64_t busy = 0, total_ranks = 0;
  for (size_t i : queue) total_ranks += list[i].ranks;
  // Threads per rank: the cores shared by the ranks that run at once.
  const int64_t threads = std::max<int64_t>(1, cores / std::max<int64_t>(1, std::min(slots, total_ranks)));
  while (next < queue.size() || !running.empty()) {
    const bool stop_new = g_stop != 0 || (o.fail_fast && failed_any);
    while (!stop_new && next < queue.size() && (running.empty() || busy + list[queue[next]].ranks <= slots)) {
      const size_t index = queue[next++];
      const Job& j = list[index];
      // A run another process holds (another sweep, a hand-started run): never started twice.
      if (const auto holder = core::lock_holder(j.dir)) {
        ++tally.elsewhere;
        ++done;
        core::log_warn("sweep: {} {} is running elsewhere ({}); not started here", stage, j.id, *holder);
        continue;
      }
      const pid_t pid = spawn(j, o, l, threads);
      running[pid] = index;
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
    const Job& j = list[it->second];
    running.erase(it);
    busy -= j.ranks;
    ++done;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const RunStatus st = job_status(j);
    if (st == RunStatus::kCompleted && code == 0) {
      ++tally.completed;
    } else if (code == train::kExitPreempted || st == RunStatus::kPreempted) {
      ++tally.interrupted;
    } else if (code == core::kExitLocked) {
      ++tally.elsewhere;
      core::log_warn("sweep: {} {} is running elsewhere (its directory is locked); not run here", stage, j.id);
    } else {
      ++tally.failed;
      failed_any = true;
      core::log_warn("sweep: {} {} FAILED (exit {}): {}", stage, j.id, code, first_error(j));
    }
    // Elapsed time, and an ETA from the pace so far (jobs of one stage cost about alike).
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double eta = elapsed / static_cast<double>(done) * static_cast<double>(queue.size() - done);
    core::log_info("sweep: {} {}/{} done ({} completed, {} failed) | {} running | elapsed {}, ETA {}", stage, done,
                   queue.size(), tally.completed, tally.failed, running.size(), core::duration_text(elapsed),
                   done == queue.size() ? std::string("0s") : core::duration_text(eta));
  }
  tally.skipped += static_cast<int64_t>(queue.size() - next);
}

}  // namespace

int LocalBackend::run(const config::SweepSpec& spec) {
  bool selecting = false;
  int code = run_pass(spec, selecting);
  // A select block: that pass ran the trials; once every trial has ended (COMPLETED or FAILED),
  // a second pass runs the points with each group's chosen settings.
  if (selecting && code != train::kExitPreempted && g_stop == 0 && !expand(spec).selecting) {
    code = std::max(code, run_pass(spec, selecting));
  }
  return code;
}

int LocalBackend::run_pass(const config::SweepSpec& spec, bool& selecting) {
  const Grid g = expand(spec);
  selecting = g.selecting;
  if (g.selecting) core::log_info("sweep {}: selection stage: {} trial(s) on the validation split", g.name, g.trials.size());
  write_manifest(g, spec, name(), common_.command);
  const auto cores = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t max_ranks = 1;
  for (const auto& p : g.points) max_ranks = std::max(max_ranks, p.ranks);
  const int64_t slots = local_.jobs > 0 ? local_.jobs * max_ranks : std::max<int64_t>(max_ranks, cores);
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  Tally tally;
  bool failed_any = false;
  std::vector<size_t> todo;
  for (size_t i = 0; i < g.originals.size(); ++i) {
    if (should_run(job_status(g.originals[i]), common_.rerun_failed)) todo.push_back(i);
  }
  core::log_info("sweep {}: {} original(s) to train of {}", g.name, todo.size(), g.originals.size());
  run_stage(g.originals, todo, common_, local_, slots, cores, "original", tally, failed_any);
  todo.clear();
  int64_t blocked = 0;
  for (size_t i = 0; i < g.points.size(); ++i) {
    const Job& p = g.points[i];
    if (!should_run(job_status(p), common_.rerun_failed)) continue;
    if (!original_done(g, p)) {
      ++blocked;
      continue;
    }
    todo.push_back(i);
  }
  core::log_info("sweep {}: {} point(s) to run of {}", g.name, todo.size(), g.points.size());
  if (g_stop == 0 && !(common_.fail_fast && failed_any)) {
    run_stage(g.points, todo, common_, local_, slots, cores, "point", tally, failed_any);
  }
  write_manifest(g, spec, name(), common_.command);

  const int summary = summarize(g, blocked);
  if (g_stop != 0) {
    fmt::print("sweep {}: interrupted; rerun the same command to resume\n", g.name);
    return train::kExitPreempted;
  }
  return summary;
}

}  // namespace runner::sweep
