// Internal to src/config: the per-section value checks behind validate().
#pragma once

#include "config/config.h"

namespace runner::config {

// A double as YAML writes it (shortest round trip, "1.0" and "1.0e-08" kept floats).
std::string format_double(double v);

// Enumerations, positive sizes, probabilities, weights >= 0, templates: ConfigError naming the key.
void validate_values(const Config& c);

// Checks YAML text before parsing it: a NUL byte (a binary or damaged file) is a ConfigError
// naming `source` and the line, not a parser message about escapes.
void check_yaml_text(const std::string& text, const std::string& source);
// A yaml-cpp exception's message for a user: the nesting limit (yaml-cpp's DeepRecursion, whose
// own text is "bad file") said as such.
std::string yaml_error_text(const std::exception& e);

// Reads a config or sweep-spec file: a directory, a missing or unreadable file is a ConfigError
// (exit 2) naming it; `what` says which ("config file", "sweep spec").
std::string read_config_text(const std::string& path, const char* what);

}  // namespace runner::config
