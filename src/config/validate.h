// Internal to src/config: the per-section value checks behind validate().
#pragma once

#include "config/config.h"

namespace runner::config {

// A double as YAML writes it (shortest round trip, "1.0" and "1.0e-08" kept floats).
std::string format_double(double v);

// Enumerations, positive sizes, probabilities, weights >= 0, templates: ConfigError naming the key.
void validate_values(const Config& c);

}  // namespace runner::config
