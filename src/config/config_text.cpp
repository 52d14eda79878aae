// The text of config files and sweep specs (validate.h): reading a file, the NUL check before
// parsing, and yaml-cpp's exceptions as messages for a user.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "config/validate.h"
#include "core/error.h"

namespace runner::config {

void check_yaml_text(const std::string& text, const std::string& source) {
  const size_t nul = text.find('\0');
  if (nul == std::string::npos) return;
  const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n') + 1;
  throw ConfigError(fmt::format("{}:{}: contains a NUL byte (offset {}): not a YAML text file (binary or damaged)",
                                source, line, nul));
}

std::string yaml_error_text(const std::exception& e) {
  if (dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr) {
    return "nested deeper than the YAML reader allows (collections inside collections)";
  }
  if (const auto* y = dynamic_cast<const YAML::Exception*>(&e)) return y->msg;
  return e.what();
}

std::string read_config_text(const std::string& path, const char* what) {
  std::error_code ec;  // an ifstream opens a directory without complaint and reads nothing
  RUNNER_CHECK(!std::filesystem::is_directory(path, ec), ConfigError,
               fmt::format("cannot read {} '{}': it is a directory", what, path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(fmt::format("cannot read {} '{}': read failed", what, path));
  return text.str();
}

}  // namespace runner::config
