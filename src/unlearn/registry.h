// The registry of unlearning methods: the one list of their names, factories, one-line help and
// requirements, read by config checks, the CLI help, the docs generator and the tests. Adding a
// method: its own file in src/unlearn (a Method subclass and a `make_<name>` factory), one line in
// registry.cpp, and the file in src/CMakeLists.txt.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "geometry/pair.h"
#include "unlearn/method.h"

namespace runner::unlearn {

using MethodFactory = std::unique_ptr<Method> (*)(const config::UnlearnConfig& cfg);

struct MethodInfo {
  const char* name;
  MethodFactory make;
  const char* help;         // one line: what it does, and the paper or baseline it comes from
  bool lorentz_only;        // needs a MERU model (its terms are hyperbolic)
  const char* lorentz_why;  // lorentz_only: why, and what to use on CLIP
};

// Every method, in the order tables list them (references first, then baselines, then AC and HAC).
const std::vector<MethodInfo>& methods();
// The entry named `name`, or nullptr.
const MethodInfo* find_method(const std::string& name);
// The names, in registry order.
std::vector<std::string> method_names();

// What a method needs and does, read from an instance built with the default config (hac's
// `reference` depends on unlearn.norm and unlearn.norm_mode; this is its default).
struct MethodTraits {
  Rows rows;
  bool partners, reference, trains, from_scratch;
};
MethodTraits traits(const MethodInfo& m);

// Checks the config's unlearn.method against the registry (ConfigError "invalid value 'x' for
// unlearn.method: must be one of ..."). A Lorentz-only method on a CLIP model is refused when the
// model is known (make_method), since an unlearning run takes its architecture from the original.
void check_method(const config::Config& c);

// Markdown table of the methods (name, what it trains on, needs, help) for docs/training.md.
std::string methods_markdown();

}  // namespace runner::unlearn
