// Rank-aware logging: every line carries its UTC time (ISO 8601) and "[rank r@host]":
// "2026-12-05T16:10:03Z [rank 0@node1] step 10/100 ..."; info goes to stdout on rank 0 only
// (or on every rank when asked), warnings and errors from every rank to stderr.
#pragma once

#include <string>

#include <fmt/format.h>

namespace runner::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Sets the identity printed in front of every line. Called once the rank is known.
void log_set_rank(int rank, int world_size);
// When true, info lines from every rank are printed, not just rank 0's.
void log_set_all_ranks(bool all);
void log_set_level(LogLevel level);
int log_rank();
const std::string& host_name();

void log_line(LogLevel level, const std::string& message);

template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  log_line(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... args) {
  log_line(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  log_line(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

// "<time> [rank r@host] error: <what>" on stderr, from whichever rank calls it.
void log_error_line(const std::string& what);

// From now on every line this process logs (at the current level) is also appended to `path`,
// each prefixed with its UTC time in ISO 8601 ("2026-12-05T16:10:03Z"). A file that cannot be
// opened is skipped (the terminal keeps every line).
void log_to_file(const std::string& path);
// The current UTC time, ISO 8601 with seconds: "2026-12-05T16:10:03Z".
std::string utc_now_iso8601();

}  // namespace runner::core
