// The grid listing, the manifest and the summary of a sweep (report.h).
#include "sweep/report.h"

#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/build_info.h"
#include "core/files.h"
#include "core/lock.h"
#include "sweep/status.h"

namespace runner::sweep {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using train::RunStatus;

namespace {

// The status as the listings write it, `absent` for a job that has not run yet; a RUNNING run
// whose directory no live process holds (killed outright) is "RUNNING (no process)".
std::string status_text(const Job& j, RunStatus s, const char* absent) {
  if (s == RunStatus::kAbsent) return absent;
  if (s == RunStatus::kRunning && !core::lock_holder(j.dir)) return "RUNNING (no process)";
  return to_string(s);
}

}  // namespace

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

void print_grid(const Grid& g) {
  if (g.selecting) {
    fmt::print("sweep {}: selection stage: {} original(s), {} trial(s) on the validation split -> {} (the points "
               "are listed once every trial has ended)\n", g.name, g.originals.size(), g.trials.size(), g.dir);
  } else {
    fmt::print("sweep {}: {} original(s), {} point(s){} -> {}\n", g.name, g.originals.size(), g.points.size(),
               g.trials.empty() ? "" : fmt::format(" with settings chosen from {} trial(s)", g.trials.size()), g.dir);
  }
  for (const auto& o : g.originals) {
    fmt::print("  original {:<40} {:<10} {}\n", o.id, status_text(o, job_status(o), "-"), o.dir);
  }
  for (const auto& p : g.points) {
    std::string a;
    for (const auto& s : p.assignment) a += (a.empty() ? "" : " ") + s;
    fmt::print("  point {:<52} {:<10} ranks {} | {}\n", p.id, status_text(p, job_status(p), "-"), p.ranks, a);
  }
}

int summarize(const Grid& g, int64_t blocked) {
  int64_t completed = 0;
  std::vector<std::string> lines;
  for (const auto* list : {&g.originals, &g.points}) {
    for (const auto& j : *list) {
      const RunStatus s = job_status(j);
      if (s == RunStatus::kCompleted) {
        ++completed;
        continue;
      }
      const auto holder = s == RunStatus::kRunning ? core::lock_holder(j.dir) : std::nullopt;
      lines.push_back(fmt::format("  {:<10} {}: {}", status_text(j, s, "NOT RUN"), j.dir,
                                  s == RunStatus::kFailed   ? first_error(j)
                                  : s == RunStatus::kAbsent ? "not started"
                                  : holder                  ? "running elsewhere (" + *holder + ")"
                                                            : "rerun to resume"));
    }
  }
  const size_t total = g.originals.size() + g.points.size();
  fmt::print("sweep {}: {}/{} jobs COMPLETED{}\n", g.name, completed, total,
             blocked > 0 ? fmt::format(", {} point(s) waiting for an original that is not COMPLETED", blocked) : "");
  for (const auto& l : lines) fmt::print("{}\n", l);
  std::fflush(stdout);
  return static_cast<size_t>(completed) == total ? 0 : 1;
}

void write_manifest(const Grid& g, const config::SweepSpec& spec, const std::string& backend,
                    const std::string& command) {
  json m;
  m["name"] = g.name;
  m["spec"] = spec.source;
  m["spec_text"] = core::read_text_file(spec.source);
  m["command"] = command;
  m["backend"] = backend;
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
      const RunStatus st = job_status(j);
      e["status"] = st == RunStatus::kAbsent ? std::string("PENDING") : to_string(st);  // the plain word, for scripts
      a.push_back(e);
    }
    return a;
  };
  m["originals"] = list(g.originals);
  m["selecting"] = g.selecting;
  m["trials"] = list(g.trials);
  m["points"] = g.selecting ? json::array() : list(g.points);
  fs::create_directories(g.dir);
  core::write_file_atomically((fs::path(g.dir) / "sweep.json").string(), m.dump(2) + "\n");
  write_selection(g);
}

}  // namespace runner::sweep
