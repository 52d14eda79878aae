// result.json of a run directory (docs/training.md): the run's status, its error and free-form JSON
// sections, written atomically; the status type every reader of result.json shares; provenance
// facts (Slurm ids, peak memory). No torch here.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace runner::train {

// The "status" of result.json. kAbsent: no result.json, or one that cannot be read.
enum class RunStatus { kAbsent, kRunning, kCompleted, kFailed, kPreempted };

// "RUNNING", "COMPLETED", "FAILED", "PREEMPTED"; kAbsent gives "".
std::string to_string(RunStatus s);
// The inverse; any other text is kAbsent.
RunStatus parse_run_status(const std::string& text);

// result.json: status, error, and free-form JSON sections kept as serialized text so this header
// needs no JSON library. Every write goes through core::write_file_atomically.
class ResultFile {
 public:
  explicit ResultFile(std::string path);
  const std::string& path() const { return path_; }
  // Sets `key` to a JSON value given as text (an object, a number, a string literal ...).
  void set_json(const std::string& key, const std::string& json_text);
  void set_string(const std::string& key, const std::string& value);
  // Writes {"status": status, "error": error or null, ...the keys set...}.
  void write(RunStatus status, const std::string& error = "") const;
  // The status of an existing result.json (kAbsent when absent or unreadable).
  static RunStatus read_status(const std::string& path);

 private:
  std::string path_;
  std::vector<std::pair<std::string, std::string>> fields_;  // key, JSON text
};

// Environment facts for provenance: Slurm ids when present, as a JSON object text.
std::string slurm_json();
// What the run's device is: for "cpu" the CPU's model name from /proc/cpuinfo and the count of
// logical CPUs; for "cuda" GPU `index`'s name, compute capability, memory and CUDA versions
// (comm::cuda_device_description); "unknown" when nothing says.
std::string device_model(const std::string& device, int index = 0);
// Peak resident set size of this process in MB (getrusage).
double peak_rss_mb();

}  // namespace runner::train
