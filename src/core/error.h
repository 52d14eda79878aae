// Error types of the runner and the exit code each maps to (docs/training.md, exit codes).
#pragma once

#include <stdexcept>
#include <string>

namespace runner {

// Base of every error the runner throws on purpose. Messages name the file, key, call or rank
// involved, the values seen, and a hint where one helps.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Wrong command line (unknown subcommand, bad flag). Exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Invalid configuration: malformed YAML, unknown key, bad value. Exit code 2.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// File system and file-format errors (HDF5, checkpoints, result files). Exit code 1.
class IoError : public Error {
 public:
  using Error::Error;
};

// Communication errors: MPI/NCCL return codes, mismatched collectives across ranks. Exit code 1.
class CommError : public Error {
 public:
  using Error::Error;
};

// Another live process holds the run (or sweep) directory's lock (core/lock.h). Exit code 73.
class LockedError : public Error {
 public:
  using Error::Error;
};

namespace core {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// A run directory another process is working in (EX_CANTCREAT): nothing was written.
constexpr int kExitLocked = 73;

// Exit code for an exception caught in main: 2 for usage/config errors, 73 for a locked
// directory, 1 otherwise.
int exit_code_for(const std::exception& e);

}  // namespace core
}  // namespace runner

// Throws ErrorType with a message when cond is false; for checks on input, never `assert`.
#define RUNNER_CHECK(cond, ErrorType, message)  \
  do {                                          \
    if (!(cond)) throw ErrorType(message);      \
  } while (0)
