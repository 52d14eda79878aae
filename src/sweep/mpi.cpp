// The mpi backend (backend.h): one MPI job packs many grid jobs. World rank 0 coordinates; the
// other ranks form groups of the runs' rank count (sub-communicators); each group's leader asks
// rank 0 for work, the group runs the job data-parallel in process, and the leader reports the
// outcome. Originals first (longest first), then points whose original is COMPLETED (longest first).
#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>

#include <ATen/ATen.h>

#include "comm/runtime.h"
#include "core/error.h"
#include "core/log.h"
#include "sweep/backend.h"
#include "sweep/report.h"
#include "sweep/status.h"
#include "train/signals.h"

namespace runner::sweep {

namespace {

using train::RunStatus;

constexpr int kTagAsk = 71, kTagJob = 72;
constexpr int64_t kStop = -1;
// A job travels as one int64: stage * kStage + index.
constexpr int64_t kStage = 1LL << 40;
// What a leader reports with its next request.
enum Outcome : int64_t { kFirst = 0, kDone = 1, kFailed = 2, kPreempted = 3 };

const Job& job_of(const Grid& g, int64_t code) {
  const auto index = static_cast<size_t>(code % kStage);
  return code / kStage == 0 ? g.originals[index] : g.points[index];
}

struct Coordinator {
  const Grid& g;
  const SweepOptions& o;
  std::deque<int64_t> originals, points;  // waiting, longest first
  std::map<int, int64_t> running;         // leader rank -> job
  int64_t failed = 0, completed = 0;
  bool stop = false;

  const Job& job(int64_t code) const { return job_of(g, code); }
  bool original_running(int64_t index) const {
    for (const auto& [leader, code] : running) {
      if (code / kStage == 0 && code % kStage == index) return true;
    }
    return false;
  }
  // The next job that can start now: -2 when only jobs waiting for a running original remain.
  int64_t next() {
    if (stop || (o.fail_fast && failed > 0)) return kStop;
    if (!originals.empty()) {
      const int64_t c = originals.front();
      originals.pop_front();
      return c;
    }
    bool waiting = false;
    for (auto it = points.begin(); it != points.end(); ++it) {
      const Job& p = g.points[static_cast<size_t>(*it % kStage)];
      if (original_done(g, p)) {
        const int64_t c = *it;
        points.erase(it);
        return c;
      }
      if (original_running(p.needs)) waiting = true;
    }
    return waiting ? -2 : kStop;
  }
};

int coordinate(const Grid& g, const SweepOptions& o, const comm::CommPtr& world, int groups, int group_size) {
  Coordinator c{g, o, {}, {}, {}};
  auto longest_first = [&](std::deque<int64_t>& q) {
    std::stable_sort(q.begin(), q.end(), [&](int64_t a, int64_t b) { return c.job(a).cost > c.job(b).cost; });
  };
  for (size_t i = 0; i < g.originals.size(); ++i) {
    if (should_run(job_status(g.originals[i]), o.rerun_failed)) c.originals.push_back(static_cast<int64_t>(i));
  }
  for (size_t i = 0; i < g.points.size(); ++i) {
    if (should_run(job_status(g.points[i]), o.rerun_failed)) c.points.push_back(kStage + static_cast<int64_t>(i));
  }
  longest_first(c.originals);
  longest_first(c.points);
  core::log_info("sweep {} (mpi): {} group(s) of {} rank(s); {} original(s) and {} point(s) to run", g.name, groups,
                 group_size, c.originals.size(), c.points.size());
  std::vector<int> parked;  // leaders waiting for an original to finish
  int active = groups;
  auto answer = [&](int leader) {
    const int64_t code = c.next();
    if (code == -2) {
      parked.push_back(leader);
      return;
    }
    if (code == kStop) {
      world->send_int(kStop, leader, kTagJob);
      --active;
      return;
    }
    c.running[leader] = code;
    core::log_info("sweep: group of rank {} takes {}", leader, c.job(code).id);
    world->send_int(code, leader, kTagJob);
  };
  while (active > 0) {
    int leader = -1;
    const int64_t outcome = world->recv_int(-1, kTagAsk, &leader);
    if (const auto it = c.running.find(leader); it != c.running.end()) {
      const Job& j = c.job(it->second);
      if (outcome == kDone) ++c.completed;
      if (outcome == kFailed) ++c.failed, core::log_warn("sweep: {} FAILED", j.dir);
      if (outcome == kPreempted) c.stop = true;
      c.running.erase(it);
      // A finished original may unblock parked groups.
      std::vector<int> again;
      again.swap(parked);
      for (int p : again) answer(p);
    }
    if (train::preemption_signal() != 0) c.stop = true;
    answer(leader);
  }
  return c.stop ? train::kExitPreempted : 0;
}

// The sweep on `world` (MPI initialised): every rank runs this.
int run_in_world(const config::SweepSpec& spec, const SweepOptions& o, const char* backend,
                 const comm::CommPtr& world, const InProcess& run) {
  const Grid g = expand(spec);
  const int size = world->world_size(), rank = world->rank();
  int64_t group_size = 1;
  for (const auto& p : g.points) group_size = std::max(group_size, p.ranks);
  for (const auto* list : {&g.originals, &g.points}) {
    for (const auto& j : *list) {
      if (j.ranks != group_size) {
        throw ConfigError(fmt::format("{}: the mpi backend runs every job on groups of one size; {} has {} rank(s), "
                                      "others {}", spec.source, j.id, j.ranks, group_size));
      }
    }
  }
  const int groups = static_cast<int>((size - 1) / group_size);
  if (groups < 1) {
    throw ConfigError(fmt::format("the mpi backend needs 1 coordinator + at least {} rank(s) per group; started with {}",
                                  group_size, size));
  }
  train::install_preemption_handlers();
  if (rank == 0) write_manifest(g, spec, backend, o.command);
  // Ranks beyond the last full group idle in their own color.
  const int color = rank == 0 ? 0 : (rank - 1) / static_cast<int>(group_size) < groups
                                        ? 1 + (rank - 1) / static_cast<int>(group_size)
                                        : groups + 1;
  const comm::CommPtr group = world->split(color, rank);
  int code = 0;
  if (rank == 0) {
    code = coordinate(g, o, world, groups, static_cast<int>(group_size));
  } else if (color <= groups) {
    int64_t outcome = kFirst;
    while (true) {
      at::Tensor job = at::zeros({1}, at::kLong);
      if (group->rank() == 0) {
        world->send_int(outcome, 0, kTagAsk);
        job[0] = world->recv_int(0, kTagJob, nullptr);
      }
      group->broadcast(job, 0);
      const int64_t c = job[0].item<int64_t>();
      if (c == kStop) break;
      const Job& j = job_of(g, c);
      int rc = 1;
      try {
        rc = run(j, group);
      } catch (const std::exception& e) {
        core::log_warn("sweep: {} failed: {}", j.id, std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
      }
      group->barrier();
      outcome = rc == 0 && job_status(j) == RunStatus::kCompleted ? kDone
                : rc == train::kExitPreempted                     ? kPreempted
                                                                  : kFailed;
    }
  }
  world->barrier();
  at::Tensor c = at::full({1}, static_cast<int64_t>(code), at::kLong);
  world->broadcast(c, 0);
  if (rank == 0) {
    write_manifest(g, spec, backend, o.command);
    const int summary = summarize(g);
    if (c[0].item<int64_t>() == 0) c[0] = summary;
  }
  world->broadcast(c, 0);
  return static_cast<int>(c[0].item<int64_t>());
}

}  // namespace

int MpiBackend::run(const config::SweepSpec& spec) {
  const comm::CommPtr world = comm::init_world({});
  const bool selecting = expand(spec).selecting;
  int code = run_in_world(spec, common_, name(), world, mpi_.run);
  // A select block: that pass ran the trials; once every trial has ended, a second pass runs the
  // points with the chosen settings. Every rank reads the same result files after the barrier.
  world->barrier();
  if (selecting && code != train::kExitPreempted && !expand(spec).selecting) {
    code = std::max(code, run_in_world(spec, common_, name(), world, mpi_.run));
  }
  comm::finalize_world();
  return code;
}

}  // namespace runner::sweep
