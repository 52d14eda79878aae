// Durations as progress lines print them. No torch.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace runner::core {

// "1h05m", "3m20s", "42s" (rounded to the second).
inline std::string duration_text(double seconds) {
  const auto t = static_cast<int64_t>(seconds + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

}  // namespace runner::core
