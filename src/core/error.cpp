// Maps exceptions to process exit codes.
#include "core/error.h"

namespace runner::core {

int exit_code_for(const std::exception& e) {
  if (dynamic_cast<const UsageError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const LockedError*>(&e) != nullptr) return kExitLocked;
  return kExitFailure;
}

}  // namespace runner::core
