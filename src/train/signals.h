// Preemption signals (docs/training.md): SIGTERM, SIGUSR2 and Ctrl-C ask a run to checkpoint at the next
// step boundary and exit with kExitPreempted. No torch here.
#pragma once

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

// The environment variable a sweep sets in the runs it starts: its own PID.
constexpr const char* kParentPidEnv = "HAC_PARENT_PID";
// When HAC_PARENT_PID names a process, watches it (twice a second, on a thread of its own) and,
// once it is gone, sends this process SIGTERM: a run whose sweep coordinator was killed outright
// checkpoints and ends PREEMPTED instead of training on unsupervised. Idempotent; no-op without
// the variable.
void watch_parent_process();

}  // namespace runner::train
