// Preemption signal handlers: record the signal; the loop checkpoints at the next step.
#include "train/signals.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/lock.h"
#include "core/log.h"

namespace runner::train {

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

void watch_parent_process() {
  static bool started = false;
  if (started) return;
  const char* text = std::getenv(kParentPidEnv);
  if (text == nullptr || *text == '\0') return;
  char* end = nullptr;
  const long pid = std::strtol(text, &end, 10);
  if (*end != '\0' || pid <= 1) return;
  started = true;
  std::thread([pid] {
    while (core::process_alive(pid)) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    core::log_warn("the sweep that started this run (pid {}) is gone: stopping at the next step (PREEMPTED)", pid);
    ::kill(::getpid(), SIGTERM);
  }).detach();
}

}  // namespace runner::train
