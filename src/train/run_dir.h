// A run directory (DESIGN §6): result.json written atomically with the run's status, the
// per-step loss log, checkpoint files, and the preemption signals. No torch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::train {

// Exit code of a run that stopped on SIGTERM/SIGUSR2 after checkpointing (status PREEMPTED);
// rerunning the same command resumes. 75 is EX_TEMPFAIL: "try again later".
constexpr int kExitPreempted = 75;

// Installs handlers for SIGTERM and SIGUSR2 (Slurm's --signal; not SIGUSR1, which NCCL uses)
// that only record the signal. Idempotent.
void install_preemption_handlers();
// The signal received since install (0 = none).
int preemption_signal();
// Clears the record (tests).
void reset_preemption_signal();

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
  void write(const std::string& status, const std::string& error = "") const;
  // The "status" of an existing result.json ("" when absent or unreadable).
  static std::string read_status(const std::string& path);

 private:
  std::string path_;
  std::vector<std::pair<std::string, std::string>> fields_;  // key, JSON text
};

// Checkpoint files dir/step_<8 digits>.pt, newest (highest step) first.
std::vector<std::string> list_checkpoints(const std::string& dir);
std::string checkpoint_path(const std::string& dir, int64_t step);
// Removes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& dir, int64_t keep);

// Environment facts for provenance: Slurm ids when present, as a JSON object text.
std::string slurm_json();
// Peak resident set size of this process in MB (getrusage).
double peak_rss_mb();

}  // namespace runner::train
