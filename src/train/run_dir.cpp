// result.json, checkpoint file names and preemption signals.
#include "train/run_dir.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace runner::train {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_signal = 0;

volatile std::sig_atomic_t g_interrupts = 0;

// A second Ctrl-C means "stop now": the default action, without the checkpoint.
extern "C" void record_signal(int sig) {
  if (sig == SIGINT && ++g_interrupts >= 2) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_signal = sig;
}

}  // namespace

void install_preemption_handlers() {
  struct sigaction sa {};
  sa.sa_handler = record_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);  // Ctrl-C: checkpoint at the next step boundary, like SIGTERM
}

int preemption_signal() { return static_cast<int>(g_signal); }
void reset_preemption_signal() { g_signal = 0; }

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

void ResultFile::write(const std::string& status, const std::string& error) const {
  nlohmann::ordered_json j;
  j["status"] = status;
  j["error"] = error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error);
  for (const auto& [k, v] : fields_) j[k] = nlohmann::ordered_json::parse(v);
  core::write_file_atomically(path_, j.dump(2) + "\n");
}

std::string ResultFile::read_status(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  try {
    const auto j = nlohmann::json::parse(in);
    return j.value("status", "");
  } catch (const std::exception&) {
    return "";
  }
}

std::string checkpoint_path(const std::string& dir, int64_t step) {
  return (fs::path(dir) / fmt::format("step_{:08d}.pt", step)).string();
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // step_XXXXXXXX.pt exactly: temp files of an interrupted write never match.
    if (name.size() != 16 || name.rfind("step_", 0) != 0 || name.substr(13) != ".pt") continue;
    const std::string digits = name.substr(5, 8);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    found.emplace_back(std::stoll(digits), e.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  const auto all = list_checkpoints(dir);
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 1)); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
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

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace runner::train
