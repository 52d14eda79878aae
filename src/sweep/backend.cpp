// The backend factory (backend.h); the backends are in local.cpp, mpi.cpp and slurm.cpp.
#include "sweep/backend.h"

#include <fmt/format.h>

#include "core/error.h"

namespace runner::sweep {

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = {"local", "mpi", "slurm"};
  return names;
}

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& o) {
  if (name == "local") return std::make_unique<LocalBackend>(o.common, o.local);
  if (name == "mpi") return std::make_unique<MpiBackend>(o.common, o.mpi);
  if (name == "slurm") return std::make_unique<SlurmBackend>(o.common, o.slurm);
  std::string known;
  for (const auto& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError(fmt::format("--backend '{}': expected one of {}", name, known));
}

}  // namespace runner::sweep
