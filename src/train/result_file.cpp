// result.json, its status type, and provenance facts.
#include "train/result_file.h"

#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/runtime.h"
#include "core/files.h"

namespace runner::train {

namespace {

constexpr std::pair<RunStatus, const char*> kStatusNames[] = {{RunStatus::kRunning, "RUNNING"},
                                                               {RunStatus::kCompleted, "COMPLETED"},
                                                               {RunStatus::kFailed, "FAILED"},
                                                               {RunStatus::kPreempted, "PREEMPTED"}};

}  // namespace

std::string to_string(RunStatus s) {
  for (const auto& [status, name] : kStatusNames) {
    if (status == s) return name;
  }
  return "";
}

RunStatus parse_run_status(const std::string& text) {
  for (const auto& [status, name] : kStatusNames) {
    if (text == name) return status;
  }
  return RunStatus::kAbsent;
}

ResultFile::ResultFile(std::string path) : path_(std::move(path)) {}

void ResultFile::set_json(const std::string& key, const std::string& json_text) {
  for (auto& [k, v] : fields_) {
    if (k == key) {
      v = json_text;
      return;
    }
  }
  fields_.emplace_back(key, json_text);
}

void ResultFile::set_string(const std::string& key, const std::string& value) {
  set_json(key, nlohmann::json(value).dump());
}

void ResultFile::write(RunStatus status, const std::string& error) const {
  nlohmann::ordered_json j;
  j["status"] = to_string(status);
  j["error"] = error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error);
  for (const auto& [k, v] : fields_) j[k] = nlohmann::ordered_json::parse(v);
  core::write_file_atomically(path_, j.dump(2) + "\n");
}

RunStatus ResultFile::read_status(const std::string& path) {
  std::ifstream in(path);
  if (!in) return RunStatus::kAbsent;
  try {
    const auto j = nlohmann::json::parse(in);
    return parse_run_status(j.value("status", ""));
  } catch (const std::exception&) {
    return RunStatus::kAbsent;
  }
}

std::string slurm_json() {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const char* k : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                        "SLURM_JOB_NODELIST", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(k)) j[k] = v;
  }
  return j.dump();
}

std::string device_model(const std::string& device, int index) {
  if (device == "cpu") {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model;
    int cpus = 0;
    while (std::getline(in, line)) {
      if (line.rfind("processor", 0) == 0) ++cpus;
      if (model.empty() && line.rfind("model name", 0) == 0) {
        const size_t colon = line.find(':');
        if (colon != std::string::npos) model = line.substr(line.find_first_not_of(" \t", colon + 1));
      }
    }
    if (model.empty()) return "unknown";
    return cpus > 0 ? model + " (" + std::to_string(cpus) + " logical CPUs)" : model;
  }
  if (device == "cuda") return comm::cuda_device_description(index);
  return "unknown";
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace runner::train
