// hac's entry point: dispatch, and the program's single catch (exit codes: docs/training.md).
#include <exception>

#include "app/app.h"
#include "core/error.h"
#include "core/log.h"
#include "comm/runtime.h"

int main(int argc, char** argv) {
  try {
    return runner::app::run_cli(argc, argv);
  } catch (const std::exception& e) {
    runner::core::log_error_line(e.what());
    const int code = runner::core::exit_code_for(e);
    // With several ranks, take the whole job down now: the others may be waiting in a
    // collective this rank will never join.
    runner::comm::abort_world(code);
    return code;
  } catch (...) {
    runner::core::log_error_line("unknown exception");
    runner::comm::abort_world(runner::core::kExitFailure);
    return runner::core::kExitFailure;
  }
}
