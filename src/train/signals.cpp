// Preemption signal handlers: record the signal; the loop checkpoints at the next step.
#include "train/signals.h"

#include <csignal>

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

}  // namespace runner::train
