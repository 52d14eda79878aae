// The slurm backend (backend.h): one job array per stage (originals, then trials or points; one array per
// rank count, split above MaxArraySize, throttled with %K), each task `srun --mpi=pmix hac sweep
// SPEC --job stage:I` (run_one_job), preemption by --signal=USR2 with checkpoint and requeue, and
// a dependent collect job.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "sweep/backend.h"
#include "sweep/report.h"
#include "sweep/shell.h"
#include "sweep/status.h"

namespace runner::sweep {

namespace fs = std::filesystem;

namespace {

int64_t max_array_size(const SlurmOptions& o) {
  if (o.max_array > 0) return o.max_array;
  try {
    const std::string conf = shell_output("scontrol show config 2>/dev/null | grep -i '^MaxArraySize'");
    const auto eq = conf.find('=');
    if (eq != std::string::npos) return std::max<int64_t>(1, std::stoll(conf.substr(eq + 1)) - 1);
  } catch (const std::exception&) {
  }
  return 1000;  // Slurm's default MaxArraySize is 1001: indices 0..1000
}

struct Array {
  std::string stage;               // originals | trials | points
  int64_t ranks = 1;
  int64_t needs = -1;              // trials/points: the original (Grid::originals index) they all unlearn, -1 = none
  std::vector<size_t> jobs;        // grid indices
};

// The cluster's setup lines (--prelude) with a comment saying where they come from.
std::string prelude_lines(const SlurmOptions& o) {
  if (o.prelude.empty()) return "";
  std::string p = "# Setup lines from --prelude " + o.prelude_path + "\n" + o.prelude;
  if (p.back() != '\n') p += '\n';
  return p;
}

std::string array_script(const Array& a, const std::string& list_file, const std::string& log_dir, const SlurmOptions& o,
                         const std::string& hac, const std::string& spec) {
  std::string s = "#!/bin/bash\n";
  s += fmt::format("#SBATCH --job-name=hac-{}\n", a.stage);
  s += fmt::format("#SBATCH --ntasks={}\n", a.ranks);
  s += fmt::format("#SBATCH --time={}\n", o.time_limit);
  s += fmt::format("#SBATCH --output={}/{}-%A_%a.out\n", log_dir, a.stage);
  s += "#SBATCH --signal=USR2@120\n#SBATCH --requeue\n";
  if (!o.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", o.partition);
  if (!o.sbatch_args.empty()) s += fmt::format("#SBATCH {}\n", o.sbatch_args);
  s += prelude_lines(o);
  s += "# One grid job per array task; the task's line of the list names it.\n";
  s += fmt::format("job=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n", quote(list_file));
  if (!o.threads.empty()) s += fmt::format("export HAC_NUM_THREADS={}\n", o.threads);
  std::string extra;
  for (const auto& arg : o.spec_args) extra += " " + quote(arg);
  s += fmt::format("srun --mpi=pmix -n {} {} sweep {}{} --job \"$job\"\n", a.ranks, quote(hac), quote(spec), extra);
  s += "rc=$?\n";
  s += "# 75: checkpointed on USR2 (time limit or preemption): requeue this task; it resumes.\n";
  s += "if [ $rc -eq 75 ]; then scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"; fi\n";
  s += "exit $rc\n";
  return s;
}

}  // namespace

int SlurmBackend::run(const config::SweepSpec& spec) {
  const Grid g = expand(spec);
  write_manifest(g, spec, name(), common_.command);
  const SlurmOptions& o = slurm_;
  const std::string hac = hac_executable(common_.hac);
  const std::string spec_path = fs::absolute(o.spec_path).string();
  const fs::path sdir = fs::absolute(fs::path(g.dir) / "slurm");
  fs::create_directories(sdir);
  const int64_t max_array = max_array_size(o);
  // Arrays: per stage, rank count and (for trials and points) the original they unlearn, only the
  // jobs that still need to run, split at max_array. A points array then waits only for the array
  // tasks that train its own original; points from a checkpoint file start at once.
  std::vector<Array> arrays;
  for (const auto& [stage, list] : {std::pair<std::string, const std::vector<Job>*>{"originals", &g.originals},
                                    {g.selecting ? "trials" : "points", g.selecting ? &g.trials : &g.points}}) {
    std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_group;
    for (size_t i = 0; i < list->size(); ++i) {
      const Job& j = (*list)[i];
      if (!should_run(job_status(j), common_.rerun_failed)) continue;
      by_group[{j.ranks, stage == "originals" ? -1 : j.needs}].push_back(i);
    }
    for (const auto& [key, jobs] : by_group) {
      for (size_t b = 0; b < jobs.size(); b += static_cast<size_t>(max_array)) {
        Array a{stage, key.first, key.second, {}};
        a.jobs.assign(jobs.begin() + static_cast<std::ptrdiff_t>(b),
                      jobs.begin() + static_cast<std::ptrdiff_t>(std::min(jobs.size(), b + static_cast<size_t>(max_array))));
        arrays.push_back(a);
      }
    }
  }
  std::vector<std::string> original_ids, point_ids;
  std::map<size_t, std::string> original_task;  // original index -> "ARRAYID_TASK" submitted here
  for (size_t k = 0; k < arrays.size(); ++k) {
    const Array& a = arrays[k];
    std::string list;
    for (size_t i : a.jobs) list += fmt::format("{}:{}\n", a.stage, i);
    const std::string list_file = (sdir / fmt::format("{}-{}.list", a.stage, k)).string();
    const std::string script = (sdir / fmt::format("{}-{}.sbatch", a.stage, k)).string();
    core::write_file_atomically(list_file, list);
    core::write_file_atomically(script, array_script(a, list_file, sdir.string(), o, hac, spec_path));
    std::string cmd = fmt::format("sbatch --parsable --array=0-{}{}", a.jobs.size() - 1,
                                  o.throttle > 0 ? fmt::format("%{}", o.throttle) : std::string());
    std::string waits_for;
    if (a.stage != "originals" && a.needs >= 0) {
      const auto t = original_task.find(static_cast<size_t>(a.needs));
      if (t != original_task.end()) {
        cmd += " --dependency=afterany:" + t->second;
        waits_for = t->second;
      }
    }
    cmd += " " + quote(script);
    std::string id = shell_output(cmd);
    id = id.substr(0, id.find_first_of(";\n"));
    (a.stage == "originals" ? original_ids : point_ids).push_back(id);
    if (a.stage == "originals") {
      for (size_t t = 0; t < a.jobs.size(); ++t) original_task[a.jobs[t]] = fmt::format("{}_{}", id, t);
    }
    core::log_info("sweep: submitted {} array {} ({} job(s), {} rank(s) each{}): {}", a.stage, id, a.jobs.size(), a.ranks,
                   a.stage == "originals"  ? ""
                   : !waits_for.empty()    ? ", after original task " + waits_for
                   : a.needs >= 0          ? ", original already trained"
                                           : ", from checkpoint files: no wait",
                   script);
  }
  // The collect job runs after every array, whatever their outcome. In the selection stage it
  // submits the next stage instead: the same sweep again, which now chooses and submits the points.
  std::string collect = fmt::format("#!/bin/bash\n#SBATCH --job-name=hac-{}\n#SBATCH --ntasks=1\n",
                                    g.selecting ? "select" : "collect");
  collect += fmt::format("#SBATCH --output={}/collect-%j.out\n", sdir.string());
  if (!o.partition.empty()) collect += fmt::format("#SBATCH --partition={}\n", o.partition);
  collect += prelude_lines(o);
  if (g.selecting) {
    std::string args;
    for (const auto& a : o.spec_args) args += " " + quote(a);
    for (const auto& a : o.resubmit_args) args += " " + quote(a);
    collect += fmt::format("{} sweep {} --backend slurm --hac {}{}\n", quote(hac), quote(spec_path), quote(hac), args);
  } else {
    // Tables always; figures when the node has gnuplot (else the job says they were skipped).
    collect += fmt::format("{} collect --figures-if-gnuplot {}\n", quote(hac), quote(fs::absolute(g.dir).string()));
  }
  const std::string collect_script = (sdir / "collect.sbatch").string();
  core::write_file_atomically(collect_script, collect);
  std::string dep;
  for (const auto& id : original_ids) dep += ":" + id;
  for (const auto& id : point_ids) dep += ":" + id;
  std::string cid = shell_output(fmt::format("sbatch --parsable {} {}",
                                             dep.empty() ? "" : "--dependency=afterany" + dep, quote(collect_script)));
  cid = cid.substr(0, cid.find_first_of(";\n"));
  fmt::print("sweep {}: submitted {} array(s) and collect job {}; scripts in {}\n", g.name, arrays.size(), cid,
             sdir.string());
  if (!o.wait) return 0;
  while (!shell_output(fmt::format("squeue -h -j {} 2>/dev/null || true", cid)).empty()) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  return summarize(g);
}

int run_one_job(const config::SweepSpec& spec, const std::string& which, const comm::CommPtr& world,
                const InProcess& run) {
  const Grid g = expand(spec);
  const auto colon = which.find(':');
  const std::string stage = which.substr(0, colon);
  int64_t index = -1;
  try {
    index = std::stoll(which.substr(colon + 1));
  } catch (const std::exception&) {
  }
  const std::vector<Job>* list = stage == "originals" ? &g.originals
                                 : stage == "trials"  ? &g.trials
                                 : stage == "points" && !g.selecting ? &g.points
                                                                     : nullptr;
  if (colon == std::string::npos || list == nullptr || index < 0 || index >= static_cast<int64_t>(list->size())) {
    throw UsageError(fmt::format("--job '{}': expected originals:I, trials:I or points:I with I below {} / {} / {}{}",
                                 which, g.originals.size(), g.trials.size(), g.selecting ? 0 : g.points.size(),
                                 g.selecting ? " (the points exist once every trial has ended)" : ""));
  }
  const Job& j = (*list)[static_cast<size_t>(index)];
  // The submitter chose this job, so a FAILED one runs again; a COMPLETED one (a task that ran
  // before) has nothing left to do.
  if (!should_run(job_status(j), /*rerun_failed=*/true)) {
    if (world->rank() == 0) core::log_info("sweep: {} is COMPLETED; nothing to do", j.id);
    return 0;
  }
  if (world->rank() == 0) write_job_config(j);
  world->barrier();
  return run(j, world);
}

}  // namespace runner::sweep
